//! The one error type of the CLI. Messages say what went wrong and what to do.

use std::path::PathBuf;
use std::time::Duration;

use crate::retry::GiveUp;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("NORTHFLANK_TOKEN is not set: export a Northflank API token (never commit it)")]
    MissingToken,

    #[error("NORTHFLANK_TOKEN contains characters an HTTP header cannot carry")]
    InvalidToken,

    #[error("cannot read the template {path}: {source}")]
    ReadTemplate {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the template {path} is not valid JSON: {source}")]
    ParseTemplate {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error("the template {path} is not a Northflank template: {reason}")]
    InvalidTemplate { path: PathBuf, reason: String },

    #[error("bad --arg `{arg}`: {reason}")]
    BadArgument { arg: String, reason: String },

    #[error("missing template arguments: {} (pass them as --arg NAME=VALUE)", .0.join(", "))]
    MissingArguments(Vec<String>),

    #[error("invalid duration `{0}`: use e.g. 500ms, 10s or 30m")]
    BadDuration(String),

    #[error(
        "Northflank rejected the token (HTTP 401) on {method} {path}: {message}; check that NORTHFLANK_TOKEN is a valid, unexpired API token"
    )]
    Unauthorized {
        method: &'static str,
        path: String,
        message: String,
    },

    #[error(
        "Northflank refused {method} {path} (HTTP 403): {message}; the API token's role lacks a permission this call needs (README, Northflank: Setup)"
    )]
    Forbidden {
        method: &'static str,
        path: String,
        message: String,
    },

    #[error("Northflank answered {method} {path} with HTTP {status}: {message}")]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        message: String,
    },

    #[error("cannot reach Northflank at {url}: {reason}")]
    Http { url: String, reason: String },

    #[error("{last} (gave up after {attempts} attempts: {why})")]
    GaveUp {
        attempts: u32,
        why: GiveUp,
        last: Box<Error>,
    },

    #[error("unexpected answer to {method} {path}: {reason}")]
    UnexpectedResponse {
        method: &'static str,
        path: String,
        reason: String,
    },

    #[error("template run {run} ended with status `{status}`; {}", failed_nodes_sentence(.failed))]
    RunFailed {
        run: String,
        status: String,
        failed: Vec<String>,
    },

    #[error(
        "timed out after {}s waiting for template run {run} (last status `{status}`); {}",
        .waited.as_secs(),
        abort_sentence(.abort_failed.as_deref())
    )]
    Timeout {
        run: String,
        status: String,
        waited: Duration,
        /// Why the run could not be aborted, if it could not.
        abort_failed: Option<String>,
    },

    #[error(
        "lost track of template run {run}: {cause}; {}",
        abort_sentence(.abort_failed.as_deref())
    )]
    LostRun {
        run: String,
        cause: Box<Error>,
        abort_failed: Option<String>,
    },
}

fn abort_sentence(abort_failed: Option<&str>) -> String {
    match abort_failed {
        None => "the run was aborted, so the next deploy does not queue behind it".to_owned(),
        Some(reason) => format!(
            "aborting the run failed ({reason}): abort it in Northflank, or the next deploy queues behind it"
        ),
    }
}

fn failed_nodes_sentence(failed: &[String]) -> String {
    match failed {
        [] => "Northflank reported no failing node; see the run in Northflank's UI".to_owned(),
        [one] => format!("failing node: {one}"),
        many => format!("failing nodes: {}", many.join("; ")),
    }
}
