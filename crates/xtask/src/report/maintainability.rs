//! Axis "Maintainability": what a throwaway catalog entry changes on both targets, from an
//! offline Nix evaluation of the renders with and without it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::authored::code_lines;
use super::diff::line_changes;
use super::files::{canonical_json, read_optional};
use super::render::{Template, Terraform};
use super::table::{Table, code};

/// The throwaway catalog entry of the render figures: appended to `services.toml`.
pub const THROWAWAY_ENTRY: &str = r#"
[services.reports]
crate = "reports"
port = 3002
metrics_port = 9102
route = "/reports"
health = "/reports/health"
cpu = 256
memory = 512
instances = { desired = 1, min = 1, max = 2 }
database = true
upstreams = ["api"]
env = { RUST_LOG = "info" }
"#;

const COMMAND: &str =
    "cargo xtask report --nixpkgs-lib <nixpkgs.lib checkout> --terranix <terranix checkout>";
const HOW: &str = "nix-instantiate --eval --strict --json nix/render-offline.nix with services.toml, then with services.toml plus THROWAWAY_ENTRY (crates/xtask/src/report/maintainability.rs); lines = a line diff of the canonical JSON (what a pull request shows); resources = addresses added, changed or removed (what terraform plan counts); plan_changes = northflank::diff::diff (what northflank plan prints)";

/// Source trees for the offline Nix evaluation (what `scripts/render` takes).
#[derive(Debug, Clone)]
pub struct Trees {
    pub nixpkgs_lib: PathBuf,
    pub terranix: PathBuf,
}

/// The diff figures: computed with the trees, otherwise carried from the committed file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum RenderFigures {
    #[serde(rename = "computed")]
    Computed(RenderDiff),
    #[serde(rename = "not computed yet")]
    NotComputed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderDiff {
    pub command: String,
    pub how: String,
    pub authored_lines: u64,
    pub renders_match_committed: bool,
    pub files: BTreeMap<String, FileDiff>,
}

/// What one rendered file shows in the pull request and in a plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FileDiff {
    pub lines_added: usize,
    pub lines_removed: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_to_add: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_to_change: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_to_destroy: Option<Vec<String>>,
    /// `added` / `changed` / `removed` → paths `northflank plan` prints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_changes: Option<BTreeMap<String, Vec<String>>>,
    /// Node kind → how many more (or fewer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes_added: Option<BTreeMap<String, i64>>,
}

impl RenderFigures {
    /// Renders the catalog with and without [`THROWAWAY_ENTRY`] and compares them.
    pub fn compute(root: &Path, trees: &Trees) -> Result<Self> {
        let scratch = tempfile::tempdir().context("temporary directory")?;
        let catalog_text = std::fs::read_to_string(root.join(catalog::FILE_NAME))
            .with_context(|| format!("cannot read {}", catalog::FILE_NAME))?;
        let throwaway = scratch.path().join("services.toml");
        std::fs::write(&throwaway, format!("{catalog_text}{THROWAWAY_ENTRY}"))
            .context("cannot write the throwaway catalog")?;
        catalog::Catalog::load(&throwaway).context("the throwaway catalog entry is not valid")?;

        let base = evaluate(root, trees, None)?;
        let with_entry = evaluate(root, trees, Some(&throwaway))?;
        let paths: BTreeSet<&String> = base.keys().chain(with_entry.keys()).collect();
        let mut renders_match_committed = true;
        let mut files = BTreeMap::new();
        for path in paths {
            let old = base.get(path).unwrap_or(&Value::Null);
            let new = with_entry.get(path).unwrap_or(&Value::Null);
            if let Some(committed) = read_optional(&root.join(path))?
                && serde_json::from_str::<Value>(&committed).ok().as_ref() != Some(old)
            {
                renders_match_committed = false;
            }
            files.insert(path.clone(), file_diff(path, old, new)?);
        }
        Ok(Self::Computed(RenderDiff {
            command: COMMAND.to_owned(),
            how: HOW.to_owned(),
            authored_lines: code_lines("services.toml", THROWAWAY_ENTRY),
            renders_match_committed,
            files,
        }))
    }

    pub fn table(&self) -> String {
        let Self::Computed(r) = self else {
            return "_Not computed yet: run `cargo xtask report --nixpkgs-lib DIR --terranix DIR`._\n"
                .to_owned();
        };
        let mut table = Table::new([
            "rendered file",
            "lines in the pull request",
            "what plan shows",
        ]);
        for (path, e) in &r.files {
            table.row([
                code(path),
                format!("+{} −{}", e.lines_added, e.lines_removed),
                e.plan_summary(),
            ]);
        }
        let matches = if r.renders_match_committed {
            "yes"
        } else {
            "**no** (run scripts/render)"
        };
        format!(
            "Authored change: {} lines in `services.toml` (plus the service's crate). Renders of the committed catalog match the committed files: {matches}.\n\n",
            r.authored_lines
        ) + &table.render()
            + &format!("\nRecorded by `{}`.\n", r.command)
    }
}

impl FileDiff {
    /// `N to add, …` for Terraform; `N added, … (nodes: …)` for the template.
    fn plan_summary(&self) -> String {
        let count = |v: &Option<Vec<String>>| v.as_ref().map_or(0, Vec::len);
        let Some(changes) = &self.plan_changes else {
            return format!(
                "{} to add, {} to change, {} to destroy",
                count(&self.resources_to_add),
                count(&self.resources_to_change),
                count(&self.resources_to_destroy),
            );
        };
        let changed = |kind: &str| changes.get(kind).map_or(0, Vec::len);
        let nodes = self
            .nodes_added
            .iter()
            .flatten()
            .map(|(k, n)| format!("{k} {n:+}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{} added, {} changed, {} removed (nodes: {})",
            changed("added"),
            changed("changed"),
            changed("removed"),
            if nodes.is_empty() { "none" } else { &nodes }
        )
    }
}

fn file_diff(path: &str, old: &Value, new: &Value) -> Result<FileDiff> {
    let (lines_added, lines_removed) = line_changes(&canonical_json(old), &canonical_json(new));
    let mut diff = FileDiff {
        lines_added,
        lines_removed,
        ..FileDiff::default()
    };
    if path.ends_with(".tf.json") {
        let (old, new) = (Terraform::deserialize(old)?, Terraform::deserialize(new)?);
        let (add, change, destroy) = resource_changes(&old, &new);
        diff.resources_to_add = Some(add);
        diff.resources_to_change = Some(change);
        diff.resources_to_destroy = Some(destroy);
    } else {
        diff.plan_changes = Some(plan_changes(old, new));
        let (before, after) = (
            Template::deserialize(old)?.kinds(),
            Template::deserialize(new)?.kinds(),
        );
        let added = after
            .iter()
            .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, n)| *n != 0)
            .collect();
        diff.nodes_added = Some(added);
    }
    Ok(diff)
}

/// What `northflank plan` prints, grouped by kind of change.
fn plan_changes(old: &Value, new: &Value) -> BTreeMap<String, Vec<String>> {
    use northflank::diff::Change;
    let content = |value: &Value| {
        northflank::template::Template {
            value: value.clone(),
        }
        .content()
    };
    let changes = northflank::diff::diff(&content(old), &content(new));
    let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for change in &changes {
        let (kind, path) = match change {
            Change::Added { path, .. } => ("added", path),
            Change::Removed { path, .. } => ("removed", path),
            Change::Changed { path, .. } => ("changed", path),
        };
        grouped
            .entry(kind.to_owned())
            .or_default()
            .push(path.clone());
    }
    grouped
}

/// Addresses added, changed and removed between two Terraform renders.
fn resource_changes(old: &Terraform, new: &Terraform) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (a, b) = (old.addresses(), new.addresses());
    let add = b.keys().filter(|k| !a.contains_key(*k)).cloned().collect();
    let destroy = a.keys().filter(|k| !b.contains_key(*k)).cloned().collect();
    let change = b
        .iter()
        .filter(|(k, v)| a.get(*k).is_some_and(|old| old != *v))
        .map(|(k, _)| k.clone())
        .collect();
    (add, change, destroy)
}

/// Every committed render of one catalog (`nix/render-offline.nix`): path → JSON.
fn evaluate(root: &Path, trees: &Trees, catalog: Option<&Path>) -> Result<BTreeMap<String, Value>> {
    let absolute = |p: &Path| {
        std::fs::canonicalize(p).with_context(|| format!("not a directory: {}", p.display()))
    };
    let mut command = Command::new("nix-instantiate");
    command
        .args(["--eval", "--strict", "--json"])
        .arg(root.join("nix/render-offline.nix"))
        .arg("--argstr")
        .arg("nixpkgsLib")
        .arg(absolute(&trees.nixpkgs_lib)?)
        .arg("--argstr")
        .arg("terranix")
        .arg(absolute(&trees.terranix)?);
    if let Some(file) = catalog {
        command.arg("--arg").arg("catalogFile").arg(file);
    }
    let output = command
        .output()
        .context("cannot run nix-instantiate (install Nix)")?;
    if !output.status.success() {
        bail!(
            "nix-instantiate failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("nix-instantiate printed no JSON object")
}
