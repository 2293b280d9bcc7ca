//! `cargo xtask report --check`: the committed figures (`docs/figures.json` and the tables of
//! `docs/comparison.md`) equal a fresh run, and the check fails when they do not.
//!
//! What is compared here:
//! - always: every figure computed from the files alone — authored lines, rendered lines,
//!   resources per type and environment, Northflank nodes, CI settings, declared checkov skips,
//!   instance sizes, and the benchmark figures read from `benchmarks/results.json` (or its
//!   absence, "not yet measured");
//! - only when `REPORT_NIXPKGS_LIB` and `REPORT_TERRANIX` name the source trees (as
//!   `scripts/render` takes them): the render figures (the diff of a throwaway catalog entry),
//!   which need an offline Nix evaluation. Without them the committed values are kept as they
//!   are, so they are **not** compared;
//! - only when `REPORT_SECURITY=1`: the checkov (offline terraform plans) and zizmor figures,
//!   which need terraform, its provider mirror, checkov and zizmor. Without it they are **not**
//!   compared (crates/infra-tests runs checkov itself and fails on any unexplained finding).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xtask::report;

fn repo_root() -> PathBuf {
    xtask::workspace_root()
}

fn xtask(args: &[&str], root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("report")
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .expect("run xtask report")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn committed_figures_match_a_fresh_run() {
    let mut args = vec!["--check".to_owned()];
    match (
        std::env::var("REPORT_NIXPKGS_LIB"),
        std::env::var("REPORT_TERRANIX"),
    ) {
        (Ok(lib), Ok(terranix)) => {
            eprintln!("comparing the render figures too (trees {lib}, {terranix})");
            args.extend(["--nixpkgs-lib".into(), lib, "--terranix".into(), terranix]);
        }
        _ => eprintln!(
            "render figures NOT compared: set REPORT_NIXPKGS_LIB and REPORT_TERRANIX to the \
             nixpkgs-lib and terranix trees to compare them"
        ),
    }
    if std::env::var("REPORT_SECURITY").as_deref() == Ok("1") {
        eprintln!("comparing the checkov and zizmor figures too");
        args.push("--security".into());
    } else {
        eprintln!("checkov/zizmor figures NOT compared: set REPORT_SECURITY=1 to compare them");
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = xtask(&args, &repo_root());
    assert!(
        output.status.success(),
        "the committed figures differ from a fresh run; run `cargo xtask report` and commit:\n{}",
        text(&output)
    );
}

/// A copy of what the report reads, to change without touching the repository.
fn scratch_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    for part in [
        "services.toml",
        "flake.nix",
        "nix",
        "crates/northflank",
        "crates/infra-tests",
        "tools/northflank-types",
        ".github/workflows",
        "scripts",
        "infra",
        "northflank",
        "docs",
        "benchmarks",
    ] {
        copy(&root.join(part), &dir.path().join(part));
    }
    dir
}

fn copy(from: &Path, to: &Path) {
    let Ok(meta) = std::fs::metadata(from) else {
        return;
    };
    if meta.is_dir() {
        let name = from.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if matches!(name, "node_modules" | "target" | ".terraform") {
            return;
        }
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

fn edit(path: &Path, change: impl FnOnce(String) -> String) {
    let before = std::fs::read_to_string(path).unwrap();
    let after = change(before.clone());
    assert_ne!(
        before,
        after,
        "the edit of {} changed nothing",
        path.display()
    );
    std::fs::write(path, after).unwrap();
}

/// Proves the check can fail: each change to an input or to the committed figures makes
/// `--check` exit non-zero with a diff naming the figure; a write makes it pass again.
#[test]
fn check_fails_when_figures_are_stale() {
    let copy = scratch_copy();
    let root = copy.path();
    let check = || xtask(&["--check"], root);

    let output = check();
    assert!(
        output.status.success(),
        "the copy should start up to date:\n{}",
        text(&output)
    );

    // A resource more in a render: resource counts and rendered lines are stale.
    edit(&root.join("infra/staging/main.tf.json"), |t| {
        t.replacen(
            "\"resource\": {",
            "\"resource\": {\n    \"aws_s3_bucket_report_test\": {\"extra\": {}},",
            1,
        )
    });
    let output = check();
    let out = text(&output);
    assert!(
        !output.status.success(),
        "check passed on a stale render:\n{out}"
    );
    assert!(out.contains("docs/figures.json differs"), "{out}");
    assert!(out.contains("\"aws_s3_bucket_report_test\": 1"), "{out}");
    assert!(
        out.contains("`aws_s3_bucket_report_test`"),
        "no table diff:\n{out}"
    );

    // Writing brings the figures back in line.
    let output = xtask(&["--no-security"], root);
    assert!(output.status.success(), "{}", text(&output));
    let output = check();
    assert!(output.status.success(), "{}", text(&output));

    // A hand edit inside a generated table is drift too.
    edit(&root.join(report::DOCUMENT), |t| {
        t.replacen("| `aws_vpc` | – | 1 | 1 |", "| `aws_vpc` | – | 1 | 2 |", 1)
    });
    let output = check();
    let out = text(&output);
    assert!(
        !output.status.success(),
        "check passed on an edited table:\n{out}"
    );
    assert!(out.contains("docs/comparison.md differs"), "{out}");
    xtask(&["--no-security"], root);

    // The benchmark figures follow benchmarks/results.json: adding (or removing) it is drift.
    let results = root.join(report::BENCHMARKS);
    if results.exists() {
        std::fs::remove_file(&results).unwrap();
    } else {
        std::fs::create_dir_all(results.parent().unwrap()).unwrap();
        std::fs::write(
            &results,
            r#"{"command": "cargo xtask bench", "machine": {"cores": 2},
                "scenarios": [{"name": "health", "requests_per_second": 1000.5}],
                "memory": {"api": {"idle_rss_bytes": 1048576, "peak_rss_bytes": 2097152}}}"#,
        )
        .unwrap();
    }
    let output = check();
    let out = text(&output);
    assert!(
        !output.status.success(),
        "check ignored benchmarks/results.json:\n{out}"
    );
    assert!(
        out.contains("\"benchmarks\"") || out.contains("status"),
        "{out}"
    );

    // So is a throwaway catalog entry (sizes), even without a render.
    edit(&root.join("services.toml"), |t| t + report::THROWAWAY_ENTRY);
    let output = check();
    assert!(!output.status.success());
    assert!(text(&output).contains("\"reports\""), "{}", text(&output));
}

#[test]
fn counts_code_lines_without_comments_or_blanks() {
    let nix = "# comment\n{\n  /* block\n  still */ a = 1;\n\n  b = 2; # trailing\n}\n";
    assert_eq!(report::code_lines("x.nix", nix), 4);
    let rust = "//! doc\nfn main() {\n    // note\n    /* x */\n}\n";
    assert_eq!(report::code_lines("x.rs", rust), 2);
    assert_eq!(report::code_lines("x.toml", "# c\n\na = 1\n"), 1);
}

#[test]
fn reads_workflow_settings_and_bootstrap_commands() {
    let workflow = "on: push\njobs:\n  plan:\n    environment: staging\n    strategy:\n      matrix:\n        environment: [a, b]\n    steps:\n      - run: echo ${{ vars.ROLE }} ${{ secrets.TOKEN }} ${{ secrets.GITHUB_TOKEN }}\n  northflank:\n    environment: nf\n";
    let settings = report::workflow_settings(workflow);
    assert_eq!(
        settings["plan"].iter().collect::<Vec<_>>(),
        ["environment:staging", "secret:TOKEN", "variable:ROLE"]
    );
    assert_eq!(
        settings["northflank"].iter().collect::<Vec<_>>(),
        ["environment:nf"]
    );
    let script = "for env in staging production; do\n  gh api --method PUT \"repos/o/r/environments/$env\" --input -\ndone\ngh api --method PUT \"repos/o/r/environments/plan\"\ngh variable set REGION --repo o/r --body x\n";
    assert_eq!(
        report::bootstrap_settings(script)
            .iter()
            .collect::<Vec<_>>(),
        [
            "environment:plan",
            "environment:production",
            "environment:staging",
            "variable:REGION"
        ]
    );
}

#[test]
fn counts_changed_lines() {
    assert_eq!(report::line_changes("a\nb\nc\n", "a\nx\nc\nd\n"), (2, 1));
    assert_eq!(report::line_changes("", "a\n"), (1, 0));
}

/// Writes the figures of a copy and reads them back, typed.
fn write_and_read(root: &Path) -> report::Figures {
    let output = xtask(&["--no-security"], root);
    assert!(output.status.success(), "{}", text(&output));
    let figures = std::fs::read_to_string(root.join(report::FIGURES)).unwrap();
    serde_json::from_str(&figures).expect("docs/figures.json reads back as Figures")
}

/// Level name → (AWS total over every environment, Northflank total or None when unpriced).
fn totals(figures: &report::Figures) -> Vec<(String, f64, Option<f64>)> {
    let report::cost::CostFigures::Computed(cost) = &figures.cost else {
        panic!("cost figures not computed: {:?}", figures.cost);
    };
    cost.levels
        .iter()
        .map(|level| {
            let aws = level
                .bills
                .iter()
                .filter(|(target, _)| target.starts_with("aws "))
                .map(|(_, bill)| bill.total())
                .sum();
            let nf = &level.bills[report::cost::NORTHFLANK];
            (level.name.clone(), aws, nf.complete().then(|| nf.total()))
        })
        .collect()
}

/// The cost figures come from the renders, the catalog, the bench results and
/// docs/prices.toml alone: a price or a catalog size changed in a copy moves the totals, the
/// Northflank prices still missing, once entered, complete its total and the crossover, and its
/// per-vCPU rate moves that total.
#[test]
fn cost_follows_prices_and_catalog_sizes() {
    let copy = scratch_copy();
    let root = copy.path();
    let before = totals(&write_and_read(root));
    assert_eq!(before.len(), 3, "idle, 10 and 500 req/s: {before:?}");
    assert!(
        before.windows(2).all(|w| w[0].1 < w[1].1),
        "more traffic costs more on AWS: {before:?}"
    );

    // Twice the Fargate vCPU price: every level costs more.
    edit(&root.join("docs/prices.toml"), |t| {
        t.replacen("usd = 0.04048", "usd = 0.08096", 1)
    });
    let doubled = totals(&write_and_read(root));
    for ((level, old, _), (_, new, _)) in before.iter().zip(&doubled) {
        assert!(
            new > old,
            "{level}: {old} → {new} after doubling the vCPU price"
        );
    }

    // A four times larger api task (catalog size): more compute at every level.
    edit(&root.join("services.toml"), |t| {
        t.replacen("cpu = 256\nmemory = 512", "cpu = 1024\nmemory = 2048", 1)
    });
    let larger = totals(&write_and_read(root));
    for ((level, old, _), (_, new, _)) in doubled.iter().zip(&larger) {
        assert!(
            new > old,
            "{level}: {old} → {new} after growing the api task"
        );
    }

    // Northflank prices entered: a Northflank total at every level, and a crossover sentence.
    edit(&root.join("docs/prices.toml"), |t| {
        let mut out = String::new();
        for line in t.lines() {
            if line.starts_with("missing = ") {
                out.push_str("usd = 10.0\n");
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    });
    let figures = write_and_read(root);
    let entered = totals(&figures);
    for (level, _, nf) in &entered {
        assert!(nf.is_some_and(|t| t > 0.0), "{level}: Northflank unpriced");
    }

    // Twice Northflank's vCPU rate: its plans cost more, so its total moves at every level.
    edit(&root.join("docs/prices.toml"), |t| {
        t.replacen("usd = 0.01667", "usd = 0.03334", 1)
    });
    for ((level, _, old), (_, _, new)) in entered.iter().zip(totals(&write_and_read(root))) {
        assert!(
            new > *old,
            "{level}: Northflank {old:?} → {new:?} after doubling its vCPU rate"
        );
    }
    let report::cost::CostFigures::Computed(cost) = &figures.cost else {
        unreachable!()
    };
    assert!(
        cost.crossover.contains("req/s") && !cost.crossover.contains("not computed"),
        "{}",
        cost.crossover
    );
}

/// A price without its source is refused, naming it; nothing is written.
#[test]
fn refuses_a_price_without_a_source() {
    let copy = scratch_copy();
    let root = copy.path();
    let figures_before = std::fs::read_to_string(root.join(report::FIGURES)).unwrap();
    edit(&root.join("docs/prices.toml"), |t| {
        t.replacen(
            "source = \"https://aws.amazon.com/fargate/pricing/\"",
            "source = \"\"",
            1,
        )
    });
    let output = xtask(&["--no-security"], root);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("aws.fargate_vcpu_hour needs a `source`"),
        "{}",
        text(&output)
    );
    let figures_after = std::fs::read_to_string(root.join(report::FIGURES)).unwrap();
    assert_eq!(figures_before, figures_after, "a refused run wrote figures");
}
