//! What the numbers were measured on: the machine, the toolchain, the revision.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::command_output;
use super::options::cores;

/// The machine and the programs of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub memory_total: String,
    pub kernel: String,
    pub date: String,
    pub git_rev: String,
    pub rustc: String,
    pub load_generator: String,
    pub postgres: String,
    pub pinning: String,
}

impl Machine {
    /// Reads /proc, and asks git, rustc, wrk and pg_ctl for their versions.
    pub fn probe(root: &Path, wrk: &Path, pg_ctl: &Path) -> Self {
        Self {
            cores: cores(),
            cpu_model: proc_field("/proc/cpuinfo", "model name")
                .unwrap_or_else(|| "unknown".to_owned()),
            memory_total: memory_total().unwrap_or_else(|| "unknown".to_owned()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned()),
            date: command_output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_default(),
            git_rev: git_rev(root),
            rustc: first_line(command_output("rustc", &["--version"])),
            load_generator: first_line(command_output(&wrk.to_string_lossy(), &["-v"]))
                .split(" Copyright")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            postgres: first_line(command_output(&pg_ctl.to_string_lossy(), &["--version"])),
            pinning: "none: wrk, Postgres, api and web share all cores".to_owned(),
        }
    }
}

/// The value of the first `key: value` line of a /proc file.
fn proc_field(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn memory_total() -> Option<String> {
    let kb: f64 = proc_field("/proc/meminfo", "MemTotal:")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(format!("{:.1} GiB", kb / 1024.0 / 1024.0))
}

/// The short revision, marked when the work tree has uncommitted changes.
fn git_rev(root: &Path) -> String {
    let root = root.to_string_lossy();
    let Some(rev) = command_output("git", &["-C", &root, "rev-parse", "--short=12", "HEAD"])
        .filter(|r| !r.is_empty() && !r.contains(' '))
    else {
        return "unknown".to_owned();
    };
    let dirty = command_output("git", &["-C", &root, "status", "--porcelain"])
        .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{rev} (with uncommitted changes)")
    } else {
        rev
    }
}

fn first_line(s: Option<String>) -> String {
    s.and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}
