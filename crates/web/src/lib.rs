//! The web front end: a server-rendered page listing messages, with forms to post, edit
//! and delete them. Every form works without JavaScript (POST, then 303 to `/`); the
//! small script in `static/app.js` only adds conveniences.
//!
//! All data comes from the api (`API_URL`), called server-side with the request id
//! forwarded. When the api is down or slow, pages still render, with a banner and 503.

pub mod api;
pub mod config;
pub mod error;
pub mod extract;
pub mod guard;
pub mod handlers;
pub mod views;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use api::ApiClient;
pub use config::Config;
pub use error::AppError;

/// Longest message the api accepts, in characters (shown by the counter script).
pub const MAX_CONTENT_CHARS: usize = 2000;

/// Largest form body: 2,000 characters percent-encoded take at most 24,000 bytes.
pub const FORM_BODY_LIMIT: usize = 64 * 1024;

const APP_CSS: &str = include_str!("../static/app.css");
const APP_JS: &str = include_str!("../static/app.js");

/// Version of the embedded assets (a hash of their content), used to bust caches.
pub fn asset_version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        // FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in APP_CSS.bytes().chain(APP_JS.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{:08x}", hash >> 32)
    });
    &VERSION
}

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub api: ApiClient,
}

impl AppState {
    /// Builds the state (and the api client) from the configuration.
    pub fn new(config: &Config) -> reqwest::Result<Self> {
        let api = ApiClient::new(
            &config.api_url,
            config.api_timeout,
            config.api_max_connections,
        )?;
        Ok(Self { api })
    }
}

/// All routes of the web service (without the request-id/metrics stack, see
/// [`service_kit::instrument`], which `main` applies).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(handlers::index))
        .route("/messages", post(handlers::create))
        .route(
            "/messages/{id}/edit",
            get(handlers::edit_form).post(handlers::edit_submit),
        )
        .route("/messages/{id}/delete", post(handlers::delete))
        .route("/health", get(handlers::health))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .layer(axum::middleware::from_fn(guard::refuse_cross_site))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// The router with the standard service stack (request ids, trace spans, metrics).
pub fn app(state: AppState) -> Router {
    service_kit::instrument(router(state))
}

async fn css() -> impl IntoResponse {
    static_asset("text/css; charset=utf-8", APP_CSS)
}

async fn js() -> impl IntoResponse {
    static_asset("text/javascript; charset=utf-8", APP_JS)
}

fn static_asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
}

/// HSTS once the browser reached us over HTTPS: the ALB terminates TLS and sets
/// `X-Forwarded-Proto: https` (a client forging it only tells itself to use HTTPS).
const HSTS: &str = "max-age=31536000; includeSubDomains";

async fn security_headers(request: Request, next: Next) -> Response {
    let over_https = request
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if over_https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
