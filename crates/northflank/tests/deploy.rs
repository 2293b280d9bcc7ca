//! `northflank plan|deploy` against a local stand-in for Northflank's API.
//!
//! The stand-in speaks the endpoints the CLI uses, as documented at
//! https://northflank.com/docs/v1/api/templates/get-template, …/create-template,
//! …/update-template, …/run-template and …/get-template-run: JSON bodies,
//! `Authorization: Bearer <token>`, results wrapped in `{"data": …}` and errors as
//! `{"error": {"status", "message"}}` (the shape @northflank/js-client reads).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// Recognisable, so its absence from every output can be asserted.
const TOKEN: &str = "nf-test-token-5ecr3t-7f3c9b2e";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    /// Never concludes.
    Hang,
}

struct Stand {
    outcome: Outcome,
    templates: HashMap<String, Value>,
    runs: HashMap<String, usize>,
    /// (method, path, body) of every authorised request.
    requests: Vec<(String, String, Value)>,
}

type Shared = Arc<Mutex<Stand>>;

fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"status": status.as_u16(), "message": message, "id": "stand-in"}});
    (status, Json(body)).into_response()
}

/// Rejects anything but the expected bearer token, echoing what it got (a careless
/// server might), so the CLI's redaction is tested too. `Some` is the rejection.
fn authorise(
    state: &Shared,
    headers: &HeaderMap,
    method: &Method,
    path: String,
    body: Value,
) -> Option<Response> {
    let got = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if got != format!("Bearer {TOKEN}") {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            &format!("Invalid token in `{got}`"),
        ));
    }
    state
        .lock()
        .unwrap()
        .requests
        .push((method.to_string(), path, body));
    None
}

async fn get_template(
    State(s): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if let Some(r) = authorise(
        &s,
        &headers,
        &Method::GET,
        format!("/v1/templates/{id}"),
        Value::Null,
    ) {
        return r;
    }
    match s.lock().unwrap().templates.get(&id) {
        Some(t) => Json(json!({"data": t})).into_response(),
        None => error(StatusCode::NOT_FOUND, "Template not found"),
    }
}

/// What Northflank stores: the template plus its id and bookkeeping, with
/// `concurrencyPolicy` reported beside `options` (GetTemplateResult).
fn stored(id: &str, body: &Value) -> Value {
    let mut t = body.clone();
    t["id"] = json!(id);
    t["createdAt"] = json!("2026-01-01T00:00:00.000Z");
    if let Some(policy) = t["options"]
        .as_object_mut()
        .and_then(|o| o.remove("concurrencyPolicy"))
    {
        t["concurrencyPolicy"] = policy;
    }
    t
}

async fn create_template(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = authorise(
        &s,
        &headers,
        &Method::POST,
        "/v1/templates".into(),
        body.clone(),
    ) {
        return r;
    }
    let id = body["name"].as_str().unwrap_or("template").to_owned();
    let template = stored(&id, &body);
    s.lock().unwrap().templates.insert(id, template.clone());
    Json(json!({"data": {"template": template}})).into_response()
}

async fn update_template(
    State(s): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = authorise(
        &s,
        &headers,
        &Method::POST,
        format!("/v1/templates/{id}"),
        body.clone(),
    ) {
        return r;
    }
    let mut stand = s.lock().unwrap();
    if !stand.templates.contains_key(&id) {
        return error(StatusCode::NOT_FOUND, "Template not found");
    }
    let template = stored(&id, &body);
    stand.templates.insert(id, template.clone());
    Json(json!({"data": {"template": template}})).into_response()
}

fn run_body(template: &str, id: &str, status: &str, spec: Value) -> Value {
    let concluded = matches!(status, "success" | "failure");
    json!({"data": {
        "id": id, "templateId": template, "name": template, "apiVersion": "v1.2",
        "status": status, "concluded": concluded, "spec": spec,
        "createdAt": "2026-01-01 12:00:00.000Z", "updatedAt": "2026-01-01 12:00:00.000Z"
    }})
}

/// The run's top node while nothing has been decided.
fn waiting_spec(status: &str) -> Value {
    json!({"kind": "Workflow", "ref": "template", "spec": {"type": "sequential", "steps": []},
           "response": {"status": status}})
}

async fn run_template(
    State(s): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = authorise(
        &s,
        &headers,
        &Method::POST,
        format!("/v1/templates/{id}/runs"),
        body.clone(),
    ) {
        return r;
    }
    let mut stand = s.lock().unwrap();
    if !stand.templates.contains_key(&id) {
        return error(StatusCode::NOT_FOUND, "Template not found");
    }
    let run = format!("run-{}", stand.runs.len() + 1);
    stand.runs.insert(run.clone(), 0);
    Json(run_body(&id, &run, "pending", waiting_spec("waiting"))).into_response()
}

/// The run as Northflank reports it when the migration job fails: each node's
/// state in `response` (get template run, API reference), the error on the node.
fn failed_spec() -> Value {
    let state = |status: &str| json!({"status": status});
    json!({"kind": "Workflow", "ref": "template", "response": state("failure"),
      "spec": {"type": "sequential", "steps": [
        {"kind": "Project", "ref": "project", "response": state("success"), "spec": {"name": "iac-experiment"}},
        {"kind": "Workflow", "ref": "resources", "response": state("failure"),
         "spec": {"type": "sequential", "steps": [
            {"kind": "Addon", "ref": "database", "response": state("success"), "spec": {"name": "database"}},
            {"kind": "JobRun", "ref": "migration", "condition": "success", "spec": {"jobId": "migrate"},
             "response": {"status": "failure", "error": {"code": 500,
               "message": "Job run migrate-6f2a failed: container exited with code 1"}}},
            {"kind": "Workflow", "ref": "services", "response": state("waiting"),
             "spec": {"type": "parallel", "steps": []}}
        ]}}
    ]}})
}

async fn get_run(
    State(s): State<Shared>,
    headers: HeaderMap,
    UrlPath((id, run)): UrlPath<(String, String)>,
) -> Response {
    if let Some(r) = authorise(
        &s,
        &headers,
        &Method::GET,
        format!("/v1/templates/{id}/runs/{run}"),
        Value::Null,
    ) {
        return r;
    }
    let mut stand = s.lock().unwrap();
    let outcome = stand.outcome;
    let Some(polls) = stand.runs.get_mut(&run) else {
        return error(StatusCode::NOT_FOUND, "Template run not found");
    };
    *polls += 1;
    let body = match (outcome, *polls) {
        (_, 1) | (Outcome::Hang, _) => run_body(&id, &run, "running", waiting_spec("waiting")),
        (Outcome::Success, _) => run_body(&id, &run, "success", waiting_spec("success")),
        (Outcome::Failure, _) => run_body(&id, &run, "failure", failed_spec()),
    };
    Json(body).into_response()
}

async fn serve(outcome: Outcome, templates: HashMap<String, Value>) -> (SocketAddr, Shared) {
    let state: Shared = Arc::new(Mutex::new(Stand {
        outcome,
        templates,
        runs: HashMap::new(),
        requests: Vec::new(),
    }));
    let app = Router::new()
        .route("/v1/templates", post(create_template))
        .route(
            "/v1/templates/{id}",
            get(get_template).post(update_template),
        )
        .route("/v1/templates/{id}/runs", post(run_template))
        .route("/v1/templates/{id}/runs/{run}", get(get_run))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, state)
}

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
    let mut command = Command::new(env!("CARGO_BIN_EXE_northflank"));
    for (key, _) in std::env::vars() {
        if key.starts_with("NORTHFLANK_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
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
    let (addr, state) = serve(Outcome::Success, HashMap::new()).await;
    let args = image_args();
    let run = cli(Some(addr), Some(TOKEN), &deploy_args(&[], &args)).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("created"), "{}", run.stdout);
    assert!(run.stdout.contains("succeeded"), "{}", run.stdout);

    let stand = state.lock().unwrap();
    let calls: Vec<(&str, &str)> = stand
        .requests
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("GET", "/v1/templates/iac-experiment"),
            ("POST", "/v1/templates"),
            ("POST", "/v1/templates/iac-experiment/runs"),
            ("GET", "/v1/templates/iac-experiment/runs/run-1"),
            ("GET", "/v1/templates/iac-experiment/runs/run-1"),
        ]
    );
    assert_eq!(stand.requests[1].2, template(), "the file is sent as is");
    let sent = &stand.requests[2].2["arguments"];
    for arg in &args {
        let (name, value) = arg.split_once('=').unwrap();
        assert_eq!(sent[name], value);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_updates_a_changed_template_and_leaves_an_equal_one() {
    let mut old = template();
    old["spec"]["spec"]["steps"][0]["spec"]["region"] = json!("europe-west");
    let (addr, state) = serve(
        Outcome::Success,
        HashMap::from([("iac-experiment".to_owned(), old)]),
    )
    .await;
    let args = image_args();

    let run = cli(Some(addr), Some(TOKEN), &deploy_args(&[], &args)).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("updated (1 difference(s))"),
        "{}",
        run.stdout
    );
    assert_eq!(state.lock().unwrap().requests[1].0, "POST");
    assert_eq!(
        state.lock().unwrap().requests[1].1,
        "/v1/templates/iac-experiment"
    );

    let run = cli(Some(addr), Some(TOKEN), &deploy_args(&[], &args)).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("unchanged"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_exits_non_zero_naming_the_failing_node() {
    let (addr, _) = serve(Outcome::Failure, HashMap::new()).await;
    let run = cli(Some(addr), Some(TOKEN), &deploy_args(&[], &image_args())).await;
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
    let (addr, _) = serve(Outcome::Hang, HashMap::new()).await;
    let mut args = vec!["deploy", "--poll-interval", "50ms", "--timeout", "300ms"];
    let image_args = image_args();
    for arg in &image_args {
        args.extend(["--arg", arg.as_str()]);
    }
    let run = cli(Some(addr), Some(TOKEN), &args).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    assert!(
        run.stderr.contains("last status `running`"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_token_is_a_clear_error_and_never_printed() {
    let (addr, state) = serve(Outcome::Success, HashMap::new()).await;
    let wrong = "nf-wrong-token-0123456789abcdef";
    for args in [vec!["plan".to_owned()], {
        let mut a = vec!["deploy".to_owned()];
        for arg in image_args() {
            a.extend(["--arg".to_owned(), arg]);
        }
        a
    }] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = cli(Some(addr), Some(wrong), &args).await;
        assert_eq!(run.code, Some(1));
        assert!(run.stderr.contains("HTTP 401"), "{}", run.stderr);
        assert!(run.stderr.contains("NORTHFLANK_TOKEN"), "{}", run.stderr);
    }
    assert!(state.lock().unwrap().requests.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_redacted_from_errors_a_server_echoes() {
    // A 500 whose message repeats the token must not print it.
    let app = Router::new().route(
        "/v1/templates/{id}",
        get(|headers: HeaderMap| async move {
            let got = headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("boom for {got}"),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let run = cli(Some(addr), Some(TOKEN), &["plan"]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("HTTP 500: boom for Bearer ***"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_exits_0_when_equal_and_2_with_a_readable_diff_when_not() {
    let (addr, _) = serve(Outcome::Success, HashMap::new()).await;
    let run = cli(Some(addr), Some(TOKEN), &["plan"]).await;
    assert_eq!(
        run.code,
        Some(2),
        "missing template: {}{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("does not exist"), "{}", run.stdout);

    let deployed = stored_like_northflank(template());
    let (addr, _) = serve(
        Outcome::Success,
        HashMap::from([("iac-experiment".to_owned(), deployed.clone())]),
    )
    .await;
    let run = cli(Some(addr), Some(TOKEN), &["plan"]).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("no differences"), "{}", run.stdout);

    let mut drifted = deployed;
    let steps = &mut drifted["spec"]["spec"]["steps"][1]["spec"]["steps"];
    steps[0]["spec"]["externalAccessEnabled"] = json!(true);
    steps
        .as_array_mut()
        .unwrap()
        .retain(|s| s["ref"] != "migration");
    let (addr, _) = serve(
        Outcome::Success,
        HashMap::from([("iac-experiment".to_owned(), drifted)]),
    )
    .await;
    let run = cli(Some(addr), Some(TOKEN), &["plan"]).await;
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

/// The template as `get template` returns it after a create.
fn stored_like_northflank(mut t: Value) -> Value {
    t["id"] = json!("iac-experiment");
    t["updatedAt"] = json!("2026-01-01T00:00:00.000Z");
    let policy = t["options"]
        .as_object_mut()
        .unwrap()
        .remove("concurrencyPolicy")
        .unwrap();
    t["concurrencyPolicy"] = policy;
    t
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
