//! Shared runtime for the services of this repo (`api`, `web`, ...).
//!
//! A typical `main`:
//!
//! ```no_run
//! use std::time::Duration;
//! use service_kit::{config, telemetry, metrics, serve};
//!
//! #[tokio::main]
//! async fn main() {
//!     let port: u16 = config::exit_on_config_error(config::env_var("PORT"));
//!     let metrics_port: u16 = config::exit_on_config_error(config::env_var_or("METRICS_PORT", 9100));
//!     let bind = config::exit_on_config_error(config::bind_address());
//!     config::exit_on_config_error(telemetry::init("my-service"));
//!
//!     let router = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
//!     // request ids + tracing span per request + http metrics:
//!     let router = service_kit::instrument(router);
//!
//!     metrics::serve_metrics((bind, metrics_port).into()).await.expect("bind metrics port");
//!     let settings = serve::ServerSettings::with_drain_timeout(Duration::from_secs(20));
//!     serve::serve(router, (bind, port).into(), settings).await.expect("server error");
//! }
//! ```

pub mod config;
#[cfg(feature = "db")]
pub mod db;
pub mod metrics;
pub mod request_id;
pub mod serve;
pub mod shutdown;
pub mod telemetry;

pub use config::{ConfigError, env_var, env_var_opt, env_var_or, exit_on_config_error};
pub use request_id::RequestId;

/// Apply the standard middleware stack to a router:
/// request id (accept or generate `x-request-id`, echo it on the response),
/// a tracing span per request carrying `request_id` (so every log line of the request has it),
/// and the HTTP metrics (`http_requests_total`, `http_request_duration_seconds`).
///
/// Call it after all routes are added (axum layers only wrap routes that exist when the
/// layer is added). Routes added later are not instrumented.
pub fn instrument<S>(router: axum::Router<S>) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // Layers added last run first: request id (outermost) -> trace span -> metrics -> handler.
    let router = metrics::apply(router);
    request_id::apply(router)
}
