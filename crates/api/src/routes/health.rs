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

/// Body of `GET /api`: where things are.
#[derive(Debug, Serialize, ToSchema)]
pub struct Index {
    /// What this is.
    #[schema(example = "messages api")]
    pub name: &'static str,
    /// Paths of the resources.
    pub links: IndexLinks,
}

/// Paths listed by the index.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexLinks {
    /// Liveness.
    pub health: &'static str,
    /// Readiness (the database answers).
    pub ready: &'static str,
    /// The messages collection.
    pub messages: &'static str,
    /// This api's OpenAPI document.
    pub openapi: &'static str,
}

/// The api's index (also at `/api/`): links to health, messages and the OpenAPI document.
#[utoipa::path(get, path = "/api", tag = "health",
    responses((status = 200, description = "Links to the resources", body = Index)))]
pub async fn index() -> Json<Index> {
    Json(Index {
        name: "messages api",
        links: IndexLinks {
            health: "/api/health",
            ready: "/api/ready",
            messages: "/api/messages",
            openapi: "/api/openapi.json",
        },
    })
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
