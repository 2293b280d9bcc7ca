//! The messages API: a small CRUD service over PostgreSQL.
//!
//! Layout follows launchbadge/realworld-axum-sqlx: [`config::Config`] from the environment,
//! [`AppState`] shared by thin handlers in [`routes`], one [`error::Error`] type rendered as
//! `{"error":{"code","message","field"?}}`, and the OpenAPI document in [`openapi`].

pub mod config;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod routes;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub use config::Config;
pub use error::Error;

/// Largest accepted request body (content is at most 2,000 characters; JSON escaping may
/// take up to 12 bytes per character).
pub const BODY_LIMIT: usize = 64 * 1024;

/// A pooled connection idle longer than this is pinged before use.
const POOL_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    /// Lazy pool: the api starts without the database and reconnects by itself.
    pub db: PgPool,
}

impl AppState {
    /// A state whose pool connects lazily (no connection is made here).
    pub fn new(config: &Config) -> Self {
        let db = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(0)
            .acquire_timeout(config.db_acquire_timeout)
            // A ping before every acquire is a second round trip to Postgres per request;
            // ping only connections idle for a while (the pattern of sqlx's
            // `PoolOptions::before_acquire` docs). sqlx still pings every connection on its
            // return to the pool, so a broken one is dropped after its first failure.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > POOL_PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(config.database.clone());
        Self { db }
    }
}

/// The full application router: `/api/...` routes, JSON 404/405, body limit, request timeout,
/// request ids, tracing and HTTP metrics.
pub fn app(state: AppState, request_timeout: Duration) -> Router {
    let router = routes::router()
        .fallback(|| async { Error::RouteNotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            timeout,
        ))
        .with_state(state);
    service_kit::instrument(router)
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
