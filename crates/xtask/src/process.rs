//! Child processes whose output is streamed with a prefix, and which are stopped with
//! SIGTERM (then SIGKILL after a grace period).

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::output;

/// Sent when a managed child exits.
#[derive(Debug, Clone)]
pub struct Exited {
    pub name: String,
    pub status: ExitStatus,
}

/// A running child process. Dropping it kills the process (SIGKILL).
#[derive(Debug)]
pub struct ManagedChild {
    name: String,
    pid: Option<u32>,
    exit: watch::Receiver<Option<ExitStatus>>,
    waiter: JoinHandle<()>,
    readers: Vec<JoinHandle<()>>,
}

/// Streams each line of `reader` as `[name] line`.
pub fn stream_lines<R>(name: &str, reader: R) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let name = name.to_owned();
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => output::prefixed(&name, &line),
                Ok(None) => break,
                // Not UTF-8 or a read error: stop streaming rather than spin.
                Err(_) => break,
            }
        }
    })
}

impl ManagedChild {
    /// Spawns `command` with its stdout/stderr streamed under `name`. When `exits` is given,
    /// the exit is reported there too (to notice services that die unexpectedly).
    pub fn spawn(
        name: &str,
        mut command: Command,
        exits: Option<mpsc::UnboundedSender<Exited>>,
    ) -> Result<Self> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({program})"))?;
        let pid = child.id();
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(stream_lines(name, stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(stream_lines(name, stderr));
        }
        let (tx, rx) = watch::channel(None);
        let task_name = name.to_owned();
        let waiter = tokio::spawn(async move {
            // The child is owned (and, on drop, killed) by this task.
            let status = child.wait().await;
            if let Ok(status) = status {
                let _ = tx.send(Some(status));
                if let Some(exits) = exits {
                    let _ = exits.send(Exited {
                        name: task_name,
                        status,
                    });
                }
            }
        });
        Ok(Self {
            name: name.to_owned(),
            pid,
            exit: rx,
            waiter,
            readers,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id (`None` if it could not be read at spawn).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The exit status, if it has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Waits for the process to exit and for its output to be fully streamed.
    pub async fn wait(&mut self) -> Option<ExitStatus> {
        let status = self
            .exit
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|s| *s);
        // Grandchildren (the Postgres server started by pg_ctl) may hold the pipes open: wait
        // a moment for the rest of the output, then leave those readers streaming.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout_at(deadline, reader).await;
        }
        status
    }

    /// Sends `signal` to the process, if it is still running.
    pub fn signal(&self, signal: Signal) {
        if self.exit_status().is_some() {
            return;
        }
        if let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status.
    pub async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exit_status() {
            return Some(status);
        }
        self.signal(Signal::SIGTERM);
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(status) => status,
            Err(_) => {
                output::step(format!(
                    "{} did not stop within {}s, killing it",
                    self.name,
                    grace.as_secs()
                ));
                self.signal(Signal::SIGKILL);
                self.wait().await
            }
        }
    }
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        if self.exit_status().is_none() {
            self.signal(Signal::SIGKILL);
        }
        self.waiter.abort();
    }
}
