//! Command line: `northflank plan` and `northflank deploy`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::api::DEFAULT_API_URL;
use crate::error::Error;

/// Plan and deploy the Northflank template rendered from the service catalog.
///
/// The API token is read from NORTHFLANK_TOKEN only.
#[derive(Debug, Parser)]
#[command(name = "northflank", version)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Target {
    /// The rendered template.
    #[arg(
        long = "template",
        env = "NORTHFLANK_TEMPLATE_FILE",
        default_value = "northflank/template.json",
        global = true
    )]
    pub template_file: PathBuf,
    /// Northflank's id of the template [default: derived from the template's name].
    #[arg(long, env = "NORTHFLANK_TEMPLATE_ID", global = true)]
    pub template_id: Option<String>,
}

/// Where Northflank's API is and how requests to it are retried.
#[derive(Debug, Args)]
pub struct Connection {
    /// Base URL of Northflank's API.
    #[arg(long, env = "NORTHFLANK_API_URL", default_value = DEFAULT_API_URL, global = true)]
    pub api_url: String,
    /// Retries of a request that failed transiently (HTTP 429 or 5xx, no answer).
    #[arg(long, env = "NORTHFLANK_RETRIES", default_value_t = 5, global = true)]
    pub retries: u32,
    /// Wait before the first retry, doubled for each further one; a `Retry-After`
    /// header (or, on a 429, `x-ratelimit-reset`) replaces it.
    #[arg(long, env = "NORTHFLANK_RETRY_DELAY", default_value = "2s", value_parser = duration, global = true)]
    pub retry_delay: Duration,
    /// The most time spent waiting to retry one request.
    #[arg(long, env = "NORTHFLANK_RETRY_BUDGET", default_value = "5m", value_parser = duration, global = true)]
    pub retry_budget: Duration,
    /// Time limit of one HTTP request.
    #[arg(long, env = "NORTHFLANK_REQUEST_TIMEOUT", default_value = "60s", value_parser = duration, global = true)]
    pub request_timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show how the deployed template differs from the rendered one.
    ///
    /// Exit code 0 when they are equal, 2 when they differ, 1 on error.
    Plan,
    /// Create or update the template, run it with the image arguments of this
    /// build, and wait for the run's outcome.
    Deploy(Deploy),
}

#[derive(Debug, Args)]
pub struct Deploy {
    /// A template argument, e.g. `--arg API_IMAGE=ghcr.io/owner/repo/api:TAG` (repeatable).
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    /// How often to ask for the run's status, e.g. 10s.
    #[arg(long, env = "NORTHFLANK_POLL_INTERVAL", default_value = "10s", value_parser = duration)]
    pub poll_interval: Duration,
    /// How long to wait for the run to finish, e.g. 30m.
    #[arg(long, env = "NORTHFLANK_TIMEOUT", default_value = "30m", value_parser = duration)]
    pub timeout: Duration,
    /// Only run the template, without updating it (when GitOps syncs it from the repository).
    #[arg(long)]
    pub skip_update: bool,
}

/// `500ms`, `10s`, `30m`, `1h`; a bare number is seconds.
pub fn duration(text: &str) -> Result<Duration, Error> {
    let bad = || Error::BadDuration(text.to_owned());
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(bad()),
    };
    if duration.is_zero() {
        Err(bad())
    } else {
        Ok(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert!(duration("0s").is_err());
        assert!(duration("ten").is_err());
        assert!(duration("5d").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
