//! The results of a run as typed data: `results.json` is this, serialized; `results.md` and
//! the console table are rendered from it (see `markdown`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::artifacts::Artifact;
use super::ceiling::Ceiling;
use super::cpu::CpuPerRequest;
use super::load::{ErrorCounts, WrkRun};
use super::machine::Machine;
use super::probes::{Memory, StartupRuns};
use super::scenario::Scenario;

/// Peak resident memory target per service, bytes.
pub const TARGET_PEAK_RSS: u64 = 30 * 1024 * 1024;
/// Start-up target (median), milliseconds.
pub const TARGET_STARTUP_MS: f64 = 50.0;

/// Everything `cargo xtask bench` measured (`results.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub command: String,
    pub quick: bool,
    /// `release` or `debug`.
    pub profile: String,
    pub machine: Machine,
    pub load: LoadSettings,
    pub postgres_settings: BTreeMap<String, String>,
    /// pg_test_fsync's fdatasync line (not measured with --quick).
    pub fsync_probe: Option<String>,
    /// The machine's load average (1, 5, 15 min) at the start and at the end of the run.
    pub load_average: LoadAverages,
    pub scenarios: Vec<ScenarioResult>,
    /// Per service.
    pub memory: BTreeMap<String, ServiceMemory>,
    /// Per service.
    pub startup: BTreeMap<String, Startup>,
    pub sizes: Vec<Artifact>,
    /// Per service, over the whole run.
    pub log_output: BTreeMap<String, LogOutput>,
    /// Per service.
    pub exit_status_on_sigterm: BTreeMap<String, String>,
    pub elapsed_seconds: u64,
}

/// Load averages of the machine (1, 5, 15 min), from /proc/loadavg.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadAverages {
    pub start: [f64; 3],
    pub end: [f64; 3],
}

/// How the load was applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadSettings {
    pub connections: u32,
    pub threads: u32,
    pub warmup_seconds: u64,
    pub duration_seconds: u64,
    pub seed_messages: usize,
    pub log_settings: String,
}

/// One scenario's measured run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub name: String,
    pub service: String,
    pub method: String,
    pub path: String,
    pub description: String,
    /// `on` or `off` when the scenario sets it.
    pub synchronous_commit: Option<String>,
    pub requests: u64,
    pub requests_per_second: f64,
    /// `requests_per_second ÷ ceiling.transactions_per_second`: how close the api comes to
    /// the database's own rate for the same statement (the headline of results.md).
    pub ceiling_ratio: Option<f64>,
    /// pgbench with the api's statement, same Postgres, as many clients as connections,
    /// measured just before this scenario.
    pub ceiling: Option<Ceiling>,
    /// CPU time per request of the api (and web), Postgres and wrk over the measured run.
    pub cpu_per_request: CpuPerRequest,
    pub latency_ms: LatencyMs,
    /// Non-2xx/3xx responses plus socket errors.
    pub errors: u64,
    pub error_detail: ErrorCounts,
    pub bytes_per_response: f64,
    /// Per service, after the run.
    pub rss_after_bytes: BTreeMap<String, Memory>,
    pub target: Target,
    /// Machine CPU busy (%) just before the measured run, the stack idle.
    pub background_cpu_percent: f64,
    /// The machine's load average (1, 5, 15 min) just before the measured run.
    pub load_average: [f64; 3],
    pub wrk_output: String,
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub mean: f64,
    pub max: f64,
}

/// A scenario's targets and whether the run met them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    pub requests_per_second: f64,
    pub p99_ms: Option<f64>,
    /// Least `ceiling_ratio`.
    pub ceiling_ratio: Option<f64>,
    pub errors: u64,
    pub met: bool,
}

/// A service's memory over the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceMemory {
    pub idle_rss_bytes: u64,
    pub peak_rss_bytes: u64,
    pub rss_at_end_bytes: u64,
    pub target_peak_bytes: u64,
    pub met: bool,
}

/// A service's start-up times.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Startup {
    pub runs_ms: Vec<f64>,
    pub best_ms: f64,
    pub median_ms: f64,
    pub target_ms: f64,
    pub met: bool,
}

/// What a service wrote to its log.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LogOutput {
    pub bytes: u64,
    pub lines: u64,
}

/// What was measured around one scenario's run, besides wrk.
pub struct Surroundings {
    pub ceiling: Option<Ceiling>,
    pub cpu_per_request: CpuPerRequest,
    pub rss_after_bytes: BTreeMap<String, Memory>,
    pub background_cpu: f64,
    pub load_average: [f64; 3],
}

impl ScenarioResult {
    pub fn new(scenario: &Scenario, run: &WrkRun, around: Surroundings) -> Self {
        let summary = &run.summary;
        let latency = LatencyMs::from_us(&summary.latency_us);
        let errors = summary.errors.total();
        let rps = round(summary.requests_per_second(), 1);
        let ceiling_ratio = around
            .ceiling
            .as_ref()
            .filter(|c| c.transactions_per_second > 0.0)
            .map(|c| round(rps / c.transactions_per_second, 3));
        let met = errors == 0
            && rps >= scenario.target_rps
            && scenario.target_p99_ms.is_none_or(|t| latency.p99 < t)
            && scenario
                .target_ceiling_ratio
                .is_none_or(|t| ceiling_ratio.is_some_and(|r| r >= t));
        Self {
            name: scenario.name.to_owned(),
            service: scenario.service.to_owned(),
            method: scenario.method.to_owned(),
            path: scenario.path.to_owned(),
            description: scenario.description.to_owned(),
            synchronous_commit: scenario
                .synchronous_commit
                .map(|on| if on { "on" } else { "off" }.to_owned()),
            requests: summary.requests,
            requests_per_second: rps,
            ceiling_ratio,
            ceiling: around.ceiling,
            cpu_per_request: around.cpu_per_request,
            latency_ms: latency,
            errors,
            error_detail: summary.errors,
            bytes_per_response: summary.bytes_per_response(),
            rss_after_bytes: around.rss_after_bytes,
            target: Target {
                requests_per_second: scenario.target_rps,
                p99_ms: scenario.target_p99_ms,
                ceiling_ratio: scenario.target_ceiling_ratio,
                errors: 0,
                met,
            },
            background_cpu_percent: round(around.background_cpu, 1),
            load_average: around.load_average,
            wrk_output: run.text.clone(),
        }
    }

    /// The ceiling run's CPU per transaction, if the scenario has a ceiling.
    pub fn ceiling_cpu(&self) -> Option<&CpuPerRequest> {
        self.ceiling.as_ref()?.cpu_per_transaction.as_ref()
    }
}

impl LatencyMs {
    fn from_us(us: &super::load::LatencyUs) -> Self {
        let ms = |v: f64| round(v / 1000.0, 3);
        Self {
            p50: ms(us.p50),
            p90: ms(us.p90),
            p99: ms(us.p99),
            p99_9: ms(us.p999),
            mean: ms(us.mean),
            max: ms(us.max),
        }
    }
}

impl Target {
    /// The targets in words, as the table shows them.
    pub fn text(&self) -> String {
        let mut text = format!("≥ {:.0}/s", self.requests_per_second);
        if let Some(p99) = self.p99_ms {
            text.push_str(&format!(", p99 < {p99:.0} ms"));
        }
        if let Some(ratio) = self.ceiling_ratio {
            text.push_str(&format!(", ≥ {:.0} % of ceiling", ratio * 100.0));
        }
        text.push_str(", 0 errors");
        text
    }
}

impl ServiceMemory {
    pub fn new(idle: Memory, peak: Memory) -> Self {
        Self {
            idle_rss_bytes: idle.rss,
            peak_rss_bytes: peak.hwm,
            rss_at_end_bytes: peak.rss,
            target_peak_bytes: TARGET_PEAK_RSS,
            met: peak.hwm < TARGET_PEAK_RSS,
        }
    }
}

impl From<&StartupRuns> for Startup {
    fn from(runs: &StartupRuns) -> Self {
        let median = runs.median();
        Self {
            runs_ms: runs.runs_ms.iter().map(|v| round(*v, 2)).collect(),
            best_ms: round(runs.best(), 2),
            median_ms: round(median, 2),
            target_ms: TARGET_STARTUP_MS,
            met: median < TARGET_STARTUP_MS,
        }
    }
}

impl Results {
    /// Writes `results.json` and `results.md` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let json_path = dir.join("results.json");
        let md_path = dir.join("results.md");
        let json = format!("{}\n", serde_json::to_string_pretty(self)?);
        std::fs::write(&json_path, json)
            .with_context(|| format!("cannot write {}", json_path.display()))?;
        std::fs::write(&md_path, super::markdown::document(self))
            .with_context(|| format!("cannot write {}", md_path.display()))?;
        Ok((json_path, md_path))
    }
}

pub fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}
