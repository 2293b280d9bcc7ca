//! A Postgres server left running in the data directory by an earlier run is recognised,
//! and named with the exact command that stops it, instead of "port in use".

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use xtask::postgres::{LocalPostgres, PgBinaries, RunAs};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_leftover_postgres_is_named_with_its_stop_command() {
    let temp = tempfile::Builder::new()
        .prefix("xtask-leftover-")
        .tempdir()
        .unwrap();
    // As root, Postgres runs as `nobody`, which must be able to enter the directory.
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = temp.path().join("postgres");
    let pg_port = free_port();
    let bins = PgBinaries::find(None).expect("the PostgreSQL server programs");
    let run_as = RunAs::detect().unwrap();
    let mut leftover = LocalPostgres::new(bins, run_as, data_dir.clone(), pg_port);
    leftover.prepare().await.unwrap();
    leftover.start().await.unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("dev")
        .args(["--port", &free_port().to_string()])
        .args(["--pg-port", &pg_port.to_string()])
        .args(["--prometheus-port", &free_port().to_string()])
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--no-build")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    leftover.stop().await.unwrap();

    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("left running in"), "{text}");
    let stop = format!("-D {} stop", data_dir.display());
    assert!(text.contains(&stop), "the exact stop command: {text}");
}
