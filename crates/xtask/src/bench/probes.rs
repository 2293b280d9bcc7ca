//! Probes: a process's memory, the machine's CPU busy share and load average, and the
//! start-up time of a service.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::stack::{Planned, STOP_GRACE, Server, http_ok};

/// Resident memory of a process, from /proc/<pid>/status (bytes).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Memory {
    /// `VmRSS`.
    pub rss: u64,
    /// `VmHWM`, the peak of `VmRSS`.
    pub hwm: u64,
}

pub fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| -> Result<u64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in {path}"))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("bad {name} line in {path}: {line}"))?;
        Ok(kb * 1024)
    };
    Ok(Memory {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
    })
}

/// The memory of each named process.
pub fn memories(pids: &BTreeMap<String, u32>) -> Result<BTreeMap<String, Memory>> {
    pids.iter()
        .map(|(name, pid)| Ok((name.clone(), memory(*pid)?)))
        .collect()
}

/// (total, idle) CPU time of the machine, in ticks, from the first line of /proc/stat.
pub(super) fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((fields.iter().sum(), idle))
}

/// Busy share of the whole machine's CPU over `window`, in percent. Sampled while the
/// stack is idle, it measures what else runs on the machine (nothing is pinned).
pub async fn busy_percent(window: Duration) -> f64 {
    let Some((total_a, idle_a)) = cpu_times() else {
        return 0.0;
    };
    tokio::time::sleep(window).await;
    let Some((total_b, idle_b)) = cpu_times() else {
        return 0.0;
    };
    let total = total_b.saturating_sub(total_a).max(1) as f64;
    let idle = idle_b.saturating_sub(idle_a) as f64;
    (100.0 * (total - idle) / total).clamp(0.0, 100.0)
}

/// Start-up times of one service.
#[derive(Debug, Clone)]
pub struct StartupRuns {
    pub service: String,
    pub runs_ms: Vec<f64>,
}

impl StartupRuns {
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.runs_ms.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    pub fn best(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(0.0)
    }

    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
}

/// `runs` start-ups of a service (spawn to first 2xx on its health path).
pub async fn startup(
    plan: &Planned<'_>,
    env: &[(String, String)],
    port: u16,
    runs: usize,
) -> Result<StartupRuns> {
    crate::output::step(format!(
        "start-up of {}: {runs} runs (spawn to first 2xx on {})",
        plan.name, plan.service.health
    ));
    let mut runs_ms = Vec::new();
    for _ in 0..runs {
        runs_ms.push(startup_once(plan, env, port).await?);
    }
    Ok(StartupRuns {
        service: plan.name.to_owned(),
        runs_ms,
    })
}

/// One start-up: spawn, poll the health path every 0.5 ms, stop. Returns the milliseconds
/// from just before spawn to the first 2xx.
async fn startup_once(plan: &Planned<'_>, env: &[(String, String)], port: u16) -> Result<f64> {
    let name = plan.name.to_owned();
    let binary = plan.binary.clone();
    let env = env.to_vec();
    let health = plan.service.health.clone();
    let (mut server, elapsed) = tokio::task::spawn_blocking(move || -> Result<(Server, f64)> {
        let start = Instant::now();
        let mut server = Server::spawn(&name, &binary, &env)?;
        let deadline = start + Duration::from_secs(20);
        loop {
            if http_ok(port, &health) {
                return Ok((server, start.elapsed().as_secs_f64() * 1000.0));
            }
            if let Some(status) = server.exited() {
                bail!(
                    "{name} exited during start-up ({status}); last log lines:\n{}",
                    server.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!("{name} did not become healthy within 20 s");
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    })
    .await??;
    server.terminate(STOP_GRACE).await;
    Ok(elapsed)
}

/// The machine's load average over 1, 5 and 15 minutes (zeros if /proc/loadavg is missing).
/// With other work on the machine it says how far the absolute numbers can be trusted.
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text
        .split_whitespace()
        .map(|f| f.parse::<f64>().unwrap_or(0.0));
    [(); 3].map(|()| fields.next().unwrap_or(0.0))
}
