//! The parts of Northflank's REST API the CLI uses.
//!
//! Every call sends `Authorization: Bearer <token>`; successful answers wrap their
//! result in `{"data": …}`, failures carry `{"error": {"status", "message", …}}`.
//! Endpoints, as documented at https://northflank.com/docs/v1/api/templates/… and
//! in the request/result types of `@northflank/js-client` (tools/northflank-types):
//! - `GET  /v1/templates/{templateId}` — get template (…/get-template)
//! - `POST /v1/templates` — create template (…/create-template)
//! - `POST /v1/templates/{templateId}` — update template (…/update-template)
//! - `POST /v1/templates/{templateId}/runs` `{"arguments": {…}}` — run template (…/run-template)
//! - `GET  /v1/templates/{templateId}/runs/{templateRunId}` — get template run (…/get-template-run)

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::Error;

/// Default base URL; `NORTHFLANK_API_URL` or `--api-url` override it.
pub const DEFAULT_API_URL: &str = "https://api.northflank.com";

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A template run as `run template` and `get template run` report it
/// (`RunTemplateResult`, `GetTemplaterunResult` of @northflank/js-client).
#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    pub id: String,
    pub status: RunStatus,
    pub concluded: bool,
    /// The template as run: its nodes, each with the state Northflank keeps in `response`.
    pub spec: RunNode,
}

/// The status of a template run (the `status` enum of `GetTemplaterunResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    Running,
    Success,
    Failure,
    Aborted,
    Aborting,
    Queued,
    Unknown,
    Skipped,
    Waiting,
    Retrying,
    AsyncWait,
    ApprovalWait,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_value(self).ok();
        f.write_str(text.as_ref().and_then(Value::as_str).unwrap_or("?"))
    }
}

/// One node of a run's spec. The js-client types the spec `any`; Northflank's API
/// reference (get template run) gives every node a `response` with its state.
#[derive(Debug, Clone, Deserialize)]
pub struct RunNode {
    pub kind: String,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub spec: Option<RunNodeSpec>,
    pub response: Option<NodeResponse>,
}

/// What the CLI reads of a node's spec: a workflow's steps, a resource's name.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunNodeSpec {
    #[serde(default)]
    pub steps: Vec<RunNode>,
    pub name: Option<String>,
}

/// A node's state in a run.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeResponse {
    pub status: NodeStatus,
    pub error: Option<NodeError>,
}

/// The `response.status` enum of a template run's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Waiting,
    Invalid,
    Failure,
    Retrying,
    Success,
    Aborted,
    Aborting,
    Skipped,
    AsyncWait,
    ApprovalWait,
    Unknown,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NodeError {
    pub code: Option<i64>,
    pub message: String,
}

impl Run {
    /// Whether the run is over, by Northflank's flag or a final status.
    pub fn is_over(&self) -> bool {
        self.concluded
            || matches!(
                self.status,
                RunStatus::Success | RunStatus::Failure | RunStatus::Aborted
            )
    }
}

impl RunNode {
    /// Whether Northflank says this node failed (or its spec was invalid).
    pub fn failed(&self) -> bool {
        self.response
            .as_ref()
            .is_some_and(|r| matches!(r.status, NodeStatus::Failure | NodeStatus::Invalid))
    }

    pub fn steps(&self) -> &[RunNode] {
        self.spec.as_ref().map_or(&[], |spec| &spec.steps)
    }

    /// `Kind \`ref\`: message`, naming the node as the template does.
    pub fn describe(&self) -> String {
        let name = self
            .reference
            .as_deref()
            .or_else(|| self.spec.as_ref().and_then(|s| s.name.as_deref()))
            .unwrap_or("(no ref)");
        let error = self.response.as_ref().and_then(|r| r.error.as_ref());
        match error {
            Some(e) => format!("{} `{name}`: {}", self.kind, e.message),
            None => format!("{} `{name}`", self.kind),
        }
    }
}

impl Client {
    pub fn new(base: &str, token: &str) -> Result<Self, Error> {
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Error::InvalidToken)?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("northflank-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Http {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    /// The template, or `None` when Northflank has no template with this id.
    pub async fn get_template(&self, id: &str) -> Result<Option<Value>, Error> {
        let path = format!("/v1/templates/{}", segment(id));
        match self.call(Method::GET, &path, None).await {
            Ok(data) => Ok(Some(data)),
            Err(Error::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the template; returns the id Northflank gave it.
    pub async fn create_template(&self, template: &Value) -> Result<String, Error> {
        let path = "/v1/templates";
        let data = self.call(Method::POST, path, Some(template)).await?;
        // The result is `{template: {id, …}, templateRun?}`; older answers were the template itself.
        data.get("template")
            .unwrap_or(&data)
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| unexpected(Method::POST, path, "no template id in the answer"))
    }

    pub async fn update_template(&self, id: &str, template: &Value) -> Result<(), Error> {
        let path = format!("/v1/templates/{}", segment(id));
        self.call(Method::POST, &path, Some(template)).await?;
        Ok(())
    }

    /// Starts a run with these arguments; returns the run.
    pub async fn run_template(
        &self,
        id: &str,
        arguments: &Map<String, Value>,
    ) -> Result<Run, Error> {
        let path = format!("/v1/templates/{}/runs", segment(id));
        let data = self
            .call(
                Method::POST,
                &path,
                Some(&json!({ "arguments": arguments })),
            )
            .await?;
        parse_run(&path, data)
    }

    pub async fn get_run(&self, id: &str, run: &str) -> Result<Run, Error> {
        let path = format!("/v1/templates/{}/runs/{}", segment(id), segment(run));
        let data = self.call(Method::GET, &path, None).await?;
        parse_run(&path, data)
    }

    /// One call: the `data` of a 2xx answer, or the error Northflank described.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, Error> {
        let method_name = method_name(&method);
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| Error::Http {
            url: url.clone(),
            reason: self.redact(&e.to_string()),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| Error::Http {
            url: url.clone(),
            reason: self.redact(&e.to_string()),
        })?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized {
                method: method_name,
                path: path.to_owned(),
                status: status.as_u16(),
            });
        }
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        if !status.is_success() {
            let message = parsed
                .as_ref()
                .and_then(|v| v.pointer("/error/message"))
                .and_then(Value::as_str)
                .map_or_else(|| text.trim().to_owned(), str::to_owned);
            return Err(Error::Api {
                method: method_name,
                path: path.to_owned(),
                status: status.as_u16(),
                message: self.redact(&truncate(&message, 500)),
            });
        }
        match parsed {
            Some(Value::Object(mut object)) if object.contains_key("data") => {
                Ok(object.remove("data").unwrap_or_default())
            }
            _ => Err(Error::UnexpectedResponse {
                method: method_name,
                path: path.to_owned(),
                reason: "expected a JSON object with `data`".to_owned(),
            }),
        }
    }

    /// Never let the token through, even if a server echoes it back.
    fn redact(&self, text: &str) -> String {
        if self.token.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.token, "***")
        }
    }
}

fn parse_run(path: &str, data: Value) -> Result<Run, Error> {
    serde_json::from_value(data).map_err(|e| Error::UnexpectedResponse {
        method: "GET",
        path: path.to_owned(),
        reason: format!("not a template run: {e}"),
    })
}

fn unexpected(method: Method, path: &str, reason: &str) -> Error {
    Error::UnexpectedResponse {
        method: method_name(&method),
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::POST => "POST",
        _ => "GET",
    }
}

/// Percent-encodes an id for use as one path segment.
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
