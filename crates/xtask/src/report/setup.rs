//! Axis "Setup": the settings each target needs from a person, and what the AWS bootstrap
//! creates.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::render::Terraform;
use super::table::Table;

const HOW: &str = "GitHub settings the workflows read (`environment:`, `vars.X`, `secrets.X`) per job (jobs named *northflank* are Northflank's), split by whether the bootstrap's `github_settings` output prints a gh command that creates it";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    pub how: String,
    pub targets: BTreeMap<String, TargetSettings>,
    pub bootstrap: Bootstrap,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetSettings {
    pub settings: BTreeSet<String>,
    pub printed_by_bootstrap: Vec<String>,
    pub by_hand: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bootstrap {
    pub resources: usize,
    pub outputs: usize,
    pub gh_commands: usize,
}

impl Setup {
    /// The GitHub environments, variables and secrets the workflows read, split into those the
    /// bootstrap output prints a `gh` command for and the rest.
    pub fn compute(root: &Path, bootstrap: &Terraform) -> Result<Self> {
        let needs = workflow_needs(root)?;
        let script = bootstrap.output_text("github_settings");
        let printed = bootstrap_settings(script);
        let targets = needs
            .into_iter()
            .map(|(target, settings)| {
                let (by_bootstrap, by_hand): (Vec<String>, Vec<String>) =
                    settings.iter().cloned().partition(|s| printed.contains(s));
                let entry = TargetSettings {
                    settings,
                    printed_by_bootstrap: by_bootstrap,
                    by_hand,
                };
                (target.to_owned(), entry)
            })
            .collect();
        let gh_commands = script
            .lines()
            .filter(|l| l.trim_start().starts_with("gh "))
            .count();
        Ok(Self {
            how: HOW.to_owned(),
            targets,
            bootstrap: Bootstrap {
                resources: bootstrap.resource_count(),
                outputs: bootstrap.output.len(),
                gh_commands,
            },
        })
    }

    pub fn table(&self) -> String {
        let mut table = Table::new([
            "target",
            "CI settings read",
            "created by the bootstrap's printed commands",
            "entered by hand",
        ]);
        for (target, t) in &self.targets {
            table.row([
                target.clone(),
                t.settings.len().to_string(),
                format!(
                    "{} ({})",
                    t.printed_by_bootstrap.len(),
                    t.printed_by_bootstrap.join(", ")
                ),
                format!("{} ({})", t.by_hand.len(), t.by_hand.join(", ")),
            ]);
        }
        let b = &self.bootstrap;
        table.row([
            "aws bootstrap (`nix run .#bootstrap-aws`, once per account)".to_owned(),
            format!("{} resources, {} outputs", b.resources, b.outputs),
            format!("{} `gh` commands printed", b.gh_commands),
            "–".to_owned(),
        ]);
        table.render()
    }
}

/// Target (`aws`, `northflank`) → settings its jobs read, over every workflow file.
fn workflow_needs(root: &Path) -> Result<BTreeMap<&'static str, BTreeSet<String>>> {
    let mut workflows: Vec<PathBuf> = std::fs::read_dir(root.join(".github/workflows"))
        .context("cannot list .github/workflows")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    workflows.sort();
    let mut needs: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for workflow in &workflows {
        let text = std::fs::read_to_string(workflow)
            .with_context(|| format!("cannot read {}", workflow.display()))?;
        for (job, settings) in workflow_settings(&text) {
            let target = if job.contains("northflank") {
                "northflank"
            } else {
                "aws"
            };
            needs.entry(target).or_default().extend(settings);
        }
    }
    Ok(needs)
}

/// `job id → settings` (`environment:NAME`, `variable:NAME`, `secret:NAME`) of a workflow,
/// read line by line: jobs are the two-space-indented keys under `jobs:`.
pub fn workflow_settings(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut in_jobs = false;
    let mut job = String::new();
    for line in text.lines() {
        if line.starts_with("jobs:") {
            in_jobs = true;
            continue;
        }
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_jobs = false;
        }
        if !in_jobs {
            continue;
        }
        if let Some(name) = job_key(line) {
            job = name.to_owned();
            continue;
        }
        if !job.is_empty() {
            out.entry(job.clone())
                .or_default()
                .extend(line_settings(line));
        }
    }
    out.retain(|_, s| !s.is_empty());
    out
}

/// `  name:` (a job id under `jobs:`).
fn job_key(line: &str) -> Option<&str> {
    let key = line.strip_prefix("  ")?;
    if key.starts_with(' ') || key.starts_with('#') {
        return None;
    }
    key.trim_end().strip_suffix(':')
}

/// The settings one line of a job reads.
fn line_settings(line: &str) -> Vec<String> {
    let mut settings = Vec::new();
    if let Some(name) = line.trim().strip_prefix("environment:") {
        let name = name.trim();
        // `environment: [a, b]` is a matrix axis, `${{ … }}` an expression: not names.
        if !name.is_empty() && !name.starts_with('[') && !name.contains("${{") {
            settings.push(format!("environment:{name}"));
        }
    }
    for (marker, kind) in [("vars.", "variable"), ("secrets.", "secret")] {
        let mut rest = line;
        while let Some(at) = rest.find(marker) {
            let after = &rest[at + marker.len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `vars.` inside another word (e.g. `env.vars.`) is not an expression.
            let boundary = rest[..at]
                .chars()
                .last()
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '.' && c != '_');
            if boundary && !name.is_empty() && name != "GITHUB_TOKEN" {
                settings.push(format!("{kind}:{name}"));
            }
            rest = after;
        }
    }
    settings
}

/// The settings a bootstrap `gh` script creates: `gh variable set X`, `gh secret set X`, and
/// environments `…/environments/X` (`$env` expanded from a `for env in …; do` loop).
pub fn bootstrap_settings(script: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut loop_values: Vec<String> = Vec::new();
    for line in script.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("for env in ") {
            loop_values = rest
                .split(';')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            continue;
        }
        if line == "done" {
            loop_values.clear();
            continue;
        }
        for (prefix, kind) in [
            ("gh variable set ", "variable"),
            ("gh secret set ", "secret"),
        ] {
            if let Some(rest) = line.strip_prefix(prefix)
                && let Some(name) = rest.split_whitespace().next()
            {
                out.insert(format!("{kind}:{name}"));
            }
        }
        if let Some(name) = environment_put(line) {
            if name == "$env" {
                out.extend(loop_values.iter().map(|v| format!("environment:{v}")));
            } else {
                out.insert(format!("environment:{name}"));
            }
        }
    }
    out
}

/// The environment name of `gh api --method PUT …/environments/NAME`.
fn environment_put(line: &str) -> Option<String> {
    if !line.starts_with("gh api --method PUT") {
        return None;
    }
    let at = line.find("/environments/")?;
    let name: String = line[at + "/environments/".len()..]
        .chars()
        .take_while(|c| !matches!(c, '"' | '/' | ' '))
        .collect();
    (!name.is_empty()).then_some(name)
}
