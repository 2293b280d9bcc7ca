//! Thin handlers: call the api, pick a page, render it.
//!
//! Every form carries the page it was shown on ([`PagePosition`]), so after an edit or a
//! delete the person lands back on that page, with a [`Notice`] confirming what happened.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use service_kit::RequestId;

use crate::AppState;
use crate::api::{ApiError, PageRequest};
use crate::error::AppError;
use crate::extract::Form;
use crate::views::{
    EditPage, FormView, IndexPage, MessageView, Notice, PagePosition, UNAVAILABLE_BANNER, render,
};

/// Messages shown per page.
pub const PAGE_SIZE: u32 = 50;

/// Query of `GET /` and of the edit page: which page, and what just happened.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub notice: Option<String>,
}

/// The form of `POST /messages` and `POST /messages/{id}/edit`.
#[derive(Debug, Default, Deserialize)]
pub struct ContentForm {
    #[serde(default)]
    pub content: String,
    /// Only on the compose form (see [`FormView::compose`]).
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The page the form was shown for (hidden fields).
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
}

/// The form of `POST /messages/{id}/delete`: only the page to return to.
#[derive(Debug, Default, Deserialize)]
pub struct PageForm {
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
}

/// `GET /`: a page of messages and the compose form.
pub async fn index(
    State(state): State<AppState>,
    request_id: RequestId,
    Query(query): Query<PageQuery>,
) -> Result<Response, AppError> {
    let position = PagePosition::from_parts(query.cursor.as_deref(), query.after.as_deref());
    let notice = query.notice.as_deref().and_then(Notice::parse);
    index_page(
        &state,
        &request_id,
        &position,
        FormView::compose(),
        notice,
        StatusCode::OK,
    )
    .await
}

/// `POST /messages`: create, then 303 to the first page (where the new message is); on a
/// validation error re-render with 422.
pub async fn create(
    State(state): State<AppState>,
    request_id: RequestId,
    Form(form): Form<ContentForm>,
) -> Result<Response, AppError> {
    let key = form.idempotency_key.filter(|k| !k.is_empty());
    let position = PagePosition::Newest;
    let failed = |error: String| FormView {
        content: form.content.clone(),
        error: Some(error),
        // Nothing was created, or it may have been (503): either way the same key keeps a
        // retry from posting twice.
        idempotency_key: key.clone(),
    };
    if let Err(problem) = check_content(&form.content) {
        let form = failed(problem);
        return index_page(
            &state,
            &request_id,
            &position,
            form,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    match state
        .api
        .create(&request_id, &form.content, key.as_deref())
        .await
    {
        Ok(_) => Ok(Redirect::to(&position.href(Some(Notice::Posted))).into_response()),
        Err(ApiError::Invalid { message, .. }) => {
            tracing::info!(%message, "the api refused the message");
            let form = failed(REFUSED.into());
            index_page(
                &state,
                &request_id,
                &position,
                form,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(ApiError::Unavailable(reason)) => {
            tracing::warn!(%reason, "cannot post the message");
            let form = failed(NOT_SAVED.into());
            index_page(
                &state,
                &request_id,
                &position,
                form,
                None,
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /messages/{id}/edit?cursor=|after=`.
pub async fn edit_form(
    State(state): State<AppState>,
    request_id: RequestId,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let message = state.api.get(&request_id, id).await?;
    let form = FormView {
        content: message.content,
        ..FormView::default()
    };
    let back = PagePosition::from_parts(query.cursor.as_deref(), query.after.as_deref());
    Ok(render(
        StatusCode::OK,
        &EditPage {
            banner: None,
            id,
            form,
            back,
        },
    ))
}

/// `POST /messages/{id}/edit`: update, then 303 back to the page it was edited from; on a
/// validation error re-render with 422.
pub async fn edit_submit(
    State(state): State<AppState>,
    request_id: RequestId,
    Path(id): Path<String>,
    Form(form): Form<ContentForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let back = PagePosition::from_parts(form.cursor.as_deref(), form.after.as_deref());
    let page = |error: &str, status, banner: Option<&str>| {
        let form = FormView {
            content: form.content.clone(),
            error: Some(error.to_owned()),
            idempotency_key: None,
        };
        let page = EditPage {
            banner: banner.map(str::to_owned),
            id,
            form,
            back: back.clone(),
        };
        render(status, &page)
    };
    if let Err(problem) = check_content(&form.content) {
        return Ok(page(&problem, StatusCode::UNPROCESSABLE_ENTITY, None));
    }
    match state.api.update(&request_id, id, &form.content).await {
        Ok(_) => Ok(Redirect::to(&back.href(Some(Notice::Saved))).into_response()),
        Err(ApiError::Invalid { message, .. }) => {
            tracing::info!(%message, "the api refused the change");
            Ok(page(REFUSED, StatusCode::UNPROCESSABLE_ENTITY, None))
        }
        Err(ApiError::Unavailable(reason)) => {
            tracing::warn!(%reason, "cannot save the message");
            Ok(page(
                NOT_SAVED,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(UNAVAILABLE_BANNER),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /messages/{id}/delete`: delete (already gone is fine), then 303 back to the page.
pub async fn delete(
    State(state): State<AppState>,
    request_id: RequestId,
    Path(id): Path<String>,
    Form(form): Form<PageForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let back = PagePosition::from_parts(form.cursor.as_deref(), form.after.as_deref());
    match state.api.delete(&request_id, id).await {
        Ok(()) | Err(ApiError::NotFound) => {
            Ok(Redirect::to(&back.href(Some(Notice::Deleted))).into_response())
        }
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
const REFUSED: &str = "This message can't be saved as it is. Please change it and try again.";

/// The api's rules, in a person's words (the api checks them again).
fn check_content(content: &str) -> Result<(), String> {
    let trimmed = content.trim();
    if trimmed.is_empty() {
        return Err("Please write something first: the message is empty.".into());
    }
    let length = trimmed.chars().count();
    if length > crate::MAX_CONTENT_CHARS {
        return Err(format!(
            "That's {length} characters; a message can have at most {}. Please shorten it.",
            crate::MAX_CONTENT_CHARS
        ));
    }
    if trimmed.contains('\0') {
        return Err(
            "The message contains an invisible character (NUL) that can't be saved. Please \
             remove it."
                .into(),
        );
    }
    Ok(())
}

fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

/// Renders a page of the list. If the list cannot be loaded because the api is unavailable,
/// the page still renders, with the banner and status 503. A "newer" page that turns out
/// to be the newest redirects to `/`.
async fn index_page(
    state: &AppState,
    request_id: &RequestId,
    position: &PagePosition,
    form: FormView,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let unavailable = status == StatusCode::SERVICE_UNAVAILABLE;
    let request = match position {
        PagePosition::Newest => PageRequest::Newest,
        PagePosition::Older(cursor) => PageRequest::Older(cursor),
        PagePosition::Newer(after) => PageRequest::Newer(after),
    };
    let page = match state.api.list(request_id, PAGE_SIZE, request).await {
        Ok(page) => page,
        Err(ApiError::Unavailable(reason)) => {
            tracing::warn!(%reason, "cannot list messages");
            let page = IndexPage::new(position.clone(), Vec::new(), None, None, form)
                .with_banner(UNAVAILABLE_BANNER);
            return Ok(render(StatusCode::SERVICE_UNAVAILABLE, &page));
        }
        Err(e) => return Err(e.into()),
    };
    if matches!(position, PagePosition::Newer(_))
        && page.prev_cursor.is_none()
        && status.is_success()
    {
        return Ok(Redirect::to(&PagePosition::Newest.href(notice)).into_response());
    }
    let messages = page.messages.into_iter().map(MessageView::from).collect();
    let mut view = IndexPage::new(
        position.clone(),
        messages,
        page.prev_cursor,
        page.next_cursor,
        form,
    );
    view.notice = notice;
    if unavailable {
        view = view.with_banner(UNAVAILABLE_BANNER);
    }
    Ok(render(status, &view))
}
