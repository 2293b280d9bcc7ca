//! `cargo xtask report`: the figures of `docs/comparison.md`, recomputed from the repository.
//!
//! Writes `docs/figures.json` and regenerates the tables between the
//! `<!-- figures:NAME -->` / `<!-- /figures:NAME -->` markers of `docs/comparison.md`
//! (the prose around them is hand-written). `--check` writes nothing and fails with a diff
//! when the committed files differ from a fresh run.
//!
//! Three kinds of figures:
//! - **files**: read from the repository alone (authored and rendered lines, resources per
//!   environment, Northflank nodes, setup settings, declared checkov skips, sizes, benchmarks).
//!   Always recomputed, in both modes.
//! - **render**: the diff a throwaway catalog entry produces on both targets. Needs an offline
//!   Nix evaluation (`nix-instantiate` with nixpkgs' lib and terranix trees: `--nixpkgs-lib`,
//!   `--terranix`); without them the committed values are kept (and so not compared).
//! - **security**: checkov on offline Terraform plans and zizmor on the workflows. Slow (an
//!   init and a plan per environment); recomputed with `--security`, or when writing and the
//!   tools are installed; otherwise the committed values are kept (and so not compared).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

/// Where the figures go, relative to the root.
pub const FIGURES: &str = "docs/figures.json";
/// The document whose marked tables are regenerated.
pub const DOCUMENT: &str = "docs/comparison.md";
/// The benchmark results read when present.
pub const BENCHMARKS: &str = "benchmarks/results.json";

const AWS_ENVIRONMENTS: [&str; 2] = ["production", "staging"];
const TERRAFORM_RENDERS: [&str; 3] = [
    "infra/production/main.tf.json",
    "infra/staging/main.tf.json",
    "infra/bootstrap/main.tf.json",
];
const TEMPLATE: &str = "northflank/template.json";

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

/// Source trees for the offline Nix evaluation (what `scripts/render` takes).
#[derive(Debug, Clone)]
pub struct Trees {
    pub nixpkgs_lib: PathBuf,
    pub terranix: PathBuf,
}

/// Whether to run checkov and zizmor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Run them; fail when one is missing.
    Run,
    /// Run them when installed (terraform, its provider mirror, checkov, zizmor).
    IfInstalled,
    /// Keep the committed values.
    Keep,
}

#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub root: PathBuf,
    pub check: bool,
    pub trees: Option<Trees>,
    pub security: Security,
}

/// Flags of `cargo xtask report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Write nothing; exit non-zero with a diff when docs/figures.json or the tables of
    /// docs/comparison.md differ from a fresh run.
    #[arg(long)]
    pub check: bool,
    /// nixpkgs (or nixpkgs-lib) source tree: with --terranix, recompute the render figures.
    #[arg(long, requires = "terranix", value_name = "DIR")]
    pub nixpkgs_lib: Option<PathBuf>,
    /// terranix source tree: with --nixpkgs-lib, recompute the render figures.
    #[arg(long, requires = "nixpkgs_lib", value_name = "DIR")]
    pub terranix: Option<PathBuf>,
    /// Run checkov (on offline terraform plans) and zizmor; fail when one is missing. Default:
    /// when writing, run them if installed; with --check, keep the committed values.
    #[arg(long, conflicts_with = "no_security")]
    pub security: bool,
    /// Keep the committed checkov/zizmor figures.
    #[arg(long)]
    pub no_security: bool,
    /// Repository root (default: this workspace).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// `cargo xtask report`: an error when `--check` finds drift.
pub fn run_args(args: ReportArgs) -> Result<()> {
    let security = if args.security {
        Security::Run
    } else if args.no_security || args.check {
        Security::Keep
    } else {
        Security::IfInstalled
    };
    let options = ReportOptions {
        root: args.root.unwrap_or_else(crate::workspace_root),
        check: args.check,
        trees: args
            .nixpkgs_lib
            .zip(args.terranix)
            .map(|(nixpkgs_lib, terranix)| Trees {
                nixpkgs_lib,
                terranix,
            }),
        security,
    };
    if !run(&options)? {
        bail!("the committed figures differ from a fresh run (diff above)");
    }
    Ok(())
}

/// Runs the report. `Ok(true)`: written, or up to date; `Ok(false)`: `--check` found drift
/// (the diff is printed).
pub fn run(options: &ReportOptions) -> Result<bool> {
    let root = &options.root;
    let committed_figures = read_optional(&root.join(FIGURES))?;
    let committed: Value = match &committed_figures {
        Some(text) => {
            serde_json::from_str(text).with_context(|| format!("{FIGURES} is not JSON"))?
        }
        None => json!({}),
    };

    let mut figures = file_figures(root)?;
    let mut notes = Vec::new();
    figures["render"] = match &options.trees {
        Some(trees) => render_figures(root, trees)?,
        None => {
            notes.push("render figures kept from the committed file: give --nixpkgs-lib and --terranix to recompute and compare them");
            carried(&committed, "render")
        }
    };
    let run_security = match options.security {
        Security::Run => true,
        Security::IfInstalled => {
            let missing = missing_security_tools();
            if !missing.is_empty() {
                eprintln!(
                    "report: security figures kept from the committed file ({} not found)",
                    missing.join(", ")
                );
            }
            missing.is_empty()
        }
        Security::Keep => false,
    };
    figures["security"] = if run_security {
        security_figures(root)?
    } else {
        if options.security == Security::Keep {
            notes.push("security figures kept from the committed file: give --security to recompute and compare them");
        }
        carried(&committed, "security")
    };
    for note in notes {
        eprintln!("report: {note}");
    }

    let figures_text = canonical_json(&figures);
    let document = std::fs::read_to_string(root.join(DOCUMENT))
        .with_context(|| format!("cannot read {DOCUMENT}"))?;
    let regenerated = fill_document(&document, &figures)?;

    if options.check {
        let mut fresh = true;
        let old = committed_figures.unwrap_or_default();
        if old != figures_text {
            println!(
                "{FIGURES} differs from a fresh run:\n{}",
                diff_text(&old, &figures_text)
            );
            fresh = false;
        }
        if document != regenerated {
            println!(
                "{DOCUMENT} differs from a fresh run:\n{}",
                diff_text(&document, &regenerated)
            );
            fresh = false;
        }
        if fresh {
            println!("{FIGURES} and the tables of {DOCUMENT} are up to date");
        } else {
            println!("figures are out of date: run `cargo xtask report` and commit the result");
        }
        Ok(fresh)
    } else {
        std::fs::write(root.join(FIGURES), &figures_text)
            .with_context(|| format!("cannot write {FIGURES}"))?;
        std::fs::write(root.join(DOCUMENT), &regenerated)
            .with_context(|| format!("cannot write {DOCUMENT}"))?;
        println!("wrote {FIGURES} and the tables of {DOCUMENT}");
        Ok(true)
    }
}

fn carried(committed: &Value, key: &str) -> Value {
    match committed.get(key) {
        Some(value) => value.clone(),
        None => json!({"status": "not computed yet"}),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn read_json(root: &Path, relative: &str) -> Result<Value> {
    let text = std::fs::read_to_string(root.join(relative))
        .with_context(|| format!("cannot read {relative}"))?;
    serde_json::from_str(&text).with_context(|| format!("{relative} is not JSON"))
}

/// Keys sorted at every level, two-space indent, trailing newline (`jq -S .`).
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&sorted(value)).unwrap_or_default() + "\n"
}

// ---------------------------------------------------------------------------------------------
// Figures from the files alone

fn file_figures(root: &Path) -> Result<Value> {
    let renders: BTreeMap<&str, Value> = TERRAFORM_RENDERS
        .iter()
        .chain([&TEMPLATE])
        .map(|path| Ok((*path, read_json(root, path)?)))
        .collect::<Result<_>>()?;
    Ok(json!({
        "generated_by": "cargo xtask report (crates/xtask/src/report.rs)",
        "authored": authored(root)?,
        "rendered": rendered(root, &renders)?,
        "resources": resources(&renders),
        "northflank_nodes": northflank_nodes(&renders[TEMPLATE]),
        "setup": setup(root, &renders["infra/bootstrap/main.tf.json"])?,
        "checkov_skips": checkov_skips(&renders),
        "sizes": sizes(root, &renders)?,
        "benchmarks": benchmarks(root)?,
    }))
}

/// Which part of the comparison a file belongs to, or `None` when it is the same on both
/// targets and not infrastructure (the application crates, xtask).
pub fn classify(path: &str) -> Option<(&'static str, &'static str)> {
    let rules: &[(&str, (&str, &str))] = &[
        ("nix/aws/", ("aws", "terranix modules (nix/aws)")),
        (
            "nix/bootstrap/",
            ("aws", "bootstrap modules (nix/bootstrap)"),
        ),
        (
            "nix/lambda.nix",
            ("aws", "Lambda packaging (nix/lambda.nix)"),
        ),
        (
            "nix/tests/",
            ("aws", "tests (nix/tests, crates/infra-tests)"),
        ),
        (
            "crates/infra-tests/",
            ("aws", "tests (nix/tests, crates/infra-tests)"),
        ),
        (
            "nix/northflank/tests.nix",
            (
                "northflank",
                "tests (crates/northflank/tests, nix/northflank/tests.nix, tools/northflank-types)",
            ),
        ),
        (
            "nix/northflank/",
            ("northflank", "template module (nix/northflank)"),
        ),
        (
            "crates/northflank/src/",
            ("northflank", "Rust tooling (crates/northflank/src)"),
        ),
        (
            "crates/northflank/tests/",
            (
                "northflank",
                "tests (crates/northflank/tests, nix/northflank/tests.nix, tools/northflank-types)",
            ),
        ),
        (
            "crates/northflank/",
            ("northflank", "Rust tooling (crates/northflank/src)"),
        ),
        (
            "tools/northflank-types/",
            (
                "northflank",
                "tests (crates/northflank/tests, nix/northflank/tests.nix, tools/northflank-types)",
            ),
        ),
        ("services.toml", ("both", "catalog (services.toml)")),
        (
            "nix/",
            (
                "both",
                "shared Nix: catalog reader, renderer, images, apps, checks (nix/*.nix, flake.nix)",
            ),
        ),
        (
            "flake.nix",
            (
                "both",
                "shared Nix: catalog reader, renderer, images, apps, checks (nix/*.nix, flake.nix)",
            ),
        ),
        (
            ".github/workflows/",
            ("both", "CI/CD workflows (.github/workflows)"),
        ),
        ("scripts/", ("both", "scripts (scripts/)")),
    ];
    rules
        .iter()
        .find(|(prefix, _)| path == *prefix || (prefix.ends_with('/') && path.starts_with(prefix)))
        .map(|(_, part)| *part)
}

/// Where authored files are looked for.
const AUTHORED_ROOTS: [&str; 8] = [
    "services.toml",
    "flake.nix",
    "nix",
    "crates/northflank",
    "crates/infra-tests",
    "tools/northflank-types",
    ".github/workflows",
    "scripts",
];

fn authored(root: &Path) -> Result<Value> {
    let mut files = BTreeMap::new();
    for start in AUTHORED_ROOTS {
        collect_files(root, &root.join(start), &mut files)?;
    }
    let mut parts: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let mut per_file = Map::new();
    for (path, text) in &files {
        let Some((target, part)) = classify(path) else {
            continue;
        };
        let lines = code_lines(path, text);
        let entry = parts
            .entry((target.to_owned(), part.to_owned()))
            .or_default();
        entry.0 += 1;
        entry.1 += lines;
        per_file.insert(path.clone(), json!(lines));
    }
    let rows: Vec<Value> = parts
        .into_iter()
        .map(|((target, part), (files, lines))| {
            json!({"target": target, "part": part, "files": files, "lines": lines})
        })
        .collect();
    Ok(json!({
        "how": "non-blank lines that are not only a comment (#, //, /* */), per file under services.toml, flake.nix, nix/, crates/northflank, crates/infra-tests, tools/northflank-types (not node_modules, lock files or Markdown), .github/workflows, scripts/; the application crates (api, web, migrate, service-kit, catalog, test-postgres) and xtask are the same on both targets and not counted",
        "parts": rows,
        "files": per_file,
    }))
}

fn collect_files(root: &Path, path: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if matches!(
            name,
            "node_modules" | "target" | ".terraform" | "__pycache__"
        ) {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            collect_files(root, &entry, out)?;
        }
    } else {
        let relative = path
            .strip_prefix(root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        if relative.ends_with("package-lock.json")
            || relative.ends_with(".lock")
            || relative.ends_with(".md")
        {
            return Ok(());
        }
        // Binary or non-UTF-8 files are not authored text.
        if let Ok(text) = std::fs::read_to_string(path) {
            out.insert(relative, text);
        }
    }
    Ok(())
}

/// Non-blank lines that are not only a comment. Line comments by extension (`#` for Nix,
/// TOML, YAML, shell, Python; `//` for Rust, JavaScript, JSON with comments); `/* */` blocks in
/// Nix, Rust and JavaScript.
pub fn code_lines(path: &str, text: &str) -> u64 {
    let extension = path.rsplit_once('.').map_or("", |(_, e)| e);
    let (line_comment, block): (&[&str], bool) = match extension {
        "nix" => (&["#"], true),
        "rs" | "js" | "mjs" | "ts" => (&["//"], true),
        "json" => (&["//"], false),
        _ => (&["#"], false),
    };
    let mut in_block = false;
    let mut count = 0;
    for line in text.lines() {
        let mut rest = line.trim();
        let mut code = false;
        while !rest.is_empty() {
            if in_block {
                match rest.find("*/") {
                    Some(end) => {
                        in_block = false;
                        rest = rest[end + 2..].trim_start();
                    }
                    None => rest = "",
                }
            } else if block && rest.starts_with("/*") {
                in_block = true;
                rest = &rest[2..];
            } else if line_comment.iter().any(|c| rest.starts_with(c)) {
                rest = "";
            } else {
                code = true;
                rest = "";
            }
        }
        if code {
            count += 1;
        }
    }
    count
}

fn rendered(root: &Path, renders: &BTreeMap<&str, Value>) -> Result<Value> {
    let mut files = Map::new();
    for (path, value) in renders {
        let text = std::fs::read_to_string(root.join(path))?;
        let count = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_object)
                .map_or(0, Map::len)
        };
        let resources = value
            .get("resource")
            .and_then(Value::as_object)
            .map_or(0, |types| {
                types
                    .values()
                    .filter_map(Value::as_object)
                    .map(Map::len)
                    .sum()
            });
        let mut entry = json!({"lines": text.lines().count()});
        if path.ends_with(".tf.json") {
            entry["resources"] = json!(resources);
            entry["variables"] = json!(count("variable"));
            entry["outputs"] = json!(count("output"));
        } else {
            entry["nodes"] = json!(template_nodes(value).len());
            entry["arguments"] = json!(count("arguments"));
        }
        files.insert((*path).to_owned(), entry);
    }
    Ok(json!({
        "how": "lines of each committed render (canonical JSON, `jq -S .`); resources = `resource.<type>.<name>` entries; nodes = the root workflow and every step under it",
        "files": files,
    }))
}

fn resources(renders: &BTreeMap<&str, Value>) -> Value {
    let mut by_env = Map::new();
    for path in TERRAFORM_RENDERS {
        let env = path.split('/').nth(1).unwrap_or(path);
        let mut types = Map::new();
        if let Some(all) = renders[path].get("resource").and_then(Value::as_object) {
            for (kind, named) in all {
                types.insert(kind.clone(), json!(named.as_object().map_or(0, Map::len)));
            }
        }
        by_env.insert(env.to_owned(), Value::Object(types));
    }
    let mut concerns: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    for env in AWS_ENVIRONMENTS {
        for (kind, count) in by_env[env].as_object().into_iter().flatten() {
            *concerns
                .entry(concern(kind))
                .or_default()
                .entry(env.to_owned())
                .or_default() += count.as_u64().unwrap_or(0);
        }
    }
    json!({
        "how": "count of `resource.<type>.<name>` in infra/<env>/main.tf.json; concerns group types by prefix (concern() in crates/xtask/src/report.rs)",
        "by_type": by_env,
        "by_concern": concerns,
    })
}

/// What a resource type is for, to compare with what Northflank provides without being asked.
pub fn concern(kind: &str) -> &'static str {
    let rules: &[(&[&str], &str)] = &[
        (
            &[
                "aws_vpc",
                "aws_subnet",
                "aws_route",
                "aws_internet_gateway",
                "aws_nat_gateway",
                "aws_eip",
                "aws_default_security_group",
                "aws_security_group",
                "aws_flow_log",
                "aws_service_discovery",
            ],
            "network: VPC, subnets, routes, NAT, endpoints, security groups, flow logs",
        ),
        (
            &["aws_lb", "aws_acm", "aws_route53"],
            "load balancer and TLS",
        ),
        (
            &["aws_ecs", "aws_ecr", "aws_appautoscaling", "aws_lambda"],
            "compute: ECS, ECR, autoscaling, Lambda",
        ),
        (&["aws_db"], "database"),
        (
            &["aws_cloudwatch", "aws_sns"],
            "logs, metrics, alarms, dashboard",
        ),
        (&["aws_kms"], "encryption keys"),
        (&["aws_iam"], "IAM"),
    ];
    rules
        .iter()
        .find(|(prefixes, _)| prefixes.iter().any(|p| kind.starts_with(p)))
        .map_or("other", |(_, name)| name)
}

/// The template's nodes: the root workflow and every step under it, depth first.
fn template_nodes(template: &Value) -> Vec<&Value> {
    fn walk<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
        out.push(node);
        for step in node["spec"]["steps"].as_array().into_iter().flatten() {
            walk(step, out);
        }
    }
    let mut out = Vec::new();
    if template["spec"].get("kind").is_some() {
        walk(&template["spec"], &mut out);
    }
    out
}

fn northflank_nodes(template: &Value) -> Value {
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for node in template_nodes(template) {
        *kinds
            .entry(node["kind"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    json!({
        "how": "kinds of the root workflow of northflank/template.json and every step under it (spec.steps, recursively)",
        "by_kind": kinds,
    })
}

/// The settings each target needs from a person: GitHub environments, variables and secrets the
/// workflows read, split into those the bootstrap output prints a `gh` command for and the rest.
fn setup(root: &Path, bootstrap: &Value) -> Result<Value> {
    let mut needs: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut workflows: Vec<PathBuf> = std::fs::read_dir(root.join(".github/workflows"))
        .context("cannot list .github/workflows")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    workflows.sort();
    for workflow in &workflows {
        let text = std::fs::read_to_string(workflow)?;
        for (job, settings) in workflow_settings(&text) {
            let target = if job.contains("northflank") {
                "northflank"
            } else {
                "aws"
            };
            needs.entry(target).or_default().extend(settings);
        }
    }
    let script = bootstrap["output"]["github_settings"]["value"]
        .as_str()
        .unwrap_or_default();
    let printed = bootstrap_settings(script);
    let gh_commands = script
        .lines()
        .filter(|l| l.trim_start().starts_with("gh "))
        .count();
    let mut targets = Map::new();
    for (target, settings) in &needs {
        let (by_bootstrap, by_hand): (Vec<&String>, Vec<&String>) =
            settings.iter().partition(|s| printed.contains(*s));
        targets.insert(
            (*target).to_owned(),
            json!({"settings": settings, "printed_by_bootstrap": by_bootstrap, "by_hand": by_hand}),
        );
    }
    Ok(json!({
        "how": "GitHub settings the workflows read (`environment:`, `vars.X`, `secrets.X`) per job (jobs named *northflank* are Northflank's), split by whether the bootstrap's `github_settings` output prints a gh command that creates it",
        "targets": targets,
        "bootstrap": {
            "resources": bootstrap["resource"].as_object().map_or(0, |t| t.values().filter_map(Value::as_object).map(Map::len).sum::<usize>()),
            "outputs": bootstrap["output"].as_object().map_or(0, Map::len),
            "gh_commands": gh_commands,
        },
    }))
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
        if let Some(key) = line.strip_prefix("  ")
            && !key.starts_with(' ')
            && !key.starts_with('#')
            && let Some(name) = key.trim_end().strip_suffix(':')
        {
            job = name.to_owned();
            continue;
        }
        if job.is_empty() {
            continue;
        }
        let settings = out.entry(job.clone()).or_default();
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("environment:") {
            let name = name.trim();
            // `environment: [a, b]` is a matrix axis, `${{ … }}` an expression: not names.
            if !name.is_empty() && !name.starts_with('[') && !name.contains("${{") {
                settings.insert(format!("environment:{name}"));
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
                    settings.insert(format!("{kind}:{name}"));
                }
                rest = after;
            }
        }
    }
    out.retain(|_, s| !s.is_empty());
    out
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
        if line.starts_with("gh api --method PUT")
            && let Some(at) = line.find("/environments/")
        {
            let name: String = line[at + "/environments/".len()..]
                .chars()
                .take_while(|c| !matches!(c, '"' | '/' | ' '))
                .collect();
            if name == "$env" {
                out.extend(loop_values.iter().map(|v| format!("environment:{v}")));
            } else if !name.is_empty() {
                out.insert(format!("environment:{name}"));
            }
        }
    }
    out
}

fn checkov_skips(renders: &BTreeMap<&str, Value>) -> Value {
    let mut by_env = Map::new();
    for path in TERRAFORM_RENDERS {
        let env = path.split('/').nth(1).unwrap_or(path);
        let skips = infra_tests::declared_skips(&renders[path]);
        let mut checks: BTreeMap<String, u64> = BTreeMap::new();
        for skip in &skips {
            *checks.entry(skip.check.clone()).or_default() += 1;
        }
        by_env.insert(
            env.to_owned(),
            json!({"skips": skips.len(), "with_reason": skips.iter().filter(|s| !s.reason.is_empty()).count(), "checks": checks}),
        );
    }
    json!({
        "how": "`\"//\": [\"checkov:skip=CKV_…:reason\"]` entries next to resources in the renders (infra_tests::declared_skips); crates/infra-tests/tests/aws.rs fails on any checkov finding without one",
        "by_environment": by_env,
    })
}

/// Instance sizes and counts that drive the bill, from the catalog and the renders.
fn sizes(root: &Path, renders: &BTreeMap<&str, Value>) -> Result<Value> {
    let catalog = catalog::Catalog::load(root.join(catalog::FILE_NAME))
        .with_context(|| format!("cannot load {}", catalog::FILE_NAME))?;
    let mut workloads = Map::new();
    for (name, s) in &catalog.services {
        workloads.insert(
            name.clone(),
            json!({"kind": "service", "cpu": s.cpu, "memory": s.memory, "desired": s.instances.desired, "min": s.instances.min, "max": s.instances.max}),
        );
    }
    for (name, j) in &catalog.jobs {
        workloads.insert(
            name.clone(),
            json!({"kind": if j.lambda { "job (Lambda on AWS)" } else { "job" }, "cpu": j.cpu, "memory": j.memory}),
        );
    }
    let mut aws = Map::new();
    for env in AWS_ENVIRONMENTS {
        let r = &renders[format!("infra/{env}/main.tf.json").as_str()]["resource"];
        let count = |kind: &str| r[kind].as_object().map_or(0, Map::len);
        let databases: Vec<Value> = r["aws_db_instance"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, db)| {
                json!({
                    "instance_class": db["instance_class"],
                    "allocated_storage_gib": db["allocated_storage"],
                    "multi_az": db["multi_az"].as_bool().unwrap_or(false),
                })
            })
            .collect();
        let tasks: BTreeMap<&String, Value> = r["aws_ecs_task_definition"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, t)| (name, json!({"cpu": t["cpu"], "memory": t["memory"]})))
            .collect();
        let interface_endpoints = r["aws_vpc_endpoint"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, e)| e["vpc_endpoint_type"] == "Interface")
            .count();
        let lambda_memory: Vec<Value> = r["aws_lambda_function"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, f)| f["memory_size"].clone())
            .collect();
        aws.insert(
            env.to_owned(),
            json!({
                "databases": databases,
                "tasks": tasks,
                "nat_gateways": count("aws_nat_gateway"),
                "interface_endpoints": interface_endpoints,
                "load_balancers": count("aws_lb"),
                "lambda_memory_mib": lambda_memory,
            }),
        );
    }
    let mut northflank = Map::new();
    for node in template_nodes(&renders[TEMPLATE]) {
        let billing = &node["spec"]["billing"];
        if let Some(plan) = billing["deploymentPlan"].as_str() {
            let name = node["spec"]["name"]
                .as_str()
                .or(node["ref"].as_str())
                .unwrap_or("?");
            let mut entry = json!({"kind": node["kind"], "plan": plan});
            for (key, out) in [("storage", "storage_mib"), ("replicas", "replicas")] {
                if !billing[key].is_null() {
                    entry[out] = billing[key].clone();
                }
            }
            if let Some(instances) = node["spec"]["deployment"]["instances"].as_u64() {
                entry["instances"] = json!(instances);
            }
            northflank.insert(name.to_owned(), entry);
        }
    }
    Ok(json!({
        "how": "services.toml (cpu units, MiB, instances); infra/<env>/main.tf.json (aws_db_instance, aws_ecs_task_definition, aws_nat_gateway, aws_vpc_endpoint of type Interface, aws_lb, aws_lambda_function); northflank/template.json (spec.billing of each node)",
        "catalog": workloads,
        "aws": aws,
        "northflank": northflank,
    }))
}

/// `benchmarks/results.json` (written by `cargo xtask bench`) when present: per scenario
/// throughput, latency and errors; per service idle and peak RSS and start-up; artifact sizes;
/// the machine. Fields it lacks are `null` (shown as –).
fn benchmarks(root: &Path) -> Result<Value> {
    let Some(text) = read_optional(&root.join(BENCHMARKS))? else {
        return Ok(json!({
            "status": "not yet measured",
            "source": BENCHMARKS,
        }));
    };
    let b: Value =
        serde_json::from_str(&text).with_context(|| format!("{BENCHMARKS} is not JSON"))?;
    let scenarios: Vec<Value> = b["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            json!({
                "name": s["name"],
                "service": s["service"],
                "request": format!("{} {}", cell(&s["method"]), cell(&s["path"])),
                "requests_per_second": s["requests_per_second"],
                "p50_ms": s["latency_ms"]["p50"],
                "p99_ms": s["latency_ms"]["p99"],
                "errors": s["errors"],
            })
        })
        .collect();
    let mut services = Map::new();
    for (name, m) in b["memory"].as_object().into_iter().flatten() {
        services.insert(
            name.clone(),
            json!({
                "idle_rss_bytes": m["idle_rss_bytes"],
                "peak_rss_bytes": m["peak_rss_bytes"],
                "startup_median_ms": b["startup"][name.as_str()]["median_ms"],
            }),
        );
    }
    let sizes: Vec<Value> = b["sizes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| json!({"name": a["name"], "kind": a["kind"], "bytes": a["bytes"]}))
        .collect();
    Ok(json!({
        "status": "measured",
        "source": BENCHMARKS,
        "command": b["command"],
        "quick": b["quick"],
        "profile": b["profile"],
        "machine": {"cores": b["machine"]["cores"], "cpu_model": b["machine"]["cpu_model"], "git_rev": b["machine"]["git_rev"]},
        "scenarios": scenarios,
        "services": services,
        "sizes": sizes,
    }))
}

// ---------------------------------------------------------------------------------------------
// Figures that need a render

fn render_figures(root: &Path, trees: &Trees) -> Result<Value> {
    let scratch = tempfile::tempdir().context("temporary directory")?;
    let catalog_text = std::fs::read_to_string(root.join(catalog::FILE_NAME))?;
    let throwaway = scratch.path().join("services.toml");
    std::fs::write(&throwaway, format!("{catalog_text}{THROWAWAY_ENTRY}"))?;
    catalog::Catalog::load(&throwaway).context("the throwaway catalog entry is not valid")?;

    let base = evaluate(root, trees, None)?;
    let with_entry = evaluate(root, trees, Some(&throwaway))?;

    let mut matches_committed = true;
    let mut files = Map::new();
    let paths: BTreeSet<&String> = base
        .as_object()
        .into_iter()
        .flat_map(Map::keys)
        .chain(with_entry.as_object().into_iter().flat_map(Map::keys))
        .collect();
    for path in paths {
        let (old, new) = (&base[path.as_str()], &with_entry[path.as_str()]);
        if let Some(committed) = read_optional(&root.join(path))?
            && serde_json::from_str::<Value>(&committed).ok().as_ref() != Some(old)
        {
            matches_committed = false;
        }
        let (added, removed) = line_changes(&canonical_json(old), &canonical_json(new));
        let mut entry = json!({"lines_added": added, "lines_removed": removed});
        if path.ends_with(".tf.json") {
            let (add, change, destroy) = resource_changes(old, new);
            entry["resources_to_add"] = json!(add);
            entry["resources_to_change"] = json!(change);
            entry["resources_to_destroy"] = json!(destroy);
        } else {
            let changes = northflank::diff::diff(
                &northflank::template::content(old),
                &northflank::template::content(new),
            );
            let mut counts: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for change in &changes {
                let (kind, path) = match change {
                    northflank::diff::Change::Added { path, .. } => ("added", path),
                    northflank::diff::Change::Removed { path, .. } => ("removed", path),
                    northflank::diff::Change::Changed { path, .. } => ("changed", path),
                };
                counts.entry(kind).or_default().push(path.clone());
            }
            entry["plan_changes"] = json!(counts);
            let kinds = |v: &Value| -> BTreeMap<String, i64> {
                let mut m = BTreeMap::new();
                for node in template_nodes(v) {
                    *m.entry(node["kind"].as_str().unwrap_or("?").to_owned())
                        .or_default() += 1;
                }
                m
            };
            let (before, after) = (kinds(old), kinds(new));
            let added_nodes: BTreeMap<&String, i64> = after
                .iter()
                .map(|(k, n)| (k, n - before.get(k).copied().unwrap_or(0)))
                .filter(|(_, n)| *n != 0)
                .collect();
            entry["nodes_added"] = json!(added_nodes);
        }
        files.insert(path.clone(), entry);
    }
    Ok(json!({
        "status": "computed",
        "command": "cargo xtask report --nixpkgs-lib <nixpkgs.lib checkout> --terranix <terranix checkout>",
        "how": "nix-instantiate --eval --strict --json nix/render-offline.nix with services.toml, then with services.toml plus THROWAWAY_ENTRY (crates/xtask/src/report.rs); lines = a line diff of the canonical JSON (what a pull request shows); resources = addresses added, changed or removed (what terraform plan counts); plan_changes = northflank::diff::diff (what northflank plan prints)",
        "authored_lines": code_lines("services.toml", THROWAWAY_ENTRY),
        "renders_match_committed": matches_committed,
        "files": files,
    }))
}

fn evaluate(root: &Path, trees: &Trees, catalog: Option<&Path>) -> Result<Value> {
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
    serde_json::from_slice(&output.stdout).context("nix-instantiate printed no JSON")
}

fn resource_changes(old: &Value, new: &Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let addresses = |v: &Value| -> BTreeMap<String, Value> {
        v["resource"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(kind, named)| {
                named
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(move |(name, body)| (format!("{kind}.{name}"), body.clone()))
            })
            .collect()
    };
    let (a, b) = (addresses(old), addresses(new));
    let add = b.keys().filter(|k| !a.contains_key(*k)).cloned().collect();
    let destroy = a.keys().filter(|k| !b.contains_key(*k)).cloned().collect();
    let change = b
        .iter()
        .filter(|(k, v)| a.get(*k).is_some_and(|old| old != *v))
        .map(|(k, _)| k.clone())
        .collect();
    (add, change, destroy)
}

// ---------------------------------------------------------------------------------------------
// Security tools

fn missing_security_tools() -> Vec<&'static str> {
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

fn security_figures(root: &Path) -> Result<Value> {
    let missing = missing_security_tools();
    if !missing.is_empty() {
        bail!("--security needs {}", missing.join(", "));
    }
    let mut checkov = Map::new();
    for env in AWS_ENVIRONMENTS {
        eprintln!("report: terraform plan and checkov of {env} (a minute or two)");
        let relative = format!("infra/{env}/main.tf.json");
        let render = read_json(root, &relative)?;
        // infra_tests panics with a message naming what failed; turn that into an error.
        let findings = std::panic::catch_unwind(|| {
            let workspace = infra_tests::Workspace::new(&relative, infra_tests::offline_provider());
            workspace.init();
            workspace.plan(&infra_tests::environment_vars(workspace.path()));
            infra_tests::checkov_plan(&workspace.plan_file())
        })
        .map_err(|_| anyhow::anyhow!("checkov of {env} failed (see the message above)"))?;
        let skipped: BTreeSet<(String, String)> = infra_tests::declared_skips(&render)
            .into_iter()
            .map(|s| (s.resource, s.check))
            .collect();
        let unexplained: Vec<String> = findings
            .iter()
            .filter(|f| !skipped.contains(&(f.resource.clone(), f.check.clone())))
            .map(|f| format!("{} {}", f.check, f.resource))
            .collect();
        checkov.insert(
            env.to_owned(),
            json!({"failed_checks": findings.len(), "without_declared_skip": unexplained}),
        );
    }
    let zizmor = find_program("zizmor").context("zizmor")?;
    let output = Command::new(&zizmor)
        .current_dir(root)
        .args(["--offline", "--format", "json", ".github/workflows"])
        .output()
        .context("cannot run zizmor")?;
    let findings: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "zizmor printed no JSON report:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let mut by_severity: BTreeMap<String, u64> = BTreeMap::new();
    for finding in findings.as_array().into_iter().flatten() {
        let severity = finding["determinations"]["severity"]
            .as_str()
            .unwrap_or("unknown");
        *by_severity.entry(severity.to_owned()).or_default() += 1;
    }
    Ok(json!({
        "status": "computed",
        "command": "cargo xtask report --security",
        "how": "checkov --framework terraform_plan on an offline terraform plan of each environment (infra_tests::checkov_plan, as crates/infra-tests/tests/aws.rs); zizmor --offline --format json .github/workflows",
        "checkov_version": version(&infra_tests::checkov_program()),
        "checkov": checkov,
        "zizmor_version": version(&zizmor),
        "zizmor_findings": findings.as_array().map_or(0, Vec::len),
        "zizmor_by_severity": by_severity,
    }))
}

// ---------------------------------------------------------------------------------------------
// The document's tables

/// Replaces the body of every `<!-- figures:NAME -->` … `<!-- /figures:NAME -->` block with the
/// table NAME built from `figures`.
pub fn fill_document(document: &str, figures: &Value) -> Result<String> {
    let mut out = String::new();
    let mut rest = document;
    while let Some(start) = rest.find("<!-- figures:") {
        let open_end = rest[start..]
            .find("-->")
            .map(|i| start + i + 3)
            .context("unterminated figures marker")?;
        let name = rest[start + "<!-- figures:".len()..open_end - 3].trim();
        let close = format!("<!-- /figures:{name} -->");
        let close_at = rest[open_end..]
            .find(&close)
            .map(|i| open_end + i)
            .with_context(|| format!("{DOCUMENT}: no {close}"))?;
        out.push_str(&rest[..open_end]);
        out.push('\n');
        out.push_str(&table(name, figures)?);
        out.push_str(&close);
        rest = &rest[close_at + close.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "–".to_owned(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn rows(header: &[&str], body: Vec<Vec<String>>) -> String {
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        " --- |".repeat(header.len())
    );
    for row in body {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

fn table(name: &str, f: &Value) -> Result<String> {
    let object = |v: &Value| v.as_object().cloned().unwrap_or_default();
    Ok(match name {
        "authored" => {
            let parts = f["authored"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            // target → (files, lines, lines without tests)
            let mut totals: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
            let mut body: Vec<Vec<String>> = parts
                .iter()
                .map(|p| {
                    let total = totals.entry(cell(&p["target"])).or_default();
                    let lines = p["lines"].as_u64().unwrap_or(0);
                    total.0 += p["files"].as_u64().unwrap_or(0);
                    total.1 += lines;
                    if !cell(&p["part"]).starts_with("tests") {
                        total.2 += lines;
                    }
                    vec![
                        cell(&p["target"]),
                        cell(&p["part"]),
                        cell(&p["files"]),
                        cell(&p["lines"]),
                    ]
                })
                .collect();
            for (target, (files, lines, without_tests)) in &totals {
                body.push(vec![
                    format!("**{target}**"),
                    format!("**total** ({without_tests} without tests)"),
                    format!("**{files}**"),
                    format!("**{lines}**"),
                ]);
            }
            let mut table = rows(&["target", "what", "files", "lines"], body);
            if let (Some(aws), Some(nf)) = (totals.get("aws"), totals.get("northflank"))
                && nf.1 > 0
                && nf.2 > 0
            {
                let _ = writeln!(
                    table,
                    "\nAWS / Northflank authored lines: {:.1}× without tests, {:.1}× with tests.",
                    aws.2 as f64 / nf.2 as f64,
                    aws.1 as f64 / nf.1 as f64
                );
            }
            table
        }
        "rendered" => {
            let body = object(&f["rendered"]["files"])
                .iter()
                .map(|(path, e)| {
                    let contents = if e["nodes"].is_null() {
                        format!(
                            "{} resources, {} variables, {} outputs",
                            cell(&e["resources"]),
                            cell(&e["variables"]),
                            cell(&e["outputs"])
                        )
                    } else {
                        format!(
                            "{} nodes, {} arguments",
                            cell(&e["nodes"]),
                            cell(&e["arguments"])
                        )
                    };
                    vec![format!("`{path}`"), cell(&e["lines"]), contents]
                })
                .collect();
            rows(&["rendered file", "lines", "contents"], body)
        }
        "resources" => {
            let by_type = object(&f["resources"]["by_type"]);
            let envs: Vec<&String> = by_type.keys().collect();
            let types: BTreeSet<&String> = by_type
                .values()
                .filter_map(Value::as_object)
                .flat_map(Map::keys)
                .collect();
            let mut body: Vec<Vec<String>> = types
                .iter()
                .map(|kind| {
                    let mut row = vec![format!("`{kind}`")];
                    row.extend(envs.iter().map(|env| {
                        by_type[env.as_str()]
                            .get(kind.as_str())
                            .map_or("–".to_owned(), cell)
                    }));
                    row
                })
                .collect();
            let mut total = vec!["**total**".to_owned()];
            total.extend(envs.iter().map(|env| {
                let sum: u64 = object(&by_type[env.as_str()])
                    .values()
                    .filter_map(Value::as_u64)
                    .sum();
                format!("**{sum}**")
            }));
            body.push(total);
            let mut header = vec!["resource type"];
            header.extend(envs.iter().map(|e| e.as_str()));
            rows(&header, body)
        }
        "concerns" => {
            let concerns = object(&f["resources"]["by_concern"]);
            let total =
                |env: &str| -> u64 { concerns.values().filter_map(|c| c[env].as_u64()).sum() };
            let totals: Vec<u64> = AWS_ENVIRONMENTS.iter().map(|e| total(e)).collect();
            let body = concerns
                .iter()
                .map(|(concern, envs)| {
                    let mut row = vec![concern.clone()];
                    for (env, all) in AWS_ENVIRONMENTS.iter().zip(&totals) {
                        let n = envs[*env].as_u64().unwrap_or(0);
                        row.push(format!(
                            "{n} ({:.0} %)",
                            n as f64 * 100.0 / (*all).max(1) as f64
                        ));
                    }
                    row
                })
                .collect();
            rows(&["concern", "production (share)", "staging (share)"], body)
        }
        "nodes" => {
            let kinds = object(&f["northflank_nodes"]["by_kind"]);
            let total: u64 = kinds.values().filter_map(Value::as_u64).sum();
            let mut body: Vec<Vec<String>> = kinds
                .iter()
                .map(|(kind, n)| vec![format!("`{kind}`"), cell(n)])
                .collect();
            body.push(vec!["**total**".into(), format!("**{total}**")]);
            rows(&["node kind", "count"], body)
        }
        "setup" => {
            let targets = object(&f["setup"]["targets"]);
            let bootstrap = &f["setup"]["bootstrap"];
            let mut body: Vec<Vec<String>> = targets
                .iter()
                .map(|(target, t)| {
                    let count = |k: &str| t[k].as_array().map_or(0, Vec::len);
                    vec![
                        target.clone(),
                        count("settings").to_string(),
                        format!(
                            "{} ({})",
                            count("printed_by_bootstrap"),
                            cell(&t["printed_by_bootstrap"])
                        ),
                        format!("{} ({})", count("by_hand"), cell(&t["by_hand"])),
                    ]
                })
                .collect();
            body.push(vec![
                "aws bootstrap (`nix run .#bootstrap-aws`, once per account)".into(),
                format!(
                    "{} resources, {} outputs",
                    cell(&bootstrap["resources"]),
                    cell(&bootstrap["outputs"])
                ),
                format!("{} `gh` commands printed", cell(&bootstrap["gh_commands"])),
                "–".into(),
            ]);
            rows(
                &[
                    "target",
                    "CI settings read",
                    "created by the bootstrap's printed commands",
                    "entered by hand",
                ],
                body,
            )
        }
        "skips" => {
            let envs = object(&f["checkov_skips"]["by_environment"]);
            let body = envs
                .iter()
                .map(|(env, e)| {
                    let checks = object(&e["checks"])
                        .iter()
                        .map(|(c, n)| format!("{c}×{}", cell(n)))
                        .collect::<Vec<_>>()
                        .join(", ");
                    vec![
                        env.clone(),
                        cell(&e["skips"]),
                        cell(&e["with_reason"]),
                        checks,
                    ]
                })
                .collect();
            rows(
                &[
                    "configuration",
                    "declared skips",
                    "with a reason",
                    "checks skipped",
                ],
                body,
            )
        }
        "security" => {
            let s = &f["security"];
            if s["status"] != "computed" {
                "_Not computed yet: run `cargo xtask report --security` (needs terraform, the provider mirror, checkov and zizmor)._\n".to_owned()
            } else {
                let mut body: Vec<Vec<String>> = object(&s["checkov"])
                    .iter()
                    .map(|(env, c)| {
                        let unexplained = c["without_declared_skip"].as_array().map_or(0, Vec::len);
                        vec![
                            format!("checkov {} ({env} plan)", cell(&s["checkov_version"])),
                            format!("{} failed checks", cell(&c["failed_checks"])),
                            format!("{unexplained} without a declared skip"),
                        ]
                    })
                    .collect();
                let severities = object(&s["zizmor_by_severity"])
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", cell(v)))
                    .collect::<Vec<_>>()
                    .join(", ");
                body.push(vec![
                    format!("{} (.github/workflows)", cell(&s["zizmor_version"])),
                    format!("{} findings", cell(&s["zizmor_findings"])),
                    if severities.is_empty() {
                        "–".into()
                    } else {
                        severities
                    },
                ]);
                rows(&["tool", "result", "detail"], body)
                    + &format!("\nRecorded by `{}`.\n", cell(&s["command"]))
            }
        }
        "sizes" => {
            let s = &f["sizes"];
            let mut body: Vec<Vec<String>> = object(&s["catalog"])
                .iter()
                .map(|(name, w)| {
                    let instances = if w["desired"].is_null() {
                        "on demand".to_owned()
                    } else {
                        format!(
                            "{} ({}–{})",
                            cell(&w["desired"]),
                            cell(&w["min"]),
                            cell(&w["max"])
                        )
                    };
                    let nf = &s["northflank"][name.as_str()];
                    vec![
                        format!("{name} ({})", cell(&w["kind"])),
                        format!("{} CPU units / {} MiB", cell(&w["cpu"]), cell(&w["memory"])),
                        instances,
                        cell(&nf["plan"]),
                    ]
                })
                .collect();
            for (name, n) in object(&s["northflank"]) {
                if s["catalog"].get(&name).is_none() {
                    let mut detail = cell(&n["plan"]);
                    if !n["storage_mib"].is_null() {
                        let _ = write!(
                            detail,
                            ", {} MiB storage, {} replica(s)",
                            cell(&n["storage_mib"]),
                            cell(&n["replicas"])
                        );
                    }
                    body.push(vec![
                        format!("{name} ({})", cell(&n["kind"])),
                        "–".into(),
                        "–".into(),
                        detail,
                    ]);
                }
            }
            let mut table = rows(
                &[
                    "workload",
                    "catalog size (Fargate task)",
                    "instances desired (min–max)",
                    "Northflank plan",
                ],
                body,
            );
            table.push('\n');
            let aws = object(&s["aws"]);
            let body = aws
                .iter()
                .map(|(env, a)| {
                    let dbs = a["databases"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|d| {
                            format!(
                                "{}, {} GiB{}",
                                cell(&d["instance_class"]),
                                cell(&d["allocated_storage_gib"]),
                                if d["multi_az"] == true {
                                    ", Multi-AZ"
                                } else {
                                    ""
                                }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    vec![
                        env.clone(),
                        dbs,
                        cell(&a["nat_gateways"]),
                        cell(&a["interface_endpoints"]),
                        cell(&a["load_balancers"]),
                        cell(&a["lambda_memory_mib"]),
                    ]
                })
                .collect();
            table
                + &rows(
                    &[
                        "AWS environment",
                        "RDS",
                        "NAT gateways",
                        "interface endpoints",
                        "load balancers",
                        "Lambda MiB",
                    ],
                    body,
                )
        }
        "benchmarks" => {
            let b = &f["benchmarks"];
            if b["status"] != "measured" {
                format!(
                    "_Not yet measured: `{}` does not exist (it is written by `cargo xtask bench`)._\n",
                    cell(&b["source"])
                )
            } else {
                let mib = |v: &Value| {
                    v.as_f64()
                        .map_or("–".to_owned(), |x| format!("{:.1}", x / 1048576.0))
                };
                let mut out = format!(
                    "From `{}`: `{}` ({} profile{}), {} cores ({}), revision {}.\n\n",
                    cell(&b["source"]),
                    cell(&b["command"]),
                    cell(&b["profile"]),
                    if b["quick"] == true {
                        ", **quick run**"
                    } else {
                        ""
                    },
                    cell(&b["machine"]["cores"]),
                    cell(&b["machine"]["cpu_model"]),
                    cell(&b["machine"]["git_rev"]),
                );
                let body = b["scenarios"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        vec![
                            cell(&s["name"]),
                            format!("`{}`", cell(&s["request"])),
                            cell(&s["requests_per_second"]),
                            cell(&s["p50_ms"]),
                            cell(&s["p99_ms"]),
                            cell(&s["errors"]),
                        ]
                    })
                    .collect();
                out += &rows(
                    &["scenario", "request", "req/s", "p50 ms", "p99 ms", "errors"],
                    body,
                );
                out.push('\n');
                let body = object(&b["services"])
                    .iter()
                    .map(|(name, m)| {
                        let memory = &f["sizes"]["catalog"][name.as_str()]["memory"];
                        let share = match (m["peak_rss_bytes"].as_f64(), memory.as_f64()) {
                            (Some(peak), Some(limit)) if limit > 0.0 => {
                                format!("{:.0} %", peak / 1048576.0 / limit * 100.0)
                            }
                            _ => "–".to_owned(),
                        };
                        vec![
                            name.clone(),
                            mib(&m["idle_rss_bytes"]),
                            mib(&m["peak_rss_bytes"]),
                            format!("{} MiB", cell(memory)),
                            share,
                            cell(&m["startup_median_ms"]),
                        ]
                    })
                    .collect();
                out += &rows(
                    &[
                        "service",
                        "idle RSS MiB",
                        "peak RSS MiB",
                        "catalog memory",
                        "peak / catalog",
                        "start-up median ms",
                    ],
                    body,
                );
                out.push('\n');
                let body = b["sizes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| vec![cell(&a["name"]), cell(&a["kind"]), mib(&a["bytes"])])
                    .collect();
                out + &rows(&["artifact", "kind", "MiB"], body)
            }
        }
        "diff" => {
            let r = &f["render"];
            if r["status"] != "computed" {
                "_Not computed yet: run `cargo xtask report --nixpkgs-lib DIR --terranix DIR`._\n"
                    .to_owned()
            } else {
                let body = object(&r["files"])
                    .iter()
                    .map(|(path, e)| {
                        let plan = if e["plan_changes"].is_null() {
                            format!(
                                "{} to add, {} to change, {} to destroy",
                                e["resources_to_add"].as_array().map_or(0, Vec::len),
                                e["resources_to_change"].as_array().map_or(0, Vec::len),
                                e["resources_to_destroy"].as_array().map_or(0, Vec::len),
                            )
                        } else {
                            let changes = object(&e["plan_changes"]);
                            let nodes = object(&e["nodes_added"])
                                .iter()
                                .map(|(k, n)| format!("{k} {n:+}", n = n.as_i64().unwrap_or(0)))
                                .collect::<Vec<_>>()
                                .join(", ");
                            format!(
                                "{} added, {} changed, {} removed (nodes: {})",
                                changes
                                    .get("added")
                                    .and_then(Value::as_array)
                                    .map_or(0, Vec::len),
                                changes
                                    .get("changed")
                                    .and_then(Value::as_array)
                                    .map_or(0, Vec::len),
                                changes
                                    .get("removed")
                                    .and_then(Value::as_array)
                                    .map_or(0, Vec::len),
                                if nodes.is_empty() {
                                    "none".to_owned()
                                } else {
                                    nodes
                                }
                            )
                        };
                        vec![
                            format!("`{path}`"),
                            format!(
                                "+{} −{}",
                                cell(&e["lines_added"]),
                                cell(&e["lines_removed"])
                            ),
                            plan,
                        ]
                    })
                    .collect();
                format!(
                    "Authored change: {} lines in `services.toml` (plus the service's crate). Renders of the committed catalog match the committed files: {}.\n\n",
                    cell(&r["authored_lines"]),
                    if r["renders_match_committed"] == true {
                        "yes"
                    } else {
                        "**no** (run scripts/render)"
                    }
                ) + &rows(
                    &[
                        "rendered file",
                        "lines in the pull request",
                        "what plan shows",
                    ],
                    body,
                ) + &format!("\nRecorded by `{}`.\n", cell(&r["command"]))
            }
        }
        other => bail!("{DOCUMENT}: unknown figures table `{other}`"),
    })
}

// ---------------------------------------------------------------------------------------------
// Line diffs

enum Edit<'a> {
    Keep,
    Remove(&'a str),
    Add(&'a str),
}

/// A shortest edit script between the lines of `a` and `b` (longest common subsequence).
fn line_edits<'a>(a: &'a str, b: &'a str) -> Vec<(usize, Edit<'a>)> {
    let (x, y): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let (n, m) = (x.len(), y.len());
    // lcs[i][j]: LCS length of x[i..] and y[j..].
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * (m + 1) + j] = if x[i] == y[j] {
                lcs[(i + 1) * (m + 1) + j + 1] + 1
            } else {
                lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut edits = Vec::new();
    while i < n || j < m {
        if i < n && j < m && x[i] == y[j] {
            edits.push((j + 1, Edit::Keep));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1]) {
            edits.push((j + 1, Edit::Remove(x[i])));
            i += 1;
        } else {
            edits.push((j + 1, Edit::Add(y[j])));
            j += 1;
        }
    }
    edits
}

/// Lines added and removed between two texts.
pub fn line_changes(a: &str, b: &str) -> (usize, usize) {
    line_edits(a, b)
        .iter()
        .fold((0, 0), |(add, del), (_, e)| match e {
            Edit::Add(_) => (add + 1, del),
            Edit::Remove(_) => (add, del + 1),
            Edit::Keep => (add, del),
        })
}

/// The changed lines of `old` → `new`, `-`/`+` prefixed, under `@@ line N` headers.
pub fn diff_text(old: &str, new: &str) -> String {
    let mut out = String::new();
    let mut last_changed = false;
    for (line, edit) in line_edits(old, new) {
        match edit {
            Edit::Keep => last_changed = false,
            Edit::Add(text) | Edit::Remove(text) => {
                if !last_changed {
                    let _ = writeln!(out, "@@ line {line}");
                }
                let sign = if matches!(edit, Edit::Add(_)) {
                    '+'
                } else {
                    '-'
                };
                let _ = writeln!(out, "{sign}{text}");
                last_changed = true;
            }
        }
    }
    out
}
