//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{AppState, Error};

/// Body of health and readiness responses.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` (liveness) or `ready` (readiness).
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process serves HTTP. Never touches the database.
#[utoipa::path(get, path = "/api/health", tag = "health",
    responses((status = 200, description = "The process is alive", body = Status)))]
pub async fn health() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Readiness: one database round trip.
#[utoipa::path(get, path = "/api/ready", tag = "health",
    responses(
        (status = 200, description = "The database answers", body = Status),
        (status = 503, description = "The database is unreachable", body = crate::error::ErrorBody),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Status>, Error> {
    sqlx::query_scalar!("SELECT 1 AS \"one!\"")
        .fetch_one(&state.db)
        .await?;
    Ok(Json(Status { status: "ready" }))
}
