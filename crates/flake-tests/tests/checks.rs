//! `nix flake check`'s checks, built here by the stand-in exactly as their
//! derivations' scripts run: every check whose tools this machine has is
//! built and must pass; the rest are listed with the reason (crane's cargo
//! builds are run by .ci/run's cargo commands; tools no registry ships).

use flake_tests::harness::{self, Check};

/// Checks that must run here (their tools are installed by .ci/run): a
/// machine that lacks one fails this test instead of quietly skipping it.
const MUST_RUN: &[&str] = &[
    "rendered-up-to-date",
    "terraform-validate-bootstrap",
    "terraform-validate-production",
    "terraform-validate-staging",
    "nix-tests-tests-throwaway-service",
    "nix-tests-northflank-tests",
    "rendered",
    "images",
    "migration-lambda",
    "workflow-lint",
];

fn why_not_run(check: &Check) -> Option<String> {
    check.not_run.clone().or_else(|| {
        (!check.missing_tools.is_empty())
            .then(|| format!("not installed here: {}", check.missing_tools.join(", ")))
    })
}

#[test]
fn every_check_whose_tools_are_here_passes() {
    let summary = &harness::get().summary;
    let mut failures = Vec::new();
    let mut ran = Vec::new();
    for (name, check) in &summary.checks {
        if let Some(reason) = why_not_run(check) {
            println!("NOT RUN {name}: {reason}");
            assert!(
                !MUST_RUN.contains(&name.as_str()),
                "check {name} must run here but: {reason}"
            );
            continue;
        }
        match harness::realise(std::slice::from_ref(&check.drv_path)) {
            Ok(_) => {
                println!("passed  {name}");
                ran.push(name.as_str());
            }
            Err(log) => failures.push(format!("{name}:\n{log}")),
        }
    }
    assert!(
        failures.is_empty(),
        "checks failed:\n{}",
        failures.join("\n")
    );
    for name in MUST_RUN {
        assert!(ran.contains(name), "the flake has no check {name} any more");
    }
}

#[test]
fn the_formatter_builds_and_formats_the_tree_when_given_no_path() {
    let formatter = &harness::get().summary.formatter;
    let program = harness::build_program(formatter);
    let script = std::fs::read_to_string(&program).expect("the formatter script");
    // `nix fmt` with no argument runs the formatter with none (Nix >= 2.25);
    // alejandra with none would read standard input.
    assert!(
        script.contains("set -- .") && script.contains("exec alejandra \"$@\""),
        "the formatter does not default to the tree:\n{script}"
    );
}
