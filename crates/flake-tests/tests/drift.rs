//! The checks can fail: in a copy of the repository whose committed staging
//! render differs from a fresh render, the rendered-up-to-date check (built
//! exactly as `nix flake check` builds it) fails and names the file.

use flake_tests::harness;
use std::process::Command;

#[test]
fn a_stale_render_fails_the_drift_check() {
    let copy = tempfile::Builder::new()
        .prefix("flake-tests-drift-")
        .tempdir()
        .expect("tempdir");
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"git -C "$1" ls-files -z --cached --others --exclude-standard | (cd "$1" && tar --null -T - -cf - 2>/dev/null) | tar -xf - -C "$2""#)
        .args(["sh", &infra_tests::repo_root().display().to_string(), &copy.path().display().to_string()])
        .status()
        .expect("git and tar");
    assert!(status.success(), "copying the repository failed");
    let render = copy.path().join("infra/staging/main.tf.json");
    let text = std::fs::read_to_string(&render).expect("the staging render");
    std::fs::write(
        &render,
        text.replacen(
            "\"Environment\": \"staging\"",
            "\"Environment\": \"stale\"",
            1,
        ),
    )
    .expect("write");

    let drv = harness::eval_json_at(
        copy.path(),
        "summary.checks.rendered-up-to-date.drvPath",
        &[],
    );
    let log = harness::realise(&[drv.as_str().expect("a path").to_owned()])
        .expect_err("a stale render must fail the check");
    assert!(
        log.contains("infra/staging/main.tf.json differs from a fresh render"),
        "the failure does not name the stale file:\n{log}"
    );
}
