//! The local Prometheus of `cargo xtask dev`: when the `prometheus` program is installed, it
//! scrapes every service's metrics port (from the catalog and the port overrides) and
//! evaluates the alert rules of [`RULES_FILE`], the services' side of the AWS alarms.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::process::Command;

use crate::process::ManagedChild;

/// The alert rules, relative to the workspace root (tested by `tests/prometheus.rs`).
pub const RULES_FILE: &str = "crates/xtask/monitoring/alerts.yml";

/// How often targets are scraped and rules evaluated (short: this is for watching a
/// local stack).
const INTERVAL: &str = "5s";

/// `prometheus.yml`. Written as JSON, which is YAML.
#[derive(Debug, Serialize)]
pub struct Config {
    global: Global,
    rule_files: Vec<PathBuf>,
    scrape_configs: Vec<ScrapeConfig>,
}

#[derive(Debug, Serialize)]
struct Global {
    scrape_interval: &'static str,
    evaluation_interval: &'static str,
}

#[derive(Debug, Serialize)]
struct ScrapeConfig {
    job_name: String,
    static_configs: Vec<StaticConfig>,
}

#[derive(Debug, Serialize)]
struct StaticConfig {
    targets: Vec<String>,
}

impl Config {
    /// One job per service (its name), scraping `/metrics` at its address.
    pub fn new(rules: PathBuf, targets: &[(String, SocketAddr)]) -> Self {
        Self {
            global: Global {
                scrape_interval: INTERVAL,
                evaluation_interval: INTERVAL,
            },
            rule_files: vec![rules],
            scrape_configs: targets
                .iter()
                .map(|(name, addr)| ScrapeConfig {
                    job_name: name.clone(),
                    static_configs: vec![StaticConfig {
                        targets: vec![addr.to_string()],
                    }],
                })
                .collect(),
        }
    }

    /// Writes the configuration to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("the configuration serializes");
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The `prometheus` program on PATH, if installed.
pub fn find() -> Option<PathBuf> {
    crate::postgres::find_on_path("prometheus")
}

/// A running Prometheus.
pub struct Prometheus {
    child: ManagedChild,
}

impl Prometheus {
    /// Writes the configuration into `work_dir` (its data goes there too), starts
    /// Prometheus on `listen` and waits until it is ready.
    pub async fn start(
        program: &Path,
        work_dir: &Path,
        listen: SocketAddr,
        targets: &[(String, SocketAddr)],
    ) -> Result<Self> {
        std::fs::create_dir_all(work_dir)
            .with_context(|| format!("cannot create {}", work_dir.display()))?;
        let rules = crate::workspace_root().join(RULES_FILE);
        let config_path = work_dir.join("prometheus.yml");
        Config::new(rules, targets).write(&config_path)?;
        let mut command = Command::new(program);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                work_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .arg("--log.level=warn");
        let child = ManagedChild::spawn("prometheus", command, None)?;
        let prometheus = Self { child };
        prometheus.wait_ready(listen).await?;
        Ok(prometheus)
    }

    async fn wait_ready(&self, listen: SocketAddr) -> Result<()> {
        let url = format!("http://{listen}/-/ready");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.exit_status() {
                bail!("prometheus exited ({status}); see the [prometheus] lines above");
            }
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("prometheus did not answer {url} within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn child(&self) -> &ManagedChild {
        &self.child
    }

    pub async fn stop(&mut self) {
        self.child.terminate(Duration::from_secs(10)).await;
    }
}
