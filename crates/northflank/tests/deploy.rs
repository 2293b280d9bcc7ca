//! `northflank plan|deploy` against a loopback stand-in of Northflank's API
//! (`stand_in`), whose every answer is a file type-checked against the result types
//! of @northflank/js-client.

mod stand_in;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use stand_in::{Fault, Outcome, StandIn, TOKEN, fixture, run_id};

fn template_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../northflank/template.json")
}

fn template() -> Value {
    serde_json::from_str(&std::fs::read_to_string(template_file()).unwrap()).unwrap()
}

/// One argument per declared template argument.
fn image_args() -> Vec<String> {
    template()["arguments"]
        .as_object()
        .unwrap()
        .keys()
        .map(|name| match name.as_str() {
            "REGISTRY_CREDENTIALS" => format!("{name}=ghcr-credentials"),
            _ => format!(
                "{name}=ghcr.io/owner/repo/{}:abc123",
                name.trim_end_matches("_IMAGE").to_lowercase()
            ),
        })
        .collect()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the CLI with `token` (None: unset) against `addr`, and checks that the
/// token shows up in no output, whatever happened.
async fn cli(addr: Option<SocketAddr>, token: Option<&str>, args: &[&str]) -> Run {
    cli_with(addr, token, args, &[]).await
}

/// As `cli`, with more environment. Retries wait 10ms, doubling, at most 5s in
/// all, so that tests stay short.
async fn cli_with(
    addr: Option<SocketAddr>,
    token: Option<&str>,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_northflank"));
    for (key, _) in std::env::vars() {
        if key.starts_with("NORTHFLANK_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env("NORTHFLANK_RETRY_DELAY", "10ms")
        .env("NORTHFLANK_RETRY_BUDGET", "5s")
        .envs(env.iter().copied());
    command.env(
        "NORTHFLANK_API_URL",
        addr.map_or_else(
            || "http://127.0.0.1:9".to_owned(),
            |a| format!("http://{a}"),
        ),
    );
    if let Some(token) = token {
        command.env("NORTHFLANK_TOKEN", token);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let run = Run {
        code: status.code(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    for output in [&run.stdout, &run.stderr] {
        assert!(!output.contains(TOKEN), "the token leaked:\n{output}");
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            assert!(!output.contains(token), "the token leaked:\n{output}");
        }
    }
    run
}

fn calls(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect()
}

fn deploy_args<'a>(extra: &'a [&'a str], args: &'a [String]) -> Vec<&'a str> {
    let mut all = vec!["deploy", "--poll-interval", "50ms", "--timeout", "10s"];
    all.extend_from_slice(extra);
    for arg in args {
        all.extend(["--arg", arg.as_str()]);
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_creates_the_template_and_runs_it_with_the_image_arguments() {
    let stand = StandIn::start(Outcome::Success, HashMap::new()).await;
    let args = image_args();
    let run = cli(Some(stand.addr), Some(TOKEN), &deploy_args(&[], &args)).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("created"), "{}", run.stdout);
    assert!(run.stdout.contains("succeeded"), "{}", run.stdout);

    let run_path = format!("/v1/templates/iac-experiment/runs/{}", run_id());
    assert_eq!(
        stand.calls(),
        calls(&[
            ("GET", "/v1/templates/iac-experiment"),
            ("POST", "/v1/templates"),
            ("POST", "/v1/templates/iac-experiment/runs"),
            ("GET", &run_path),
            ("GET", &run_path),
        ])
    );
    let requests = stand.requests();
    assert_eq!(requests[1].body, template(), "the file is sent as is");
    let sent = &requests[2].body["arguments"];
    for arg in &args {
        let (name, value) = arg.split_once('=').unwrap();
        assert_eq!(sent[name], value);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_updates_a_changed_template_and_leaves_an_equal_one() {
    let mut old = template();
    old["spec"]["spec"]["steps"][0]["spec"]["region"] = json!("europe-west");
    let stand = StandIn::start(
        Outcome::Success,
        HashMap::from([("iac-experiment".to_owned(), old)]),
    )
    .await;
    let args = image_args();

    let run = cli(Some(stand.addr), Some(TOKEN), &deploy_args(&[], &args)).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("updated (1 difference(s))"),
        "{}",
        run.stdout
    );
    assert_eq!(
        stand.calls()[1],
        ("POST".to_owned(), "/v1/templates/iac-experiment".to_owned())
    );

    let run = cli(Some(stand.addr), Some(TOKEN), &deploy_args(&[], &args)).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("unchanged"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_exits_non_zero_naming_the_failing_node() {
    let stand = StandIn::start(Outcome::Failure, HashMap::new()).await;
    let run = cli(
        Some(stand.addr),
        Some(TOKEN),
        &deploy_args(&[], &image_args()),
    )
    .await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("status `failure`"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("failing node: JobRun `migration`: Job run migrate-6f2a failed"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_does_not_finish_times_out() {
    let stand = StandIn::start(Outcome::Hang, HashMap::new()).await;
    let mut args = vec!["deploy", "--poll-interval", "50ms", "--timeout", "300ms"];
    let image_args = image_args();
    for arg in &image_args {
        args.extend(["--arg", arg.as_str()]);
    }
    let run = cli(Some(stand.addr), Some(TOKEN), &args).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    assert!(
        run.stderr.contains("last status `running`"),
        "{}",
        run.stderr
    );
    // Aborted, so that the next deploy does not queue behind it.
    let abort = format!("/v1/templates/iac-experiment/runs/{}/abort", run_id());
    assert_eq!(
        stand.calls().last(),
        Some(&("POST".to_owned(), abort)),
        "{:?}",
        stand.calls()
    );
    assert!(run.stderr.contains("the run was aborted"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_run_that_cannot_be_aborted_says_so() {
    let stand = StandIn::start(Outcome::Hang, HashMap::new()).await;
    let abort = format!("/v1/templates/iac-experiment/runs/{}/abort", run_id());
    stand.fail(Method::POST, &abort, [forbidden()]);
    let image_args = image_args();
    let mut args = vec!["deploy", "--poll-interval", "50ms", "--timeout", "300ms"];
    for arg in &image_args {
        args.extend(["--arg", arg.as_str()]);
    }
    let run = cli(Some(stand.addr), Some(TOKEN), &args).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("aborting the run failed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&message("error.403")), "{}", run.stderr);
}

fn forbidden() -> Fault {
    Fault::Status(StatusCode::FORBIDDEN, vec![])
}

/// The `error.message` of a canned answer.
fn message(answer: &str) -> String {
    fixture(answer)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_northflank_stops_reporting_is_aborted() {
    let stand = StandIn::start(Outcome::Hang, HashMap::new()).await;
    let run_path = format!("/v1/templates/iac-experiment/runs/{}", run_id());
    let broken = || Fault::Status(StatusCode::INTERNAL_SERVER_ERROR, vec![]);
    stand.fail(Method::GET, &run_path, (0..10).map(|_| broken()));
    let env = [("NORTHFLANK_RETRIES", "1")];
    let run = cli_with(
        Some(stand.addr),
        Some(TOKEN),
        &deploy_args(&[], &image_args()),
        &env,
    )
    .await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("lost track of template run"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("HTTP 500"), "{}", run.stderr);
    assert!(run.stderr.contains("the run was aborted"), "{}", run.stderr);
    let abort = format!("{run_path}/abort");
    assert_eq!(stand.calls().last(), Some(&("POST".to_owned(), abort)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_request_waits_as_northflank_asks_then_goes_on() {
    let stand = StandIn::start(Outcome::Success, HashMap::new()).await;
    let limited = Fault::Status(
        StatusCode::TOO_MANY_REQUESTS,
        vec![("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")],
    );
    stand.fail(Method::GET, "/v1/templates/iac-experiment", [limited]);
    let run = cli(
        Some(stand.addr),
        Some(TOKEN),
        &deploy_args(&[], &image_args()),
    )
    .await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("HTTP 429"), "{}", run.stderr);
    assert!(
        run.stderr.contains("retry 1 of 5 in 1000ms"),
        "{}",
        run.stderr
    );
    let requests = stand.requests();
    assert_eq!(requests[0].path, requests[1].path, "the same request again");
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "x-ratelimit-reset ignored: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_on_starting_the_run_is_retried_and_the_deploy_goes_on() {
    let stand = StandIn::start(Outcome::Success, HashMap::new()).await;
    let start = "/v1/templates/iac-experiment/runs";
    let unavailable = Fault::Status(StatusCode::SERVICE_UNAVAILABLE, vec![]);
    stand.fail(Method::POST, start, [unavailable]);
    let run = cli(
        Some(stand.addr),
        Some(TOKEN),
        &deploy_args(&[], &image_args()),
    )
    .await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("succeeded"), "{}", run.stdout);
    let starts = stand.calls().iter().filter(|(_, p)| p == start).count();
    assert_eq!(starts, 2, "a 503 means not started: one retry");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_an_answer_is_retried() {
    let stand = StandIn::start(Outcome::Success, HashMap::new()).await;
    stand.fail(
        Method::GET,
        "/v1/templates/iac-experiment",
        [Fault::Stall(Duration::from_secs(2))],
    );
    let env = [("NORTHFLANK_REQUEST_TIMEOUT", "200ms")];
    let run = cli_with(Some(stand.addr), Some(TOKEN), &["plan"], &env).await;
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("does not exist"), "{}", run.stdout);
    assert!(
        run.stderr.contains("cannot reach Northflank"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("retry 1 of 5"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lasting_500_gives_up_with_a_clear_message() {
    let stand = StandIn::start(Outcome::Success, HashMap::new()).await;
    let broken = || Fault::Status(StatusCode::INTERNAL_SERVER_ERROR, vec![]);
    stand.fail(
        Method::GET,
        "/v1/templates/iac-experiment",
        (0..10).map(|_| broken()),
    );
    let env = [("NORTHFLANK_RETRIES", "2")];
    let run = cli_with(Some(stand.addr), Some(TOKEN), &["plan"], &env).await;
    assert_eq!(run.code, Some(1));
    let expected = format!(
        "northflank: Northflank answered GET /v1/templates/iac-experiment with HTTP 500: {} (gave up after 3 attempts: no retries left (--retries 2))",
        message("error.500")
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert_eq!(stand.requests().len(), 3);

    // Starting a run is not sent twice when it may have started: a 500 ends the deploy.
    let stand = StandIn::start(Outcome::Success, HashMap::new()).await;
    let start = "/v1/templates/iac-experiment/runs";
    stand.fail(Method::POST, start, [broken()]);
    let run = cli(
        Some(stand.addr),
        Some(TOKEN),
        &deploy_args(&[], &image_args()),
    )
    .await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("HTTP 500"), "{}", run.stderr);
    let starts = stand.calls().iter().filter(|(_, p)| p == start).count();
    assert_eq!(starts, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_403_reports_northflanks_message() {
    let stand = StandIn::start(Outcome::Success, HashMap::new()).await;
    let start = "/v1/templates/iac-experiment/runs";
    stand.fail(Method::POST, start, [forbidden()]);
    let run = cli(
        Some(stand.addr),
        Some(TOKEN),
        &deploy_args(&[], &image_args()),
    )
    .await;
    assert_eq!(run.code, Some(1));
    let expected = format!(
        "Northflank refused POST {start} (HTTP 403): {}",
        message("error.403")
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(!run.stderr.contains("rejected the token"), "{}", run.stderr);
    let starts = stand.calls().iter().filter(|(_, p)| p == start).count();
    assert_eq!(starts, 1, "a 403 is not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_token_is_a_clear_error_and_never_printed() {
    let stand = StandIn::start(Outcome::Success, HashMap::new()).await;
    let wrong = "nf-wrong-token-0123456789abcdef";
    for args in [vec!["plan".to_owned()], {
        let mut a = vec!["deploy".to_owned()];
        for arg in image_args() {
            a.extend(["--arg".to_owned(), arg]);
        }
        a
    }] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = cli(Some(stand.addr), Some(wrong), &args).await;
        assert_eq!(run.code, Some(1));
        assert!(run.stderr.contains("HTTP 401"), "{}", run.stderr);
        assert!(run.stderr.contains("NORTHFLANK_TOKEN"), "{}", run.stderr);
        // The stand-in echoes the header; the CLI prints it redacted.
        assert!(run.stderr.contains("Bearer ***"), "{}", run.stderr);
    }
    assert!(stand.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_exits_0_when_equal_and_2_with_a_readable_diff_when_not() {
    let stand = StandIn::start(Outcome::Success, HashMap::new()).await;
    let run = cli(Some(stand.addr), Some(TOKEN), &["plan"]).await;
    assert_eq!(
        run.code,
        Some(2),
        "missing template: {}{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("does not exist"), "{}", run.stdout);

    let deployed = template();
    let stand = StandIn::start(
        Outcome::Success,
        HashMap::from([("iac-experiment".to_owned(), deployed.clone())]),
    )
    .await;
    let run = cli(Some(stand.addr), Some(TOKEN), &["plan"]).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("no differences"), "{}", run.stdout);

    let mut drifted = deployed;
    let steps = &mut drifted["spec"]["spec"]["steps"][1]["spec"]["steps"];
    steps[0]["spec"]["externalAccessEnabled"] = json!(true);
    steps
        .as_array_mut()
        .unwrap()
        .retain(|s| s["ref"] != "migration");
    let stand = StandIn::start(
        Outcome::Success,
        HashMap::from([("iac-experiment".to_owned(), drifted)]),
    )
    .await;
    let run = cli(Some(stand.addr), Some(TOKEN), &["plan"]).await;
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("~ spec.spec.steps[resources].spec.steps[database].spec.externalAccessEnabled: true -> false"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("+ spec.spec.steps[resources].spec.steps[migration] = "),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_clear_error() {
    let args = image_args();
    let run = cli(None, None, &deploy_args(&[], &args)).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("NORTHFLANK_TOKEN is not set"),
        "{}",
        run.stderr
    );

    let run = cli(
        None,
        Some(TOKEN),
        &deploy_args(&["--template", "no/such/template.json"], &args),
    )
    .await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("cannot read the template no/such/template.json"),
        "{}",
        run.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("template.json");
    std::fs::write(&broken, "{ not json").unwrap();
    let broken = broken.to_str().unwrap();
    let run = cli(
        None,
        Some(TOKEN),
        &deploy_args(&["--template", broken], &args),
    )
    .await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("is not valid JSON"), "{}", run.stderr);

    for (arg, message) in [
        ("API_IMAGE", "bad --arg `API_IMAGE`: expected NAME=VALUE"),
        ("=x", "NAME must be letters"),
        (
            "NOPE_IMAGE=x",
            "the template declares no argument `NOPE_IMAGE`",
        ),
    ] {
        let mut with_bad = args.clone();
        with_bad.push(arg.to_owned());
        let run = cli(None, Some(TOKEN), &deploy_args(&[], &with_bad)).await;
        assert_eq!(run.code, Some(1), "{arg}");
        assert!(run.stderr.contains(message), "{arg}: {}", run.stderr);
    }

    let without_api: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with("API_IMAGE="))
        .cloned()
        .collect();
    let run = cli(None, Some(TOKEN), &deploy_args(&[], &without_api)).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("missing template arguments: API_IMAGE"),
        "{}",
        run.stderr
    );

    let run = cli(None, Some(TOKEN), &["deploy", "--timeout", "soon"]).await;
    assert_eq!(run.code, Some(2), "clap usage error");
    assert!(
        run.stderr.contains("invalid duration `soon`"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_api_is_a_clear_error() {
    let run = cli(None, Some(TOKEN), &["plan"]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("cannot reach Northflank at http://127.0.0.1:9"),
        "{}",
        run.stderr
    );
}
