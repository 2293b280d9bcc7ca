//! The one error type of the handlers, rendered as an HTML error page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::views::{ErrorPage, UNAVAILABLE_BANNER, render};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The api is down, slow or failing: 503 with the banner.
    #[error("api unavailable: {0}")]
    Unavailable(String),
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A state-changing request a browser sent from another site (see [`crate::guard`]).
    #[error("cross-site request refused")]
    CrossSite,
    /// The form body is over [`crate::FORM_BODY_LIMIT`].
    #[error("form too large")]
    PayloadTooLarge,
    /// The body is not a URL-encoded form.
    #[error("not a form")]
    UnsupportedMediaType,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unavailable(reason) => Self::Unavailable(reason),
            ApiError::NotFound => Self::NotFound,
            ApiError::Invalid { message, .. } => Self::BadRequest(message),
            ApiError::Unexpected(reason) => Self::Internal(reason),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, detail, banner) = match &self {
            Self::Unavailable(reason) => {
                tracing::warn!(reason = %reason, "api unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Messages can't be loaded right now.".to_owned(),
                    Some(UNAVAILABLE_BANNER.to_owned()),
                )
            }
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "This page or message doesn't exist (it may have been deleted).".to_owned(),
                None,
            ),
            Self::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                "Bad request",
                message.clone(),
                None,
            ),
            Self::CrossSite => (
                StatusCode::FORBIDDEN,
                "Refused",
                "This form was sent from another website, so nothing was changed. Use the \
                 forms on this site instead."
                    .to_owned(),
                None,
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Message too long",
                format!(
                    "That was far more than a message can hold ({} characters at most); \
                     nothing was saved.",
                    crate::MAX_CONTENT_CHARS
                ),
                None,
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Not a form",
                "This address only accepts the forms of this site.".to_owned(),
                None,
            ),
            Self::Internal(reason) => {
                tracing::error!(reason = %reason, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "An unexpected error happened. Please try again.".to_owned(),
                    None,
                )
            }
        };
        render(
            status,
            &ErrorPage {
                banner,
                title: title.to_owned(),
                detail,
            },
        )
    }
}
