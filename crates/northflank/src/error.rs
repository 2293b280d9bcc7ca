//! The one error type of the CLI. Messages say what went wrong and what to do.

use std::path::PathBuf;
use std::time::Duration;

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
        "Northflank rejected the token (HTTP {status}) on {method} {path}: check that NORTHFLANK_TOKEN is a valid API token with the Templates permissions"
    )]
    Unauthorized {
        method: &'static str,
        path: String,
        status: u16,
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
        "timed out after {}s waiting for template run {run} (last status `{status}`); it may still be running in Northflank",
        .waited.as_secs()
    )]
    Timeout {
        run: String,
        status: String,
        waited: Duration,
    },
}

fn failed_nodes_sentence(failed: &[String]) -> String {
    match failed {
        [] => "Northflank reported no failing node; see the run in Northflank's UI".to_owned(),
        [one] => format!("failing node: {one}"),
        many => format!("failing nodes: {}", many.join("; ")),
    }
}
