//! The local PostgreSQL server of `cargo xtask dev`: a project-local data directory,
//! initialised on first use with `initdb` and started/stopped with `pg_ctl` (from PATH).
//! When run as root, every Postgres command runs as an unprivileged user (`nobody`),
//! because Postgres refuses to run as root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::unistd::{User, chown};
use tokio::process::Command;

use crate::process::ManagedChild;

/// Database user and database name used locally.
pub const DB_USER: &str = "postgres";
pub const DB_NAME: &str = "postgres";

/// Paths of the Postgres server programs.
pub type PgBinaries = postgres_programs::Binaries;
pub use postgres_programs::{RunAs, UNPRIVILEGED_USER, find_on_path};

/// A local Postgres server in `data_dir`, listening on 127.0.0.1:`port`.
#[derive(Debug)]
pub struct LocalPostgres {
    bins: PgBinaries,
    run_as: RunAs,
    data_dir: PathBuf,
    port: u16,
    running: bool,
}

impl LocalPostgres {
    /// `program` as the right user, for tokio.
    fn command(&self, program: &Path) -> Command {
        Command::from(self.run_as.command(program))
    }

    pub fn new(bins: PgBinaries, run_as: RunAs, data_dir: PathBuf, port: u16) -> Self {
        Self {
            bins,
            run_as,
            data_dir,
            port,
            running: false,
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `DATABASE_URL` of the local database.
    pub fn database_url(&self) -> String {
        format!(
            "postgres://{DB_USER}@127.0.0.1:{}/{DB_NAME}?sslmode=disable",
            self.port
        )
    }

    /// The command that stops the server (for the reaper: fast shutdown, waiting for it).
    pub fn stop_command(&self) -> (String, Vec<String>) {
        let mut command = self.run_as.command(&self.bins.pg_ctl);
        command
            .arg("stop")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "-t", "30"]);
        let program = command.get_program().to_string_lossy().into_owned();
        let args = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        (program, args)
    }

    /// The process id of the running server, from `postmaster.pid` (its first line).
    pub fn server_pid(&self) -> Option<u32> {
        postmaster_pid(&self.data_dir)
    }

    /// The server stopped by itself: nothing is left for [`Self::stop`] to do.
    pub fn mark_stopped(&mut self) {
        self.running = false;
    }

    /// If a server from an earlier run still runs in `data_dir`: what it is and the exact
    /// command that stops it.
    pub fn leftover_hint(data_dir: &Path) -> Option<String> {
        let pid = postmaster_pid(data_dir)?;
        let alive = i32::try_from(pid)
            .is_ok_and(|pid| crate::reaper::alive(nix::unistd::Pid::from_raw(pid)));
        if !alive {
            return None;
        }
        let pg_ctl = postgres_programs::find_server_program("pg_ctl")
            .unwrap_or_else(|| PathBuf::from("pg_ctl"));
        let stop = format!("{} -D {} stop", pg_ctl.display(), data_dir.display());
        let stop = match RunAs::detect() {
            Ok(RunAs::Unprivileged { user, .. }) => format!("runuser -u {} -- {stop}", user.name),
            _ => stop,
        };
        Some(format!(
            "a Postgres server left running in {} (pid {pid}, from an earlier `cargo xtask \
             dev`). Stop it with:\n    {stop}",
            data_dir.display()
        ))
    }

    /// The command a person can run to stop a server left running in the data directory.
    fn manual_stop_hint(&self) -> String {
        let pg_ctl = format!(
            "{} -D {} stop",
            self.bins.pg_ctl.display(),
            self.data_dir.display()
        );
        match &self.run_as {
            RunAs::CurrentUser => pg_ctl,
            RunAs::Unprivileged { user, .. } => format!("runuser -u {} -- {pg_ctl}", user.name),
        }
    }

    /// Creates and initialises the data directory on first use. Returns whether it was new.
    pub async fn prepare(&self) -> Result<bool> {
        let dir = &self.data_dir;
        fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the Postgres data directory {}",
                dir.display()
            )
        })?;
        if let RunAs::Unprivileged { user, .. } = &self.run_as {
            check_traversable(dir, &user.name)?;
            chown_recursive(dir, user)?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot chmod {}", dir.display()))?;

        if dir.join("PG_VERSION").is_file() {
            if self.is_running().await? {
                bail!(
                    "a Postgres server is already running on {} (another `cargo xtask dev`, or \
                     one left behind by a killed run). Stop it with:\n    {}",
                    dir.display(),
                    self.manual_stop_hint()
                );
            }
            return Ok(false);
        }
        if fs::read_dir(dir)?.next().is_some() {
            bail!(
                "{} is not empty but is not a Postgres data directory; remove it or choose \
                 another --data-dir",
                dir.display()
            );
        }
        let mut initdb = self.command(&self.bins.initdb);
        initdb.arg("-D").arg(dir).args([
            "-U",
            DB_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        ]);
        let status = ManagedChild::spawn("initdb", initdb, None)?.wait().await;
        if !status.is_some_and(|s| s.success()) {
            bail!(
                "initdb failed ({}); see the [initdb] lines above. Remove {} and try again.",
                describe(status),
                dir.display()
            );
        }
        // Local only: TCP on loopback, no Unix socket (its default directory may not be writable).
        let conf = dir.join("postgresql.conf");
        let mut text =
            fs::read_to_string(&conf).with_context(|| format!("cannot read {}", conf.display()))?;
        text.push_str(
            "\n# Added by `cargo xtask dev`.\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n",
        );
        fs::write(&conf, text).with_context(|| format!("cannot write {}", conf.display()))?;
        Ok(true)
    }

    async fn is_running(&self) -> Result<bool> {
        let status = self
            .command(&self.bins.pg_ctl)
            .arg("status")
            .arg("-D")
            .arg(&self.data_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .context("cannot run pg_ctl status")?;
        Ok(status.success())
    }

    /// Starts the server and waits until it accepts connections. Its log is streamed as `[postgres]`.
    pub async fn start(&mut self) -> Result<()> {
        let mut pg_ctl = self.command(&self.bins.pg_ctl);
        pg_ctl
            .arg("start")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-w", "-s", "-t", "60", "-o"])
            .arg(format!("-p {}", self.port));
        // pg_ctl exits once the server is ready; the server keeps streaming to our pipes.
        let status = ManagedChild::spawn("postgres", pg_ctl, None)?.wait().await;
        self.running = true;
        if !status.is_some_and(|s| s.success()) {
            let _ = self.stop().await;
            bail!(
                "Postgres did not start ({}); see the [postgres] lines above. Is port {} free \
                 (choose another with --pg-port)? Is {} a data directory of this Postgres version?",
                describe(status),
                self.port,
                self.data_dir.display()
            );
        }
        Ok(())
    }

    /// Stops the server (fast shutdown: disconnects clients, then a clean checkpoint).
    pub async fn stop(&mut self) -> Result<()> {
        if !self.running {
            return Ok(());
        }
        let status = self
            .command(&self.bins.pg_ctl)
            .arg("stop")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "-t", "30"])
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .context("cannot run pg_ctl stop")?;
        self.running = false;
        if !status.success() {
            bail!(
                "pg_ctl stop failed ({status}); stop it with:\n    {}",
                self.manual_stop_hint()
            );
        }
        Ok(())
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        // Last resort when `stop` was not reached (error or panic): immediate shutdown.
        if self.running {
            let _ = self
                .run_as
                .command(&self.bins.pg_ctl)
                .arg("stop")
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-m", "immediate", "-w", "-t", "10"])
                .stdout(std::process::Stdio::null())
                .status();
        }
    }
}

/// The first line of `postmaster.pid`: the server's process id.
pub(crate) fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

fn describe(status: Option<std::process::ExitStatus>) -> String {
    status.map_or_else(|| "no exit status".to_owned(), |s| s.to_string())
}

/// The unprivileged user must be able to reach the data directory.
fn check_traversable(dir: &Path, user: &str) -> Result<()> {
    let dir = dir.canonicalize()?;
    for ancestor in dir.ancestors().skip(1) {
        let mode = ancestor.metadata()?.permissions().mode();
        if mode & 0o001 == 0 {
            bail!(
                "as root, Postgres runs as `{user}`, which cannot enter {} (mode {:o}). Make it \
                 traversable (`chmod o+x {}`) or choose a --data-dir elsewhere.",
                ancestor.display(),
                mode & 0o777,
                ancestor.display()
            );
        }
    }
    Ok(())
}

fn chown_recursive(path: &Path, user: &User) -> Result<()> {
    chown(path, Some(user.uid), Some(user.gid))
        .with_context(|| format!("cannot chown {} to {}", path.display(), user.name))?;
    if path.is_dir() && !path.is_symlink() {
        for entry in fs::read_dir(path)? {
            chown_recursive(&entry?.path(), user)?;
        }
    }
    Ok(())
}
