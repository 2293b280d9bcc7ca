//! The one error type of the api and its JSON shape:
//! `{"error":{"code":"snake_case","message":"human readable","field":"content"?}}`.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Everything a handler can fail with. Client mistakes are 4xx; an unreachable database is 503.
/// Messages never contain SQL or internal details (those are logged instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field failed validation (422).
    #[error("{message}")]
    Validation {
        /// Name of the field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A query parameter is invalid (400).
    #[error("{message}")]
    InvalidQuery {
        /// Name of the parameter.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A request header is invalid (400).
    #[error("{message}")]
    InvalidHeader {
        /// Name of the header.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The `{id}` path segment is not an integer (400).
    #[error("id must be an integer")]
    InvalidId,
    /// The body is not syntactically valid JSON (400).
    #[error("{0}")]
    MalformedJson(String),
    /// The JSON does not have the expected shape: missing field, wrong type (422).
    #[error("{0}")]
    InvalidBody(String),
    /// The body is not `application/json` (415).
    #[error("expected a request body with `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// The body exceeds [`crate::BODY_LIMIT`] (413), declared by `Content-Length` or read.
    #[error("request body is too large (at most {} bytes)", crate::BODY_LIMIT)]
    PayloadTooLarge,
    /// The request target exceeds [`crate::MAX_URI_BYTES`] (414).
    #[error("request URI is too long (at most {} bytes)", crate::MAX_URI_BYTES)]
    UriTooLong,
    /// More than [`crate::MAX_HEADERS`] headers or [`crate::MAX_HEADER_BYTES`] of them (431).
    #[error(
        "request headers are too large (at most {} headers, {} bytes)",
        crate::MAX_HEADERS,
        crate::MAX_HEADER_BYTES
    )]
    HeadersTooLarge,
    /// No message with this id (or it was deleted) (404).
    #[error("message not found")]
    NotFound,
    /// No such route (404).
    #[error("no such route")]
    RouteNotFound,
    /// Route exists, method does not (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The database cannot be reached (503).
    #[error("the database is unavailable, try again later")]
    DatabaseUnavailable,
    /// The database rejected the credentials, which rotated and are being re-read (503, same
    /// body as [`Self::DatabaseUnavailable`]).
    #[error("the database is unavailable, try again later")]
    CredentialsRejected,
    /// The request took too long (503).
    #[error("the request took too long, try again later")]
    Timeout,
    /// A bug or an unexpected database error (500). Details are logged, not returned.
    #[error("internal error")]
    Internal,
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Details of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `database_unavailable`.
    pub code: &'static str,
    /// Human readable explanation.
    pub message: String,
    /// The offending field or parameter, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

impl Error {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation { .. } | Self::InvalidBody(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidQuery { .. }
            | Self::InvalidHeader { .. }
            | Self::InvalidId
            | Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::NotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::DatabaseUnavailable | Self::CredentialsRejected | Self::Timeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "validation_failed",
            Self::InvalidQuery { .. } => "invalid_query",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::InvalidId => "invalid_id",
            Self::MalformedJson(_) => "malformed_json",
            Self::InvalidBody(_) => "invalid_body",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UriTooLong => "uri_too_long",
            Self::HeadersTooLarge => "headers_too_large",
            Self::NotFound => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::DatabaseUnavailable | Self::CredentialsRejected => "database_unavailable",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Validation { field, .. }
            | Self::InvalidQuery { field, .. }
            | Self::InvalidHeader { field, .. } => Some(field),
            Self::InvalidId => Some("id"),
            _ => None,
        }
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                field: self.field(),
            },
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        if matches!(self, Self::CredentialsRejected) {
            // Tells `service_kit::db::refresh_when_rejected` to re-read the secret.
            response
                .extensions_mut()
                .insert(service_kit::db::CredentialsRejected);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::from(&e)
    }
}

impl From<crate::batches::Unanswered> for Error {
    fn from(e: crate::batches::Unanswered) -> Self {
        match e {
            crate::batches::Unanswered::QueueFull => {
                tracing::warn!("too many requests waiting for the database");
                Self::DatabaseUnavailable
            }
            crate::batches::Unanswered::WriterFailed => Self::Internal,
        }
    }
}

/// One database error answered to several requests (the creates of a batch).
impl From<&sqlx::Error> for Error {
    fn from(e: &sqlx::Error) -> Self {
        if service_kit::db::is_credentials_rejected(e) {
            tracing::warn!(error = %e, "the database rejected the credentials");
            Self::CredentialsRejected
        } else if is_unavailable(e) {
            tracing::warn!(error = %e, "database unavailable");
            Self::DatabaseUnavailable
        } else {
            tracing::error!(error = %e, "unexpected database error");
            Self::Internal
        }
    }
}

/// Errors meaning "the database cannot serve us right now" rather than a bug.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-03: shutdown / cannot connect now;
            // 53300: too many connections; 3D000: database does not exist (yet).
            code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "3D000"
        }),
        _ => false,
    }
}
