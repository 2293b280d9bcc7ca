//! A throwaway PostgreSQL server run from the binaries on `PATH`.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use postgres_programs::{Binaries, RunAs};

use crate::TestDb;

/// A PostgreSQL server of this test process, in its own temp dir, listening on
/// `127.0.0.1:<port>` only, with `trust` authentication for user `postgres`.
///
/// It is stopped and its directory removed on drop, and in any case shortly after the
/// test process exits (a small watchdog process takes care of that, even on a crash).
pub struct PgServer {
    dir: PathBuf,
    port: u16,
    bins: Binaries,
    run_as: RunAs,
    running: Mutex<bool>,
    watchdog: Mutex<Option<Child>>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free TCP port on 127.0.0.1")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl PgServer {
    /// Create (initdb) and start a new server on a free port. Panics with a clear message if
    /// the PostgreSQL binaries are missing or the server does not start (including its log).
    pub fn launch() -> Self {
        let bins = Binaries::find(None).unwrap_or_else(|e| panic!("{e}"));
        let run_as = RunAs::detect().unwrap_or_else(|e| panic!("{e}"));
        let dir = std::env::temp_dir().join(format!(
            "test-postgres-{}-{}",
            std::process::id(),
            crate::unique_name()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir for PostgreSQL");
        if let Some(user) = run_as.owner() {
            std::os::unix::fs::chown(&dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .expect("chown the PostgreSQL temp dir to the unprivileged user");
        }
        let mut server = PgServer {
            dir,
            port: 0,
            bins,
            run_as,
            running: Mutex::new(false),
            watchdog: Mutex::new(None),
        };
        server.spawn_watchdog();
        server.initdb();
        // The port is free when we look; retry in the unlikely case someone takes it first.
        let mut last_error = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.try_start() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("could not start PostgreSQL: {last_error}");
    }

    /// TCP port (stays the same across [`stop`](Self::stop) / [`start`](Self::start)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of the `postgres` maintenance database (user `postgres`, no password).
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Make every role but `postgres` log in with its password (`scram-sha-256`), as a real
    /// server does (the default is `trust`, which accepts any password); `postgres` keeps
    /// `trust`, so [`Self::admin_url`] still works. For tests of credentials and their rotation.
    pub fn require_passwords(&self) {
        let rules = "# test-postgres: passwords for every role but postgres\n\
                     local all postgres trust\n\
                     host all postgres 127.0.0.1/32 trust\n\
                     local all all scram-sha-256\n\
                     host all all 127.0.0.1/32 scram-sha-256\n";
        // Overwritten in place: the file keeps its owner (the server's user when run as root).
        let hba = self.data().join("pg_hba.conf");
        std::fs::write(&hba, rules).unwrap_or_else(|e| panic!("write {}: {e}", hba.display()));
        let out = self.pg_ctl(&["reload"]);
        assert!(
            out.status.success(),
            "pg_ctl reload failed: {}",
            describe(&out)
        );
    }

    /// Whether the server is currently running (as far as this handle knows).
    pub fn is_running(&self) -> bool {
        *self.running.lock().unwrap()
    }

    /// Create a fresh database on this server.
    pub async fn create_database(&self) -> TestDb {
        assert!(
            self.is_running(),
            "PgServer::create_database: the server is stopped"
        );
        crate::create_database_at(&self.admin_url(), false).await
    }

    /// Stop the server (fast shutdown: clients are disconnected). No-op when stopped.
    pub fn stop(&self) {
        let mut running = self.running.lock().unwrap();
        if *running {
            let out = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"]);
            assert!(
                out.status.success(),
                "pg_ctl stop failed: {}",
                describe(&out)
            );
            *running = false;
        }
    }

    /// Start the server again on the same port. No-op when running.
    pub fn start(&self) {
        if !self.is_running() {
            self.try_start()
                .unwrap_or_else(|e| panic!("could not restart PostgreSQL: {e}"));
        }
    }

    /// Stop then start.
    pub fn restart(&self) {
        self.stop();
        self.start();
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command for `program`, run as the unprivileged user when we are root.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = self.run_as.command(program);
        cmd.current_dir(&self.dir)
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST")
            .stdin(Stdio::null());
        cmd
    }

    fn initdb(&self) {
        let out = self
            .command(&self.bins.initdb)
            .arg("-D")
            .arg(self.data())
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .output()
            .unwrap_or_else(|e| panic!("run initdb: {e}"));
        assert!(out.status.success(), "initdb failed: {}", describe(&out));
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        self.command(&self.bins.pg_ctl)
            .arg("-D")
            .arg(self.data())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run pg_ctl: {e}"))
    }

    fn try_start(&self) -> Result<(), String> {
        let mut running = self.running.lock().unwrap();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=300 -c shared_buffers=32MB",
            self.port,
            shell_quote(&self.dir.to_string_lossy()),
        );
        let log = self.dir.join("postgres.log");
        let out = self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            &log.to_string_lossy(),
            "-o",
            &options,
        ]);
        if out.status.success() {
            *running = true;
            Ok(())
        } else {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            Err(format!(
                "pg_ctl start failed: {}\n--- postgres.log ---\n{log}",
                describe(&out)
            ))
        }
    }

    /// A detached shell that waits for this test process to exit, then stops the server and
    /// removes its directory (statics are never dropped, and tests may crash).
    fn spawn_watchdog(&self) {
        let stop = {
            let cmd = self.command(&self.bins.pg_ctl);
            let mut words: Vec<String> = vec![shell_quote(&cmd.get_program().to_string_lossy())];
            words.extend(cmd.get_args().map(|a| shell_quote(&a.to_string_lossy())));
            words.join(" ")
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {stop} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            data = shell_quote(&self.data().to_string_lossy()),
            dir = shell_quote(&self.dir.to_string_lossy()),
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn the PostgreSQL watchdog (sh)");
        *self.watchdog.lock().unwrap() = Some(child);
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if *self.running.get_mut().unwrap() {
            let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(mut child) = self.watchdog.get_mut().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn describe(out: &std::process::Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
