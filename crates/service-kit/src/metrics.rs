//! Prometheus metrics: an HTTP metrics middleware and a `/metrics` server on its own port.
//!
//! Recorded per request:
//! - `http_requests_total{method, route, status}` (counter)
//! - `http_request_duration_seconds{method, route, status}` (histogram)
//!
//! `route` is the matched route template (e.g. `/api/messages/{id}`), or `unmatched`
//! for requests no route matched, so raw paths never become labels; `method` is a standard
//! method or `other`, for the same reason.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets of `http_request_duration_seconds`.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often the recorder's upkeep runs (see [`spawn_upkeep`]).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first call.
///
/// Panics if another `metrics` recorder was installed by someone else.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".to_owned()),
                    DURATION_BUCKETS,
                )
                .expect("valid buckets")
                .install_recorder()
                .expect("install the Prometheus metrics recorder")
        })
        .clone()
}

/// Spawn (once per process) the task that periodically folds recorded histogram samples
/// into their buckets. The recorder keeps every raw sample until then: without this task,
/// a service nobody scrapes grows by 8 bytes per request (found by `cargo xtask bench`).
/// Needs a Tokio runtime; [`serve_metrics`] calls it.
pub fn spawn_upkeep() {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if STARTED.swap(true, Ordering::SeqCst) {
        return;
    }
    let handle = handle();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

/// Render all metrics in the Prometheus text exposition format.
pub fn render() -> String {
    handle().render()
}

/// Middleware recording the HTTP metrics of each request.
pub async fn middleware(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}

/// Clients choose the method freely (any token is valid HTTP), so only the standard methods
/// become label values; each distinct value would otherwise be a new series kept forever.
fn method_label(method: &Method) -> String {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if STANDARD.contains(method) {
        method.as_str().to_owned()
    } else {
        "other".to_owned()
    }
}

/// Add the HTTP metrics middleware to every route of `router` (installs the recorder).
pub fn apply<S>(router: axum::Router<S>) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let _ = handle();
    router.layer(axum::middleware::from_fn(middleware))
}

/// A router serving `GET /metrics` (Prometheus text format).
pub fn router() -> axum::Router {
    let _ = handle();
    axum::Router::new().route("/metrics", get(metrics_handler))
}

async fn metrics_handler() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        render(),
    )
}

/// Bind `addr` and serve [`router`] there in a background task (a separate listener,
/// so the public load balancer, which only routes `PORT`, never exposes it).
/// Returns the bound address (useful with port 0). Bind errors are returned.
pub async fn serve_metrics(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "metrics listening");
    spawn_upkeep();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router()).await {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    Ok(addr)
}
