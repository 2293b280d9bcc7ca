//! Nothing outlives `cargo xtask dev`, however it ends.
//!
//! Ctrl-C, SIGTERM and SIGHUP (the terminal closed) stop the stack in order (see `dev`). A
//! SIGKILL cannot be caught, and the children would live on: the services, and Postgres,
//! which `pg_ctl` starts in a session of its own. So `dev` starts a reaper first: the same
//! binary (`xtask reap`, hidden), in a process group of its own (the terminal's hangup and
//! Ctrl-C do not reach it), reading [`Note`]s on a pipe from `dev`. When the pipe closes
//! without [`Note::Done`] (`dev` died), it terminates every recorded process and runs the
//! recorded stop commands (`pg_ctl stop`). The kernel closes the pipe whatever killed `dev`.
//!
//! A pipe rather than `PR_SET_PDEATHSIG`: setting that needs `pre_exec` (unsafe code, which
//! the workspace forbids) and it cannot reach Postgres, whose server is not our child.

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// What `dev` tells the reaper, one JSON object per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "note")]
pub enum Note {
    /// A child process to terminate if `dev` dies.
    Child { name: String, pid: u32 },
    /// A command that stops something which is not a child (Postgres: `pg_ctl stop`).
    StopCommand {
        name: String,
        program: String,
        args: Vec<String>,
    },
    /// `dev` stopped everything itself: exit without doing anything.
    Done,
}

/// The `dev` side: the pipe to a running reaper.
pub struct Reaper {
    child: std::process::Child,
}

impl Reaper {
    /// Starts `xtask reap` (this executable) in its own process group.
    pub fn start() -> Result<Self> {
        let exe = std::env::current_exe().context("cannot find the xtask executable")?;
        let child = Command::new(exe)
            .arg("reap")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .context("cannot start the reaper (xtask reap)")?;
        Ok(Self { child })
    }

    /// Records `note`. A reaper that is gone is reported, not fatal: the stack still runs.
    pub fn note(&mut self, note: &Note) {
        let line = serde_json::to_string(note).expect("notes serialize");
        let written = self
            .child
            .stdin
            .as_mut()
            .map(|stdin| writeln!(stdin, "{line}").and_then(|()| stdin.flush()));
        if !matches!(written, Some(Ok(()))) {
            crate::output::step("warning: the reaper is gone; a SIGKILL would leave processes");
        }
    }

    /// Everything is stopped: release the reaper.
    pub fn finish(mut self) {
        self.note(&Note::Done);
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// How long the processes get between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// The reaper's side (`xtask reap`): collect notes until the pipe closes, then clean up
/// unless `dev` said it was done.
pub fn run() -> Result<()> {
    let mut children: Vec<(String, Pid)> = Vec::new();
    let mut stop_commands: Vec<(String, Command)> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Note>(&line) {
            Ok(Note::Child { name, pid }) => {
                if let Ok(pid) = i32::try_from(pid) {
                    children.push((name, Pid::from_raw(pid)));
                }
            }
            Ok(Note::StopCommand {
                name,
                program,
                args,
            }) => {
                let mut command = Command::new(program);
                command
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null());
                stop_commands.push((name, command));
            }
            Ok(Note::Done) => return Ok(()),
            Err(_) => {}
        }
    }
    report(&format!(
        "cargo xtask dev ended without stopping its processes; stopping {}",
        children
            .iter()
            .map(|(name, _)| name.as_str())
            .chain(stop_commands.iter().map(|(name, _)| name.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    terminate(&children);
    for (name, mut command) in stop_commands {
        if !command.status().is_ok_and(|s| s.success()) {
            report(&format!("could not stop {name}"));
        }
    }
    Ok(())
}

/// SIGTERM to each process, then SIGKILL to those still alive after [`GRACE`].
fn terminate(children: &[(String, Pid)]) {
    for (_, pid) in children {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && children.iter().any(|(_, pid)| alive(*pid)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for (name, pid) in children {
        if alive(*pid) {
            report(&format!("{name} did not stop within {GRACE:?}; killing it"));
            let _ = kill(*pid, Signal::SIGKILL);
        }
    }
}

/// Whether `pid` is a live process (not gone, not a zombie waiting for its new parent).
pub fn alive(pid: Pid) -> bool {
    if kill(pid, None).is_err() {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name: `1234 (api) S ...`.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !state.is_some_and(|rest| rest.starts_with('Z') || rest.starts_with('X'))
}

/// A line on stderr (the terminal may be gone: errors are ignored).
fn report(message: &str) {
    let _ = writeln!(std::io::stderr(), "[reaper] {message}");
}
