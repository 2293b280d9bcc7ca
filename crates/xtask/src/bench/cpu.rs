//! CPU time per request, per process group: the measured reason behind `api / ceiling`.
//!
//! wrk, the services and Postgres share the machine's cores, so when the machine (not
//! latency) is the limit, a run's rate is bounded by the CPU each request costs all of them
//! together. Around every measured run (and every ceiling run) the CPU ticks of each group are
//! read from /proc before and after, and divided by the requests (transactions) served:
//!
//! - a service (`api`, `web`): utime + stime of its process (all its threads);
//! - `postgres`: the postmaster (its pid from `postmaster.pid`) and all its descendants, each
//!   utime + stime + cutime + cstime (fields 14–17 of `/proc/<pid>/stat`). The tree is listed
//!   anew at each sample, so a backend started during the run (pgbench's clients) is counted
//!   from the end sample; one that exited during the run is counted through the postmaster's
//!   cutime/cstime, as the postmaster reaps its children at once. A backend that exits while
//!   the tree is being read is lost (or counted twice) — one process per sample at most;
//! - the load generator (`wrk` or `pgbench`): this process's cutime + cstime, which grow by
//!   exactly the CPU of the children it reaps; the load generator is the only one reaped
//!   during a run (the services run on until the end). Its own /proc entry would be gone by
//!   the time its run is over;
//! - `machine`: the busy ticks of the whole machine (/proc/stat), so that work outside the
//!   groups (this process draining the services' logs, other users) shows as the difference.
//!
//! Ticks are `sysconf(CLK_TCK)` (usually 100 per second): 10 ms resolution, plenty over 15 s
//! runs, coarse but non-zero over --quick's 2 s.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use nix::unistd::{SysconfVar, sysconf};
use serde::{Deserialize, Serialize};

use super::probes::cpu_times;
use super::results::round;

/// CPU microseconds per request (or per transaction, for a ceiling), per process group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuPerRequest {
    /// The api's process; `None` when it was not part of the run (a ceiling).
    pub api_us: Option<f64>,
    /// The web's process; `None` unless the scenario loads the web (which calls the api).
    pub web_us: Option<f64>,
    /// Every process of the throwaway Postgres cluster.
    pub postgres_us: f64,
    /// wrk or pgbench.
    pub load_generator_us: f64,
    /// The sum of the groups above.
    pub total_us: f64,
    /// The machine's busy CPU; above `total_us` by what ran outside the groups.
    pub machine_us: f64,
}

/// The processes watched during one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Watched {
    pub api: Option<u32>,
    pub web: Option<u32>,
    pub postmaster: u32,
}

/// CPU ticks of each group at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    api: Option<u64>,
    web: Option<u64>,
    postgres: u64,
    load_generator: u64,
    machine: u64,
}

impl Watched {
    /// Reads the ticks of every group now.
    pub fn sample(&self) -> Result<CpuSample> {
        let service = |pid: Option<u32>| pid.map(process_ticks).transpose();
        let (total, idle) = cpu_times().context("cannot read /proc/stat")?;
        Ok(CpuSample {
            api: service(self.api)?,
            web: service(self.web)?,
            postgres: tree_ticks(self.postmaster)?,
            load_generator: reaped_children_ticks()?,
            machine: total.saturating_sub(idle),
        })
    }
}

impl CpuPerRequest {
    /// The CPU between two samples, per request served in between.
    pub fn between(before: &CpuSample, after: &CpuSample, requests: u64) -> Self {
        let per_request = ticks_to_us() / requests.max(1) as f64;
        let us = |a: u64, b: u64| round(b.saturating_sub(a) as f64 * per_request, 1);
        let service = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| us(a, b));
        let api_us = service(before.api, after.api);
        let web_us = service(before.web, after.web);
        let postgres_us = us(before.postgres, after.postgres);
        let load_generator_us = us(before.load_generator, after.load_generator);
        let services = api_us.unwrap_or(0.0) + web_us.unwrap_or(0.0);
        Self {
            api_us,
            web_us,
            postgres_us,
            load_generator_us,
            total_us: round(services + postgres_us + load_generator_us, 1),
            machine_us: us(before.machine, after.machine),
        }
    }
}

/// Microseconds per clock tick.
fn ticks_to_us() -> f64 {
    let per_second = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100);
    1e6 / per_second.max(1) as f64
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces or
/// parentheses, so the split is at the last `)`): index 0 is field 3 (state).
fn stat_fields(pid: &str) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// utime + stime + cutime + cstime (fields 14–17) from stat fields.
fn ticks_of(fields: &[u64]) -> u64 {
    fields.get(11..15).map_or(0, |f| f.iter().sum())
}

/// A process's ticks, its reaped children included.
pub fn process_ticks(pid: u32) -> Result<u64> {
    stat_fields(&pid.to_string())
        .map(|f| ticks_of(&f))
        .with_context(|| format!("cannot read /proc/{pid}/stat (has the process exited?)"))
}

/// The ticks of `root` and of every process descending from it now.
pub fn tree_ticks(root: u32) -> Result<u64> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut ticks: BTreeMap<u32, u64> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").context("cannot read /proc")? {
        let name = entry?.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // Field 4 (ppid) is index 1. A process gone since the listing is skipped.
        if let Some(fields) = stat_fields(&pid.to_string()) {
            let parent = fields.get(1).copied().unwrap_or(0) as u32;
            children.entry(parent).or_default().push(pid);
            ticks.insert(pid, ticks_of(&fields));
        }
    }
    let mut total = *ticks
        .get(&root)
        .with_context(|| format!("process {root} is not running"))?;
    let mut pending = children.remove(&root).unwrap_or_default();
    while let Some(pid) = pending.pop() {
        total += ticks.get(&pid).copied().unwrap_or(0);
        pending.extend(children.remove(&pid).unwrap_or_default());
    }
    Ok(total)
}

/// cutime + cstime of this process: the CPU of the children it has reaped so far.
fn reaped_children_ticks() -> Result<u64> {
    let fields = stat_fields("self").context("cannot read /proc/self/stat")?;
    Ok(fields.get(13..15).map_or(0, |f| f.iter().sum()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};
    use std::time::Duration;

    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;

    use super::*;

    const BUSY_LOOP: &str = "while :; do :; done";

    /// A shell running `script` in a process group of its own.
    fn spawn(script: &str) -> Child {
        Command::new("sh")
            .args(["-c", script])
            .process_group(0)
            .spawn()
            .unwrap()
    }

    /// Kills the child's process group (its descendants too) and reaps the child.
    fn stop(mut child: Child) {
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let _ = child.wait();
    }

    #[test]
    fn a_busy_process_uses_cpu_and_a_sleeping_one_does_not() {
        let busy = spawn(BUSY_LOOP);
        let sleeping = spawn("exec sleep 30");
        std::thread::sleep(Duration::from_millis(50));
        let before = (process_ticks(busy.id()), process_ticks(sleeping.id()));
        std::thread::sleep(Duration::from_millis(200));
        let after = (process_ticks(busy.id()), process_ticks(sleeping.id()));
        stop(busy);
        stop(sleeping);
        let busy_ticks = after.0.unwrap() - before.0.unwrap();
        let sleeping_ticks = after.1.unwrap() - before.1.unwrap();
        assert!(busy_ticks > 0, "busy loop: {busy_ticks} ticks in 200 ms");
        assert!(
            sleeping_ticks <= 1,
            "sleep: {sleeping_ticks} ticks in 200 ms"
        );
    }

    #[test]
    fn a_tree_counts_its_descendants() {
        // The shell only waits; its child loops.
        let parent = spawn(&format!("sh -c '{BUSY_LOOP}' & wait"));
        std::thread::sleep(Duration::from_millis(50));
        let (own_before, tree_before) = (process_ticks(parent.id()), tree_ticks(parent.id()));
        std::thread::sleep(Duration::from_millis(200));
        let (own_after, tree_after) = (process_ticks(parent.id()), tree_ticks(parent.id()));
        stop(parent);
        let own = own_after.unwrap() - own_before.unwrap();
        let tree = tree_after.unwrap() - tree_before.unwrap();
        assert!(own <= 1, "the waiting shell itself: {own} ticks");
        assert!(tree > own, "the tree: {tree} ticks, the shell alone {own}");
    }

    #[test]
    fn a_reaped_child_counts_as_this_process_children_time() {
        let before = reaped_children_ticks().unwrap();
        let busy = spawn(BUSY_LOOP);
        std::thread::sleep(Duration::from_millis(200));
        stop(busy);
        let after = reaped_children_ticks().unwrap();
        assert!(after > before, "{before} → {after} ticks");
    }

    #[test]
    fn per_request_divides_each_group_and_sums_them() {
        let sample = |t: u64| CpuSample {
            api: Some(t),
            web: None,
            postgres: 2 * t,
            load_generator: t / 2,
            machine: 4 * t,
        };
        let cpu = CpuPerRequest::between(&sample(100), &sample(300), 1000);
        let tick = ticks_to_us();
        assert_eq!(cpu.api_us, Some(round(200.0 * tick / 1000.0, 1)));
        assert_eq!(cpu.web_us, None);
        assert_eq!(cpu.postgres_us, round(400.0 * tick / 1000.0, 1));
        assert_eq!(
            cpu.total_us,
            round(
                cpu.api_us.unwrap() + cpu.postgres_us + cpu.load_generator_us,
                1
            )
        );
        assert_eq!(cpu.machine_us, round(800.0 * tick / 1000.0, 1));
    }
}
