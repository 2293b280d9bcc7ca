//! Tracing subscriber setup: `LOG_FORMAT=json|text` (default `json`) and `RUST_LOG`.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{ConfigError, env_raw, env_var_or};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line, with the fields of all enclosing spans (production).
    #[default]
    Json,
    /// Human readable, for local development.
    Text,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            _ => Err("expected `json` or `text`".to_owned()),
        }
    }
}

/// Install the global tracing subscriber for `service_name`.
///
/// - `LOG_FORMAT`: `json` (default) or `text`; anything else is a [`ConfigError`].
/// - `RUST_LOG`: an `EnvFilter` directive; default `info`. Invalid → [`ConfigError`].
///
/// Logs go to stdout. In JSON each line carries the fields of the request span
/// (`request_id`, `method`, `route`, ...) under `spans`. Calling it twice is harmless
/// (the second call keeps the first subscriber).
pub fn init(service_name: &str) -> Result<(), ConfigError> {
    init_with_writer(service_name, std::io::stdout)
}

/// [`init`], logging to stderr: for command-line tools whose stdout is their result
/// (`migrate up` prints its summary there).
pub fn init_stderr(service_name: &str) -> Result<(), ConfigError> {
    init_with_writer(service_name, std::io::stderr)
}

fn init_with_writer<W>(service_name: &str, writer: W) -> Result<(), ConfigError>
where
    W: for<'writer> tracing_subscriber::fmt::MakeWriter<'writer> + Send + Sync + 'static,
{
    let format: LogFormat = env_var_or("LOG_FORMAT", LogFormat::Json)?;
    let filter = match env_raw("RUST_LOG")? {
        Some(directives) => EnvFilter::builder()
            .parse(&directives)
            .map_err(|e| ConfigError::invalid("RUST_LOG", e.to_string()))?,
        None => EnvFilter::new("info"),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(writer))
            .try_init(),
    };
    if result.is_ok() {
        tracing::info!(service = service_name, log_format = ?format, "telemetry initialised");
    }
    Ok(())
}
