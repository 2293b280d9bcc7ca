//! checkov on a plan, and the skips the terranix modules write next to each
//! resource (checkov reads none from Terraform JSON).

use crate::find_program;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A checkov skip declared in Terraform JSON, next to the resource:
/// `"//": ["checkov:skip=CKV_AWS_1:why"]` (Terraform ignores `//` properties).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skip {
    pub resource: String,
    pub check: String,
    pub reason: String,
}

/// The checkov skips declared in a Terraform JSON configuration.
pub fn declared_skips(config: &Value) -> Vec<Skip> {
    let mut skips = Vec::new();
    let Some(types) = config["resource"].as_object() else {
        return skips;
    };
    for (kind, resources) in types {
        for (name, body) in resources.as_object().into_iter().flatten() {
            let comments = match &body["//"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            for comment in comments {
                let Some(rest) = comment.strip_prefix("checkov:skip=") else {
                    continue;
                };
                let (check, reason) = rest.split_once(':').unwrap_or((rest, ""));
                skips.push(Skip {
                    resource: format!("{kind}.{name}"),
                    check: check.trim().to_owned(),
                    reason: reason.trim().to_owned(),
                });
            }
        }
    }
    skips
}

/// One failed checkov check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub check: String,
    pub resource: String,
    pub name: String,
}

/// The checkov program: `$CHECKOV`, else `checkov` on PATH, else the
/// dedicated virtualenv `/opt/checkov-venv` (checkov pins boto versions that
/// clash with moto's, so it is best installed apart).
pub fn checkov_program() -> PathBuf {
    if let Some(path) = std::env::var_os("CHECKOV") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from("/opt/checkov-venv/bin/checkov");
    find_program("checkov")
        .or_else(|| venv.is_file().then_some(venv))
        .unwrap_or_else(|| {
            panic!(
                "checkov is required: `pip install checkov` (3.x, ideally in its own virtualenv), \
                 then put it on PATH or set CHECKOV to its path"
            )
        })
}

/// Runs checkov on a plan (`terraform show -json` output) offline and
/// returns its failed checks. checkov cannot read skips from JSON, so none
/// are passed: callers compare the findings with [`declared_skips`].
pub fn checkov_plan(plan_file: &Path) -> Vec<Finding> {
    // checkov recognises a plan only by a `.json` name.
    let scratch = tempfile::tempdir().expect("temporary directory");
    let named = scratch.path().join("plan.json");
    std::fs::copy(plan_file, &named)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", plan_file.display()));
    let output = Command::new(checkov_program())
        .arg("--file")
        .arg(&named)
        .args([
            "--framework",
            "terraform_plan",
            "--skip-download",
            "--output",
            "json",
            "--quiet",
            "--compact",
        ])
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
        .output()
        .unwrap_or_else(|e| panic!("cannot run checkov: {e}"));
    // Exit status 1 means "failed checks": the report says which.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    // One report, or one per framework.
    let reports = match report {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut findings: Vec<Finding> = reports
        .iter()
        .flat_map(|r| {
            r["results"]["failed_checks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|f| Finding {
            check: f["check_id"].as_str().unwrap_or_default().to_owned(),
            resource: f["resource"].as_str().unwrap_or_default().to_owned(),
            name: f["check_name"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    assert!(
        reports
            .iter()
            .any(|r| r["summary"]["passed"].as_u64().unwrap_or(0) > 0),
        "checkov passed no check at all: did it parse the plan?\n{stdout}"
    );
    findings.sort();
    findings.dedup();
    findings
}
