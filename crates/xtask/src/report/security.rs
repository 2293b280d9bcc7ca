//! Axis "Security posture": checkov skips declared in the renders, and the results of checkov
//! (on offline Terraform plans) and zizmor (on the workflows).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::render::{AWS_ENVIRONMENTS, Renders, configuration};
use super::table::Table;

const SKIPS_HOW: &str = "`\"//\": [\"checkov:skip=CKV_…:reason\"]` entries next to resources in the renders (infra_tests::declared_skips); crates/infra-tests/tests/aws.rs fails on any checkov finding without one";
const TOOLS_HOW: &str = "checkov --framework terraform_plan on an offline terraform plan of each environment (infra_tests::checkov_plan, as crates/infra-tests/tests/aws.rs); zizmor --offline --format json .github/workflows";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckovSkips {
    pub how: String,
    pub by_environment: BTreeMap<String, DeclaredSkips>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeclaredSkips {
    pub skips: usize,
    pub with_reason: usize,
    /// Check id → how many resources skip it.
    pub checks: BTreeMap<String, u64>,
}

/// The tools' results: recorded by `--security`, otherwise carried from the committed file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum SecurityFigures {
    #[serde(rename = "computed")]
    Computed(ToolResults),
    #[serde(rename = "not computed yet")]
    NotComputed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolResults {
    pub command: String,
    pub how: String,
    pub checkov_version: String,
    pub checkov: BTreeMap<String, CheckovResult>,
    pub zizmor_version: String,
    pub zizmor_findings: usize,
    pub zizmor_by_severity: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckovResult {
    pub failed_checks: usize,
    /// `CHECK resource` of each finding no declared skip explains.
    pub without_declared_skip: Vec<String>,
}

/// One zizmor finding; only its severity is read.
#[derive(Debug, Deserialize)]
struct ZizmorFinding {
    #[serde(default)]
    determinations: ZizmorDeterminations,
}

#[derive(Debug, Default, Deserialize)]
struct ZizmorDeterminations {
    #[serde(default)]
    severity: Option<String>,
}

impl CheckovSkips {
    pub fn compute(renders: &Renders) -> Self {
        let by_environment = renders
            .terraform
            .iter()
            .map(|(path, file)| {
                let skips = infra_tests::declared_skips(&file.raw);
                let mut checks: BTreeMap<String, u64> = BTreeMap::new();
                for skip in &skips {
                    *checks.entry(skip.check.clone()).or_default() += 1;
                }
                let declared = DeclaredSkips {
                    skips: skips.len(),
                    with_reason: skips.iter().filter(|s| !s.reason.is_empty()).count(),
                    checks,
                };
                (configuration(path).to_owned(), declared)
            })
            .collect();
        Self {
            how: SKIPS_HOW.to_owned(),
            by_environment,
        }
    }

    pub fn table(&self) -> String {
        let mut table = Table::new([
            "configuration",
            "declared skips",
            "with a reason",
            "checks skipped",
        ]);
        for (env, e) in &self.by_environment {
            let checks = e
                .checks
                .iter()
                .map(|(c, n)| format!("{c}×{n}"))
                .collect::<Vec<_>>()
                .join(", ");
            table.row([
                env.clone(),
                e.skips.to_string(),
                e.with_reason.to_string(),
                checks,
            ]);
        }
        table.render()
    }
}

impl SecurityFigures {
    pub fn table(&self) -> String {
        let Self::Computed(s) = self else {
            return "_Not computed yet: run `cargo xtask report --security` (needs terraform, the provider mirror, checkov and zizmor)._\n".to_owned();
        };
        let mut table = Table::new(["tool", "result", "detail"]);
        for (env, c) in &s.checkov {
            table.row([
                format!("checkov {} ({env} plan)", s.checkov_version),
                format!("{} failed checks", c.failed_checks),
                format!("{} without a declared skip", c.without_declared_skip.len()),
            ]);
        }
        let severities = s
            .zizmor_by_severity
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        table.row([
            format!("{} (.github/workflows)", s.zizmor_version),
            format!("{} findings", s.zizmor_findings),
            if severities.is_empty() {
                "–".into()
            } else {
                severities
            },
        ]);
        table.render() + &format!("\nRecorded by `{}`.\n", s.command)
    }

    /// Runs checkov on an offline plan of each environment and zizmor on the workflows.
    pub fn compute(root: &Path, renders: &Renders) -> Result<Self> {
        let missing = missing_tools();
        if !missing.is_empty() {
            bail!("--security needs {}", missing.join(", "));
        }
        let mut checkov = BTreeMap::new();
        for env in AWS_ENVIRONMENTS {
            checkov.insert(env.to_owned(), checkov_environment(env, renders)?);
        }
        let zizmor = find_program("zizmor").context("zizmor")?;
        let findings = zizmor_findings(root, &zizmor)?;
        let mut by_severity: BTreeMap<String, u64> = BTreeMap::new();
        for finding in &findings {
            let severity = finding.determinations.severity.as_deref();
            *by_severity
                .entry(severity.unwrap_or("unknown").to_owned())
                .or_default() += 1;
        }
        Ok(Self::Computed(ToolResults {
            command: "cargo xtask report --security".to_owned(),
            how: TOOLS_HOW.to_owned(),
            checkov_version: version(&infra_tests::checkov_program()),
            checkov,
            zizmor_version: version(&zizmor),
            zizmor_findings: findings.len(),
            zizmor_by_severity: by_severity,
        }))
    }
}

fn checkov_environment(env: &str, renders: &Renders) -> Result<CheckovResult> {
    eprintln!("report: terraform plan and checkov of {env} (a minute or two)");
    let relative = super::render::terraform_path(env);
    // infra_tests panics with a message naming what failed; turn that into an error.
    let findings = std::panic::catch_unwind(|| {
        let workspace = infra_tests::Workspace::new(&relative, infra_tests::offline_provider());
        workspace.init();
        workspace.plan(&infra_tests::environment_vars(workspace.path()));
        infra_tests::checkov_plan(&workspace.plan_file())
    })
    .map_err(|_| anyhow::anyhow!("checkov of {env} failed (see the message above)"))?;
    let skipped: BTreeSet<(String, String)> =
        infra_tests::declared_skips(&renders.terraform[relative.as_str()].raw)
            .into_iter()
            .map(|s| (s.resource, s.check))
            .collect();
    let without_declared_skip = findings
        .iter()
        .filter(|f| !skipped.contains(&(f.resource.clone(), f.check.clone())))
        .map(|f| format!("{} {}", f.check, f.resource))
        .collect();
    Ok(CheckovResult {
        failed_checks: findings.len(),
        without_declared_skip,
    })
}

fn zizmor_findings(root: &Path, zizmor: &Path) -> Result<Vec<ZizmorFinding>> {
    let output = Command::new(zizmor)
        .current_dir(root)
        .args(["--offline", "--format", "json", ".github/workflows"])
        .output()
        .context("cannot run zizmor")?;
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "zizmor printed no JSON report:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The tools `--security` needs that are not installed.
pub fn missing_tools() -> Vec<&'static str> {
    let mut missing = Vec::new();
    if find_program("terraform").is_none() {
        missing.push("terraform");
    }
    let mirror = std::env::var("TF_PLUGIN_MIRROR").unwrap_or_else(|_| "/opt/tf-plugins".into());
    if !Path::new(&mirror)
        .join("registry.terraform.io/hashicorp/aws")
        .is_dir()
    {
        missing.push("the hashicorp/aws provider mirror (TF_PLUGIN_MIRROR)");
    }
    if std::env::var_os("CHECKOV").is_none()
        && find_program("checkov").is_none()
        && !Path::new("/opt/checkov-venv/bin/checkov").is_file()
    {
        missing.push("checkov");
    }
    if find_program("zizmor").is_none() {
        missing.push("zizmor");
    }
    missing
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn version(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
