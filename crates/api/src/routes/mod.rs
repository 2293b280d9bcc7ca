//! HTTP routes under `/api`.

pub mod health;
pub mod messages;

use axum::Router;
use axum::routing::get;

use crate::AppState;

/// All routes (without middleware, see [`crate::app`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api", get(health::index))
        .route("/api/", get(health::index))
        .route("/api/health", get(health::health))
        .route("/api/ready", get(health::ready))
        .route("/api/openapi.json", get(crate::openapi::serve))
        .route("/api/messages", get(messages::list).post(messages::create))
        .route(
            "/api/messages/{id}",
            get(messages::get)
                .patch(messages::update)
                .delete(messages::delete),
        )
}
