//! schemathesis' positive-data checks against the real api on loopback: every request that
//! is valid by `/api/openapi.json` must be accepted, and every response must match the
//! document (status, content type, schema) and never be a 5xx.
//!
//! Bounded: a fixed seed, a fixed number of examples per operation, one worker.
//! Needs `st` (`pip install schemathesis`), or its path in `SCHEMATHESIS`.

mod common;

use common::{TestApp, migrated_db};

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,positive_data_acceptance";

#[tokio::test]
async fn positive_data_is_accepted_and_responses_match_the_document() {
    let program = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "st".to_owned());
    let db = migrated_db().await;
    let app = TestApp::spawn(&db).await;
    let report = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(&program)
        .args(["run", &app.url("/api/openapi.json"), "--url", &app.url("")])
        .args(["--mode", "positive", "--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--max-examples",
            "40",
            "--seed",
            "20250101",
            "--workers",
            "1",
        ])
        .args(["--generation-database", "none", "--request-timeout", "10"])
        .args(["--no-color", "--report-dir"])
        .arg(report.path())
        // Its cache (`.schemathesis/`) goes with the report, not into the checkout.
        .current_dir(report.path())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run `{program}` ({e}); install it with `pip install schemathesis`")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // It really tested every operation of the document (and not, say, none).
    let tested = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert_eq!(tested, Some(8), "{stdout}");
}
