//! Axis "Measured load": `benchmarks/results.json` (written by `cargo xtask bench`) when present.
//!
//! The results are read through [`Results`], which names only the fields the report uses and
//! ignores any others, so the bench may add fields without breaking the report. A field it
//! lacks is `null` in the figures (shown as –).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Number;

use super::files::read_optional;
use super::sizes::Sizes;
use super::table::{Table, code, mib, or_dash};

/// The benchmark results read when present.
pub const BENCHMARKS: &str = "benchmarks/results.json";

/// What the report reads of `benchmarks/results.json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Results {
    pub command: Option<String>,
    pub quick: Option<bool>,
    pub profile: Option<String>,
    #[serde(default)]
    pub machine: ResultsMachine,
    #[serde(default)]
    pub scenarios: Vec<ResultsScenario>,
    #[serde(default)]
    pub memory: BTreeMap<String, ResultsMemory>,
    #[serde(default)]
    pub startup: BTreeMap<String, ResultsStartup>,
    #[serde(default)]
    pub sizes: Vec<ResultsArtifact>,
    /// Bytes and lines each service wrote to stdout over the whole run.
    #[serde(default)]
    pub log_output: BTreeMap<String, ResultsLogOutput>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultsMachine {
    pub cores: Option<Number>,
    pub cpu_model: Option<String>,
    pub git_rev: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultsScenario {
    pub name: Option<String>,
    pub service: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub requests_per_second: Option<Number>,
    #[serde(default)]
    pub latency_ms: ResultsLatency,
    pub errors: Option<Number>,
    /// Response size, headers included, as wrk counted it.
    pub bytes_per_response: Option<Number>,
    /// req/s ÷ the ceiling's tps.
    pub ceiling_ratio: Option<Number>,
    /// pgbench with the api's statement, when the scenario has a ceiling.
    pub ceiling: Option<ResultsCeiling>,
    pub target: Option<ResultsTarget>,
    /// CPU time per request of each process group over the measured run.
    pub cpu_per_request: Option<ResultsCpu>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultsCeiling {
    pub transactions_per_second: Option<Number>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultsTarget {
    /// Least `ceiling_ratio` accepted.
    pub ceiling_ratio: Option<Number>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ResultsCpu {
    pub api_us: Option<Number>,
    pub postgres_us: Option<Number>,
    pub load_generator_us: Option<Number>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultsLatency {
    pub p50: Option<Number>,
    pub p99: Option<Number>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultsMemory {
    pub idle_rss_bytes: Option<Number>,
    pub peak_rss_bytes: Option<Number>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultsStartup {
    pub median_ms: Option<Number>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultsArtifact {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub bytes: Option<Number>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultsLogOutput {
    pub bytes: Option<u64>,
    pub lines: Option<u64>,
}

impl Results {
    /// `benchmarks/results.json`, or `None` when the bench has not written it.
    pub fn read(root: &Path) -> Result<Option<Self>> {
        let Some(text) = read_optional(&root.join(BENCHMARKS))? else {
            return Ok(None);
        };
        let results =
            serde_json::from_str(&text).with_context(|| format!("{BENCHMARKS} is not JSON"))?;
        Ok(Some(results))
    }

    pub fn scenario(&self, name: &str) -> Option<&ResultsScenario> {
        self.scenarios
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
    }
}

/// The benchmark figures of `docs/figures.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum Benchmarks {
    #[serde(rename = "measured")]
    Measured(Measured),
    #[serde(rename = "not yet measured")]
    NotMeasured { source: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    pub source: String,
    pub command: Option<String>,
    pub quick: Option<bool>,
    pub profile: Option<String>,
    pub machine: Machine,
    pub scenarios: Vec<Scenario>,
    pub services: BTreeMap<String, Service>,
    pub sizes: Vec<Artifact>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cores: Option<Number>,
    pub cpu_model: Option<String>,
    pub git_rev: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    pub name: Option<String>,
    pub service: Option<String>,
    pub request: String,
    pub requests_per_second: Option<Number>,
    pub p50_ms: Option<Number>,
    pub p99_ms: Option<Number>,
    pub errors: Option<Number>,
    /// pgbench's rate for the api's statement; `None` for a scenario without a ceiling.
    pub ceiling_tps: Option<Number>,
    pub ceiling_ratio: Option<Number>,
    pub target_ceiling_ratio: Option<Number>,
    /// CPU µs per request (api, postgres, load generator) over the measured run.
    pub cpu_us_per_request: Option<ResultsCpu>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    pub idle_rss_bytes: Option<Number>,
    pub peak_rss_bytes: Option<Number>,
    pub startup_median_ms: Option<Number>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifact {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub bytes: Option<Number>,
}

impl Benchmarks {
    pub fn compute(results: Option<&Results>) -> Self {
        let Some(b) = results else {
            return Self::NotMeasured {
                source: BENCHMARKS.to_owned(),
            };
        };
        let scenarios = b.scenarios.iter().map(Scenario::from).collect();
        let services = b
            .memory
            .iter()
            .map(|(name, m)| {
                let service = Service {
                    idle_rss_bytes: m.idle_rss_bytes.clone(),
                    peak_rss_bytes: m.peak_rss_bytes.clone(),
                    startup_median_ms: b.startup.get(name).and_then(|s| s.median_ms.clone()),
                };
                (name.clone(), service)
            })
            .collect();
        let sizes = b
            .sizes
            .iter()
            .map(|a| Artifact {
                name: a.name.clone(),
                kind: a.kind.clone(),
                bytes: a.bytes.clone(),
            })
            .collect();
        Self::Measured(Measured {
            source: BENCHMARKS.to_owned(),
            command: b.command.clone(),
            quick: b.quick,
            profile: b.profile.clone(),
            machine: Machine {
                cores: b.machine.cores.clone(),
                cpu_model: b.machine.cpu_model.clone(),
                git_rev: b.machine.git_rev.clone(),
            },
            scenarios,
            services,
            sizes,
        })
    }

    pub fn table(&self, sizes: &Sizes) -> String {
        match self {
            Self::NotMeasured { source } => format!(
                "_Not yet measured: `{source}` does not exist (it is written by `cargo xtask bench`)._\n"
            ),
            Self::Measured(b) => b.tables(sizes),
        }
    }
}

impl From<&ResultsScenario> for Scenario {
    fn from(s: &ResultsScenario) -> Self {
        Self {
            name: s.name.clone(),
            service: s.service.clone(),
            request: format!(
                "{} {}",
                or_dash(s.method.as_ref()),
                or_dash(s.path.as_ref())
            ),
            requests_per_second: s.requests_per_second.clone(),
            p50_ms: s.latency_ms.p50.clone(),
            p99_ms: s.latency_ms.p99.clone(),
            errors: s.errors.clone(),
            ceiling_tps: s
                .ceiling
                .as_ref()
                .and_then(|c| c.transactions_per_second.clone()),
            ceiling_ratio: s.ceiling_ratio.clone(),
            target_ceiling_ratio: s.target.as_ref().and_then(|t| t.ceiling_ratio.clone()),
            cpu_us_per_request: s.cpu_per_request.clone(),
        }
    }
}

fn megabytes(bytes: Option<&Number>) -> String {
    or_dash(bytes.and_then(Number::as_f64).map(mib))
}

/// A ratio as a whole percentage.
fn percent(ratio: Option<&Number>) -> String {
    or_dash(
        ratio
            .and_then(Number::as_f64)
            .map(|r| format!("{:.0} %", r * 100.0)),
    )
}

impl Scenario {
    /// Whether `api / ceiling` reached its target; `None` without a target or a ratio.
    fn ceiling_target_met(&self) -> Option<bool> {
        let ratio = self.ceiling_ratio.as_ref()?.as_f64()?;
        let target = self.target_ceiling_ratio.as_ref()?.as_f64()?;
        Some(ratio >= target)
    }
}

impl Measured {
    fn tables(&self, sizes: &Sizes) -> String {
        let m = &self.machine;
        let quick = if self.quick == Some(true) {
            ", **quick run**"
        } else {
            ""
        };
        let mut out = format!(
            "From `{}`: `{}` ({} profile{quick}), {} cores ({}), revision {}.\n\n",
            self.source,
            or_dash(self.command.as_ref()),
            or_dash(self.profile.as_ref()),
            or_dash(m.cores.as_ref()),
            or_dash(m.cpu_model.as_ref()),
            or_dash(m.git_rev.as_ref()),
        );
        out += &self.ceiling_table().render();
        out.push('\n');
        out += &self.scenarios_table().render();
        out.push('\n');
        out += &self.services_table(sizes).render();
        out.push('\n');
        let mut artifacts = Table::new(["artifact", "kind", "MiB"]);
        for a in &self.sizes {
            artifacts.row([
                or_dash(a.name.as_ref()),
                or_dash(a.kind.as_ref()),
                megabytes(a.bytes.as_ref()),
            ]);
        }
        out + &artifacts.render()
    }

    /// The headline: each scenario with a database ceiling, against it, and the CPU each of
    /// its requests cost the api, Postgres and the load generator (sharing the same cores).
    fn ceiling_table(&self) -> Table {
        let mut table = Table::new([
            "scenario",
            "req/s",
            "ceiling tps (pgbench, same statement)",
            "api / ceiling",
            "target",
            "met",
            "api CPU µs/req",
            "postgres CPU µs/req",
            "load generator CPU µs/req",
        ]);
        for s in self.scenarios.iter().filter(|s| s.ceiling_tps.is_some()) {
            let target = s
                .target_ceiling_ratio
                .as_ref()
                .map(|t| format!("≥ {}", percent(Some(t))));
            let met = s.ceiling_target_met().map(|m| if m { "yes" } else { "no" });
            let cpu = s.cpu_us_per_request.clone().unwrap_or_default();
            table.row([
                or_dash(s.name.as_ref()),
                or_dash(s.requests_per_second.as_ref()),
                or_dash(s.ceiling_tps.as_ref()),
                percent(s.ceiling_ratio.as_ref()),
                or_dash(target),
                or_dash(met),
                or_dash(cpu.api_us),
                or_dash(cpu.postgres_us),
                or_dash(cpu.load_generator_us),
            ]);
        }
        table
    }

    fn scenarios_table(&self) -> Table {
        let mut table = Table::new(["scenario", "request", "req/s", "p50 ms", "p99 ms", "errors"]);
        for s in &self.scenarios {
            table.row([
                or_dash(s.name.as_ref()),
                code(&s.request),
                or_dash(s.requests_per_second.as_ref()),
                or_dash(s.p50_ms.as_ref()),
                or_dash(s.p99_ms.as_ref()),
                or_dash(s.errors.as_ref()),
            ]);
        }
        table
    }

    fn services_table(&self, sizes: &Sizes) -> Table {
        let mut table = Table::new([
            "service",
            "idle RSS MiB",
            "peak RSS MiB",
            "catalog memory",
            "peak / catalog",
            "start-up median ms",
        ]);
        for (name, m) in &self.services {
            let memory = sizes.catalog.get(name).map(|w| w.memory);
            let peak = m.peak_rss_bytes.as_ref().and_then(Number::as_f64);
            let share = match (peak, memory) {
                (Some(peak), Some(limit)) if limit > 0 => {
                    format!("{:.0} %", peak / 1_048_576.0 / f64::from(limit) * 100.0)
                }
                _ => "–".to_owned(),
            };
            table.row([
                name.clone(),
                megabytes(m.idle_rss_bytes.as_ref()),
                megabytes(m.peak_rss_bytes.as_ref()),
                format!("{} MiB", or_dash(memory)),
                share,
                or_dash(m.startup_median_ms.as_ref()),
            ]);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(json: &str) -> Measured {
        let results: Results = serde_json::from_str(json).unwrap();
        match Benchmarks::compute(Some(&results)) {
            Benchmarks::Measured(m) => m,
            Benchmarks::NotMeasured { .. } => unreachable!("results were given"),
        }
    }

    #[test]
    fn the_ceiling_table_carries_ratio_target_and_cpu() {
        let m = measured(
            r#"{"scenarios": [
                {"name": "api_health", "requests_per_second": 30000.5, "ceiling": null},
                {"name": "api_list", "requests_per_second": 4333.3, "ceiling_ratio": 0.258,
                 "ceiling": {"transactions_per_second": 16807.2},
                 "target": {"ceiling_ratio": 0.6, "met": false},
                 "cpu_per_request": {"api_us": 152.4, "postgres_us": 79.1,
                                     "load_generator_us": 15.0}},
                {"name": "api_create", "requests_per_second": 5491.1, "ceiling_ratio": 0.92,
                 "ceiling": {"transactions_per_second": 5968.6},
                 "target": {"ceiling_ratio": 0.9}}]}"#,
        );
        let table = m.ceiling_table().render();
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| api_list | 4333.3 | 16807.2 | 26 % | ≥ 60 % | no | 152.4 | 79.1 | 15.0 |",
                // Results written before the CPU was measured: its cells are dashes.
                "| api_create | 5491.1 | 5968.6 | 92 % | ≥ 90 % | yes | – | – | – |",
            ],
            "only scenarios with a ceiling, in order:\n{table}"
        );
    }

    #[test]
    fn the_ceiling_table_leads_the_section() {
        let m = measured(
            r#"{"scenarios": [{"name": "api_list", "requests_per_second": 1.0,
                "ceiling": {"transactions_per_second": 2.0}, "ceiling_ratio": 0.5}]}"#,
        );
        let sizes = Sizes {
            how: String::new(),
            catalog: BTreeMap::new(),
            aws: BTreeMap::new(),
            northflank: BTreeMap::new(),
        };
        let text = m.tables(&sizes);
        let ceiling = text.find("| api / ceiling |").expect("ratio table");
        let scenarios = text.find("| p50 ms |").expect("scenario table");
        assert!(ceiling < scenarios, "{text}");
    }
}
