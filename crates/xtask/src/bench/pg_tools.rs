//! The PostgreSQL client programs next to `pg_ctl` (psql, pg_test_fsync): the server's
//! settings, `synchronous_commit` switched between scenarios, the disk's fsync rate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::output::step;
use crate::postgres::{DB_NAME, DB_USER, PgBinaries, find_on_path};

/// The settings recorded with the results.
const RECORDED_SETTINGS: [&str; 6] = [
    "server_version",
    "max_connections",
    "shared_buffers",
    "fsync",
    "synchronous_commit",
    "wal_sync_method",
];

/// The client programs of the server on 127.0.0.1:`port` (each optional).
pub struct PgTools {
    dir: Option<PathBuf>,
    pub port: u16,
}

impl PgTools {
    pub fn new(bins: &PgBinaries, port: u16) -> Self {
        let dir = bins
            .pg_ctl
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Self { dir, port }
    }

    /// A program next to pg_ctl, else on PATH.
    pub fn tool(&self, name: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(name))
            .filter(|p| p.is_file())
            .or_else(|| find_on_path(name))
    }

    /// `SHOW name` through psql, if psql is available.
    fn show(&self, name: &str) -> Option<String> {
        let psql = self.tool("psql")?;
        let output = StdCommand::new(psql)
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-U", DB_USER])
            .args(["-p", &self.port.to_string(), "-d", DB_NAME])
            .args(["-c", &format!("SHOW {name}")])
            .env_remove("PGPASSWORD")
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    pub fn settings(&self) -> BTreeMap<String, String> {
        RECORDED_SETTINGS
            .into_iter()
            .filter_map(|name| self.show(name).map(|v| (name.to_owned(), v)))
            .collect()
    }

    /// Sets `synchronous_commit` in postgresql.auto.conf and reloads (SIGHUP to the
    /// postmaster).
    pub async fn set_synchronous_commit(&self, data_dir: &Path, on: bool) -> Result<()> {
        let value = if on { "on" } else { "off" };
        let conf = data_dir.join("postgresql.auto.conf");
        let mut text: String = std::fs::read_to_string(&conf)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim_start().starts_with("synchronous_commit"))
            .map(|l| format!("{l}\n"))
            .collect();
        let _ = writeln!(text, "synchronous_commit = '{value}'");
        std::fs::write(&conf, text).with_context(|| format!("cannot write {}", conf.display()))?;
        kill(postmaster_pid(data_dir)?, Signal::SIGHUP).context("cannot signal the postmaster")?;
        // The reload is asynchronous: wait until it shows (or a moment, without psql).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.show("synchronous_commit") {
                Some(v) if v == value => break,
                None => break,
                Some(_) if Instant::now() > deadline => {
                    bail!("Postgres did not apply synchronous_commit = {value}")
                }
                Some(_) => {}
            }
        }
        step(format!("postgres: synchronous_commit = {value}"));
        Ok(())
    }

    /// The disk's fdatasync rate (one 8 kB write), from pg_test_fsync, if available.
    pub fn fsync_rate(&self, dir: &Path) -> Option<String> {
        let tool = self.tool("pg_test_fsync")?;
        step("probing the disk's fsync rate (pg_test_fsync, 2 s per method)");
        let file = dir.join("fsync.probe");
        let mut child = StdCommand::new(&tool)
            .args(["-s", "2", "-f"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let found = child.stdout.take().and_then(|stdout| {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .map(|line| line.trim().to_owned())
                .find(|line| line.starts_with("fdatasync") && line.contains("ops/sec"))
                .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        });
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&file);
        found
    }
}

fn postmaster_pid(data_dir: &Path) -> Result<Pid> {
    let pid_file = data_dir.join("postmaster.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("cannot read {}", pid_file.display()))?
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .context("bad postmaster.pid")?;
    Ok(Pid::from_raw(pid))
}
