//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::health::{self, Index, IndexLinks, Status};
use crate::routes::messages::{self, Message, MessageInput, MessagePage};

/// OpenAPI description of the api.
#[derive(OpenApi)]
#[openapi(
    info(title = "messages api", description = "Messages: list, create, read, update, soft delete."),
    paths(
        health::index,
        health::health,
        health::ready,
        messages::list,
        messages::create,
        messages::get,
        messages::update,
        messages::delete,
    ),
    components(schemas(Message, MessagePage, MessageInput, Status, Index, IndexLinks, ErrorBody, ErrorDetail)),
    tags((name = "messages"), (name = "health"))
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
