//! Request ids: accept or generate `x-request-id`, echo it on the response, and run the
//! request inside a tracing span carrying `request_id` so every log line of the request has it.
//!
//! Handlers read the id with the [`RequestId`] extractor, or from anywhere inside the request
//! with [`current()`], e.g. to forward it to an upstream service:
//!
//! ```no_run
//! use service_kit::RequestId;
//! async fn handler(request_id: RequestId) -> String {
//!     // reqwest::Client::new().get(url).header(service_kit::request_id::HEADER, request_id.as_str())
//!     format!("request {}", request_id)
//! }
//! ```

use std::convert::Infallible;
use std::fmt;

use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::trace::TraceLayer;
use tracing::Span;

/// The header name, `x-request-id`.
pub const HEADER: &str = "x-request-id";

/// Longest accepted incoming request id; longer (or otherwise invalid) ids are replaced.
pub const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the current request. Extractor (never rejects when [`apply`] is in the stack;
/// without it, a fresh id is generated).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// A new random (UUID v4) id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Accept a client-supplied id if it is 1..=[`MAX_LEN`] characters of
    /// `[A-Za-z0-9._:-]` (so it is safe to log and to echo).
    pub fn parse(value: &str) -> Option<Self> {
        let ok = !value.is_empty()
            && value.len() <= MAX_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        ok.then(|| Self(value.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .or_else(|| {
                parts
                    .headers
                    .get(HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(RequestId::parse)
            })
            .unwrap_or_else(RequestId::generate))
    }
}

/// The request id of the request being handled by the current task, if any
/// (set by the middleware of [`apply`]). Not visible in tasks spawned by the handler.
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Middleware: take a valid incoming `x-request-id` or generate one, store it in the request
/// (header + extension + task-local), and echo it on the response.
pub async fn middleware(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::parse)
        .unwrap_or_else(RequestId::generate);
    let value = HeaderValue::from_str(id.as_str()).expect("request id is a valid header value");
    let name = HeaderName::from_static(HEADER);
    request.headers_mut().insert(name.clone(), value.clone());
    request.extensions_mut().insert(id.clone());
    let mut response = CURRENT.scope(id, next.run(request)).await;
    response.headers_mut().insert(name, value);
    response
}

/// The span of one request: `request{method, route, path, request_id}`.
pub fn make_span(request: &Request) -> Span {
    let request_id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        path = request.uri().path(),
        request_id,
    )
}

/// Add the request id middleware and a `TraceLayer` whose span carries the request id
/// (logs `started processing request` / `finished processing request` with status and latency).
pub fn apply<S>(router: axum::Router<S>) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    use tower_http::trace::{DefaultOnRequest, DefaultOnResponse};
    router
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_request(DefaultOnRequest::new().level(tracing::Level::DEBUG))
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(axum::middleware::from_fn(middleware))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_unsafe_ids() {
        assert!(RequestId::parse("abc-123_x.y:z").is_some());
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse("has space").is_none());
        assert!(RequestId::parse("new\nline").is_none());
        assert!(RequestId::parse(&"a".repeat(MAX_LEN)).is_some());
        assert!(RequestId::parse(&"a".repeat(MAX_LEN + 1)).is_none());
    }
}
