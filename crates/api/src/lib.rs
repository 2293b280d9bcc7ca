//! The messages API: a small CRUD service over PostgreSQL.
//!
//! Layout follows launchbadge/realworld-axum-sqlx: [`config::Config`] from the environment,
//! [`AppState`] shared by thin handlers in [`routes`], one [`error::Error`] type rendered as
//! `{"error":{"code","message","field"?}}`, and the OpenAPI document in [`openapi`].

pub mod batches;
pub mod config;
pub mod create_batches;
pub mod error;
pub mod extract;
pub mod first_pages;
pub mod openapi;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use service_kit::db::SecretCredentials;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

pub use config::Config;
pub use error::Error;

/// Largest accepted request body (content is at most 2,000 characters; JSON escaping may
/// take up to 12 bytes per character).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Longest accepted request target (path and query). hyper's own limit is 64 KiB and answers
/// with an empty body; below it, [`check_request_head`] answers in the JSON error shape.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most request headers accepted (hyper parses up to `service_kit::serve::MAX_HEADERS`).
pub const MAX_HEADERS: usize = 100;
/// Largest total size of the request headers (names and values) accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A pooled connection idle for longer is pinged before a request gets it.
pub const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    /// Lazy pool: the api starts without the database and reconnects by itself.
    pub db: PgPool,
    /// With `DB_SECRET_ARN`: keeps the pool's user name and password current as the secret rotates.
    pub credentials: Option<Arc<SecretCredentials>>,
    /// First-page requests waiting for a statement, and the first pages as last served.
    pub first_page_reads: Arc<first_pages::FirstPageReads>,
    /// Creates waiting to be inserted together.
    pub create_batches: Arc<create_batches::CreateBatches>,
}

impl AppState {
    /// A state whose pool connects lazily (no connection is made here) with `config.database`
    /// as it is; see [`Self::from_config`] for the rotating secret.
    pub fn new(config: &Config) -> Self {
        let first_pages = Arc::new(first_pages::FirstPages::default());
        let forget_first_pages = first_pages.clone();
        let db = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(0)
            .acquire_timeout(config.db_acquire_timeout)
            // A connection used within the last second is handed out as it is; one idle for
            // longer is pinged first. A ping before every acquire cost a round trip per
            // request, a third of the database's work on the list route (benchmarks/README.md);
            // without any, a connection the server ended while idle (a failover, a restart, a
            // rotation that ends old sessions) reached a request as a 503. Connection pools
            // commonly draw the line there (HikariCP skips its check for a connection used in
            // the last 500 ms); the pattern is the example of sqlx's
            // `PoolOptions::before_acquire`. A connection that breaks while busy fails its own
            // request, and sqlx's ping on release then drops it.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for < IDLE_BEFORE_PING {
                        return Ok(true);
                    }
                    // An error closes the connection hard (it is gone) and sqlx logs it.
                    conn.ping().await.map(|()| true)
                })
            })
            // A new connection may be to another server (a restart, a failover, a restore): the
            // pages kept were read on the old one.
            .after_connect(move |_conn, _meta| {
                forget_first_pages.forget_all();
                Box::pin(async { Ok(()) })
            })
            .connect_lazy_with(config.database.clone());
        Self::with_pages(db, first_pages)
    }

    /// A state around `db` as it is, without a rotating secret (for tests: the pages kept are
    /// not forgotten when `db` opens a connection, as [`Self::new`]'s are).
    pub fn with_pool(db: PgPool) -> Self {
        Self::with_pages(db, Arc::default())
    }

    fn with_pages(db: PgPool, first_pages: Arc<first_pages::FirstPages>) -> Self {
        Self {
            first_page_reads: Arc::new(first_pages::first_page_reads(db.clone(), first_pages)),
            create_batches: Arc::new(create_batches::create_batches(db.clone())),
            credentials: None,
            db,
        }
    }

    /// [`Self::new`], and with `DB_SECRET_ARN` the secret's credentials: read once now (for at
    /// most 10 s: the api also starts while Secrets Manager is unreachable), then re-read every
    /// `DB_SECRET_REFRESH_SECONDS` and whenever the database rejects them, by a background task.
    pub async fn from_config(config: &Config) -> Self {
        let mut state = Self::new(config);
        if let Some(source) = &config.database_secret {
            let credentials =
                Arc::new(SecretCredentials::from_env(source, config.database.clone()).await);
            credentials.clone().keep_fresh(state.db.clone()).await;
            state.credentials = Some(credentials);
        }
        state
    }
}

/// The full application router: `/api/...` routes, JSON 404/405, body limit, request timeout,
/// request ids, tracing and HTTP metrics.
pub fn app(state: AppState, request_timeout: Duration) -> Router {
    let credentials = state.credentials.clone();
    let mut router = routes::router()
        .fallback(|| async { Error::RouteNotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            timeout,
        ))
        .layer(axum::middleware::from_fn(check_request_head))
        .with_state(state);
    if let Some(credentials) = credentials {
        // A rejected password means the secret rotated: re-read it before the next connection.
        router = router.layer(axum::middleware::from_fn_with_state(
            credentials,
            service_kit::db::refresh_when_rejected,
        ));
    }
    service_kit::instrument(router)
}

/// Refuse, before reading any body, what the request head already shows to be too large:
/// a target over [`MAX_URI_BYTES`] (414), headers over [`MAX_HEADERS`] or [`MAX_HEADER_BYTES`]
/// (431), a declared `Content-Length` over [`BODY_LIMIT`] (413, at once: the body is never
/// awaited).
async fn check_request_head(request: Request, next: Next) -> Response {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return Error::UriTooLong.into_response();
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Error::HeadersTooLarge.into_response();
    }
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        return Error::PayloadTooLarge.into_response();
    }
    next.run(request).await
}

/// Bound the handling time of every request; on expiry answer 503 `timeout`.
async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(?limit, "request timed out");
            Error::Timeout.into_response()
        }
    }
}
