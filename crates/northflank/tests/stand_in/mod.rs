//! A loopback stand-in of Northflank's API, for the endpoints the CLI uses
//! (https://northflank.com/docs/v1/api/templates/…: get, create and update template,
//! run template, get and abort template run), with faults a test can inject.
//!
//! It answers only with the files in `tests/fixtures/northflank-api`, which
//! tools/northflank-types type-checks against the result types of
//! @northflank/js-client (tests/typecheck.rs), so it cannot serve a field the real
//! API does not have. Two rules complete a file, and the type check applies them too:
//! - a template answer carries the content fields (`name`, `description`,
//!   `apiVersion`, `arguments`, `spec`) of the template the stand-in holds;
//! - `{authorization}` in an error message becomes the request's `Authorization`
//!   header, as a careless server might echo it, so the CLI's redaction is tested.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Recognisable, so its absence from every output can be asserted.
pub const TOKEN: &str = "nf-test-token-5ecr3t-7f3c9b2e";

/// The fields of a template answer that come from the template held.
const CONTENT: [&str; 5] = ["name", "description", "apiVersion", "arguments", "spec"];

/// How the run the CLI starts ends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Never concludes.
    Hang,
}

/// One authorised request, as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub at: Instant,
}

/// What the stand-in does instead of answering a request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answers `error.<status>.json` with these headers.
    Status(StatusCode, Vec<(&'static str, &'static str)>),
    /// Answers nothing for this long (past the CLI's request timeout), then a 503.
    Stall(Duration),
}

struct Stand {
    outcome: Outcome,
    /// Template id → the template's content, as created, updated or given.
    templates: HashMap<String, Value>,
    polls: usize,
    requests: Vec<Request>,
    /// (method, path) → the faults its next requests meet, in order.
    faults: HashMap<(Method, String), VecDeque<Fault>>,
}

type Shared = Arc<Mutex<Stand>>;

pub struct StandIn {
    pub addr: SocketAddr,
    state: Shared,
}

impl StandIn {
    pub async fn start(outcome: Outcome, templates: HashMap<String, Value>) -> Self {
        let state: Shared = Arc::new(Mutex::new(Stand {
            outcome,
            templates,
            polls: 0,
            requests: Vec::new(),
            faults: HashMap::new(),
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    /// The next requests `method path` meet these faults, one each, before being answered.
    pub fn fail(&self, method: Method, path: &str, faults: impl IntoIterator<Item = Fault>) {
        let mut stand = self.state.lock().unwrap();
        let queue = stand.faults.entry((method, path.to_owned())).or_default();
        queue.extend(faults);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// `(method, path)` of every authorised request.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.requests()
            .into_iter()
            .map(|r| (r.method, r.path))
            .collect()
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/northflank-api")
}

/// The canned answer `name` (`tests/fixtures/northflank-api/<name>.json`).
pub fn fixture(name: &str) -> Value {
    let path = fixtures().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The id of the run the stand-in starts.
pub fn run_id() -> String {
    fixture("run-template")["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, authorization: &str) -> Response {
    let mut body = fixture(&format!("error.{}", status.as_u16()));
    let message = body["error"]["message"].as_str().unwrap_or_default();
    body["error"]["message"] = message.replace("{authorization}", authorization).into();
    answer(status, body)
}

/// The template answer `name`, with the content fields of `held` at `at`.
fn template_answer(name: &str, at: &str, held: &Value) -> Response {
    let mut body = fixture(name);
    let target = body.pointer_mut(at).unwrap();
    for key in CONTENT {
        if let Some(value) = held.get(key) {
            target[key] = value.clone();
        }
    }
    answer(StatusCode::OK, body)
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if authorization != format!("Bearer {TOKEN}") {
        return error(StatusCode::UNAUTHORIZED, authorization);
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let fault = {
        let mut stand = state.lock().unwrap();
        stand.requests.push(Request {
            method: method.to_string(),
            path: uri.path().to_owned(),
            body: body.clone(),
            at: Instant::now(),
        });
        let key = (method.clone(), uri.path().to_owned());
        stand.faults.get_mut(&key).and_then(VecDeque::pop_front)
    };
    match fault {
        Some(Fault::Status(status, extra)) => {
            let mut response = error(status, authorization);
            for (name, value) in extra {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        Some(Fault::Stall(pause)) => {
            tokio::time::sleep(pause).await;
            error(StatusCode::SERVICE_UNAVAILABLE, authorization)
        }
        None => route(
            &mut state.lock().unwrap(),
            &method,
            uri.path(),
            body,
            authorization,
        ),
    }
}

fn route(
    stand: &mut Stand,
    method: &Method,
    path: &str,
    body: Value,
    authorization: &str,
) -> Response {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["v1", "templates", id]) => match stand.templates.get(*id) {
            Some(held) => template_answer("get-template", "/data", held),
            None => error(StatusCode::NOT_FOUND, authorization),
        },
        (Method::POST, ["v1", "templates"]) => {
            let id = fixture("create-template")["data"]["template"]["id"].clone();
            stand
                .templates
                .insert(id.as_str().unwrap().to_owned(), body.clone());
            template_answer("create-template", "/data/template", &body)
        }
        (Method::POST, ["v1", "templates", id]) if stand.templates.contains_key(*id) => {
            stand.templates.insert((*id).to_owned(), body.clone());
            template_answer("update-template", "/data/template", &body)
        }
        (Method::POST, ["v1", "templates", id, "runs"]) if stand.templates.contains_key(*id) => {
            answer(StatusCode::OK, fixture("run-template"))
        }
        (Method::GET, ["v1", "templates", _, "runs", run]) if *run == run_id() => {
            stand.polls += 1;
            answer(
                StatusCode::OK,
                fixture(run_state(stand.outcome, stand.polls)),
            )
        }
        (Method::POST, ["v1", "templates", _, "runs", run, "abort"]) if *run == run_id() => {
            answer(StatusCode::OK, fixture("abort-template-run"))
        }
        _ => error(StatusCode::NOT_FOUND, authorization),
    }
}

/// The answer to the `polls`th look at the run: running first, then its outcome.
fn run_state(outcome: Outcome, polls: usize) -> &'static str {
    match (outcome, polls) {
        (_, 1) | (Outcome::Hang, _) => "get-template-run.running",
        (Outcome::Success, _) => "get-template-run.success",
        (Outcome::Failure, _) => "get-template-run.failure",
    }
}
