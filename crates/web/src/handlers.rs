//! Thin handlers: call the api, pick a page, render it.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use service_kit::RequestId;

use crate::AppState;
use crate::api::ApiError;
use crate::error::AppError;
use crate::views::{EditPage, FormView, IndexPage, MessageView, UNAVAILABLE_BANNER, render};

/// Messages shown per page.
pub const PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct IndexQuery {
    #[serde(default)]
    pub cursor: Option<String>,
}

/// The form of `POST /messages` and `POST /messages/{id}/edit`.
#[derive(Debug, Default, Deserialize)]
pub struct ContentForm {
    #[serde(default)]
    pub content: String,
}

/// `GET /`: the list and the compose form.
pub async fn index(
    State(state): State<AppState>,
    request_id: RequestId,
    Query(query): Query<IndexQuery>,
) -> Result<Response, AppError> {
    let cursor = query.cursor.filter(|c| !c.is_empty());
    index_page(
        &state,
        &request_id,
        cursor.as_deref(),
        FormView::default(),
        StatusCode::OK,
    )
    .await
}

/// `POST /messages`: create, then 303 to `/`; on a validation error re-render with 422.
pub async fn create(
    State(state): State<AppState>,
    request_id: RequestId,
    Form(form): Form<ContentForm>,
) -> Result<Response, AppError> {
    match state.api.create(&request_id, &form.content).await {
        Ok(_) => Ok(Redirect::to("/").into_response()),
        Err(ApiError::Invalid { message, .. }) => {
            let form = FormView {
                content: form.content,
                error: Some(message),
            };
            index_page(
                &state,
                &request_id,
                None,
                form,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(ApiError::Unavailable(reason)) => {
            tracing::warn!(%reason, "cannot post the message");
            let form = FormView {
                content: form.content,
                error: Some(NOT_SAVED.into()),
            };
            index_page(
                &state,
                &request_id,
                None,
                form,
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /messages/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    request_id: RequestId,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let message = state.api.get(&request_id, id).await?;
    let form = FormView {
        content: message.content,
        error: None,
    };
    Ok(render(
        StatusCode::OK,
        &EditPage {
            banner: None,
            id,
            form,
        },
    ))
}

/// `POST /messages/{id}/edit`: update, then 303 to `/`; on a validation error re-render with 422.
pub async fn edit_submit(
    State(state): State<AppState>,
    request_id: RequestId,
    Path(id): Path<String>,
    Form(form): Form<ContentForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    match state.api.update(&request_id, id, &form.content).await {
        Ok(_) => Ok(Redirect::to("/").into_response()),
        Err(ApiError::Invalid { message, .. }) => {
            let form = FormView {
                content: form.content,
                error: Some(message),
            };
            Ok(render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &EditPage {
                    banner: None,
                    id,
                    form,
                },
            ))
        }
        Err(ApiError::Unavailable(reason)) => {
            tracing::warn!(%reason, "cannot save the message");
            let form = FormView {
                content: form.content,
                error: Some(NOT_SAVED.into()),
            };
            Ok(render(
                StatusCode::SERVICE_UNAVAILABLE,
                &EditPage {
                    banner: Some(UNAVAILABLE_BANNER.into()),
                    id,
                    form,
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /messages/{id}/delete`: delete (already gone is fine), then 303 to `/`.
pub async fn delete(
    State(state): State<AppState>,
    request_id: RequestId,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    match state.api.delete(&request_id, id).await {
        Ok(()) | Err(ApiError::NotFound) => Ok(Redirect::to("/").into_response()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /health`: liveness of this process (does not call the api).
pub async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

/// Any other path.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

const NOT_SAVED: &str = "Not saved: the message service is unavailable. Your text is kept here; submit again in a moment.";

fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

/// Renders the index page. If the list cannot be loaded because the api is unavailable,
/// the page still renders, with the banner and status 503.
async fn index_page(
    state: &AppState,
    request_id: &RequestId,
    cursor: Option<&str>,
    form: FormView,
    status: StatusCode,
) -> Result<Response, AppError> {
    let unavailable = status == StatusCode::SERVICE_UNAVAILABLE;
    let page = match state.api.list(request_id, PAGE_SIZE, cursor).await {
        Ok(page) => IndexPage {
            banner: unavailable.then(|| UNAVAILABLE_BANNER.into()),
            messages: page.messages.into_iter().map(MessageView::from).collect(),
            next_cursor: page.next_cursor,
            form,
        },
        Err(ApiError::Unavailable(reason)) => {
            tracing::warn!(%reason, "cannot list messages");
            let page = IndexPage {
                banner: Some(UNAVAILABLE_BANNER.into()),
                messages: Vec::new(),
                next_cursor: None,
                form,
            };
            return Ok(render(StatusCode::SERVICE_UNAVAILABLE, &page));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(render(status, &page))
}
