//! What the CLI reads of Northflank's answers, as typed by `@northflank/js-client`
//! (`GetTemplateResult`, `CreateTemplateResult`, `RunTemplateResult`,
//! `GetTemplaterunResult`, `AbortTemplaterunResult`, `ApiCallError`) and, where the
//! client says `any` (a run's nodes), by Northflank's API reference. The local
//! stand-in's answers are type-checked against the same types (tools/northflank-types).

use serde::Deserialize;
use serde_json::{Map, Value};

/// A successful answer: `{"data": …}`.
#[derive(Debug, Deserialize)]
pub struct Answer<T> {
    pub data: T,
}

/// A failed answer: `{"error": {"status", "message", "id"?, "details"?}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorAnswer {
    pub error: ApiError,
}

#[derive(Debug, Deserialize)]
pub struct ApiError {
    pub message: String,
}

/// A template as Northflank holds it (`GetTemplateResult`; `template` of the
/// create and update results).
#[derive(Debug, Clone, Deserialize)]
pub struct StoredTemplate {
    pub id: String,
    /// Reported beside `options`, where the file has it inside.
    #[serde(rename = "concurrencyPolicy")]
    pub concurrency_policy: Option<String>,
    /// The content fields and Northflank's bookkeeping (timestamps, GitOps link).
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// The create and update results: `{template, templateRun?}`.
#[derive(Debug, Deserialize)]
pub struct TemplateWritten {
    pub template: StoredTemplate,
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
    /// A status this CLI does not know yet; `concluded` still says whether the run is over.
    #[serde(other)]
    Other,
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
    /// A status this CLI does not know yet.
    #[serde(other)]
    Other,
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
