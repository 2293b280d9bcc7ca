//! Extractors whose rejections are our [`Error`] (so every 4xx has the JSON error shape).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::Error;

/// `axum::Json` with [`Error`] rejections.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => Error::UnsupportedMediaType,
                JsonRejection::JsonSyntaxError(e) => Error::MalformedJson(e.body_text()),
                JsonRejection::JsonDataError(e) => Error::InvalidBody(body_problem(&e.body_text())),
                r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
                r => Error::MalformedJson(r.body_text()),
            }),
        }
    }
}

/// What is wrong with a JSON body of the right syntax, for a client: serde's own message
/// names Rust types (`expected struct MessageInput`). Every body of this api is a
/// `MessageInput`, so the problem is always one of these.
fn body_problem(detail: &str) -> String {
    let detail = detail
        .rsplit_once("target type: ")
        .map_or(detail, |(_, d)| d);
    if detail.contains("missing field `content`") {
        "the body must have a `content` field".to_owned()
    } else if detail.starts_with("content:") {
        "`content` must be a string".to_owned()
    } else {
        r#"the body must be a JSON object like {"content": "Hello"}"#.to_owned()
    }
}

/// `axum::extract::Query` with [`Error`] rejections (400 `invalid_query`).
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let detail = e.body_text();
                let field = ["limit", "cursor", "after"]
                    .into_iter()
                    .find(|f| detail.contains(f))
                    .unwrap_or("query");
                Err(Error::InvalidQuery {
                    field,
                    message: format!("{field} must be an integer"),
                })
            }
            Err(r) => Err(Error::InvalidQuery {
                field: "query",
                message: r.body_text(),
            }),
        }
    }
}

/// The `{id}` path segment as a message id: 400 `invalid_id` when not an integer.
pub struct MessageId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for MessageId {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| Error::InvalidId)?;
        raw.parse::<i64>()
            .map(MessageId)
            .map_err(|_| Error::InvalidId)
    }
}
