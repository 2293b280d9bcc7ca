//! Typed client of the api (see docs/CONTRACTS.md), used server-side by the handlers.
//!
//! Built once and shared through `AppState`: one connection pool with timeouts, and a
//! semaphore bounding the number of concurrent calls so a slow api cannot pile up
//! unbounded work in this service.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use service_kit::RequestId;
use tokio::sync::Semaphore;

/// A message as the api returns it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub content: String,
    pub created_at: String,
    pub updated_at: String,
}

/// One page of `GET /api/messages`.
#[derive(Debug, Clone, Deserialize)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// Opaque cursor of the next (older) page, if any.
    #[serde(default, deserialize_with = "cursor_to_string")]
    pub next_cursor: Option<String>,
    /// Opaque cursor of the previous (newer) page, if any.
    #[serde(default, deserialize_with = "cursor_to_string")]
    pub prev_cursor: Option<String>,
}

/// Which page of the list to ask for.
#[derive(Debug, Clone, Copy)]
pub enum PageRequest<'a> {
    /// The newest messages.
    Newest,
    /// The page older than a `next_cursor` (`cursor=`).
    Older(&'a str),
    /// The page newer than a `prev_cursor` (`after=`).
    Newer(&'a str),
}

/// The api's error body: `{"error":{"code","message","field"?}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    field: Option<String>,
}

/// What can go wrong calling the api, as the handlers need to tell it apart.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Unreachable, too slow, or answering 5xx: show the "unavailable" banner (503).
    #[error("api unavailable: {0}")]
    Unavailable(String),
    /// 404.
    #[error("not found")]
    NotFound,
    /// 400/422: the input was rejected; `message` is meant for the person.
    #[error("invalid input ({code}): {message}")]
    Invalid {
        code: String,
        message: String,
        field: Option<String>,
    },
    /// Anything else (unexpected status or body).
    #[error("unexpected api response: {0}")]
    Unexpected(String),
}

#[derive(Serialize)]
struct ContentBody<'a> {
    content: &'a str,
}

/// Client of the api. Cheap to clone (shared pool).
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Arc<str>,
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl ApiClient {
    /// A client for the api at `base` (e.g. `http://127.0.0.1:3000`). `timeout` bounds each
    /// call (waiting for a free slot included); at most `max_connections` calls run at once.
    pub fn new(base: &Url, timeout: Duration, max_connections: usize) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .timeout(timeout)
            .pool_max_idle_per_host(max_connections)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(concat!("web/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base: base.as_str().trim_end_matches('/').into(),
            permits: Arc::new(Semaphore::new(max_connections)),
            timeout,
        })
    }

    /// `GET /api/messages?limit=&cursor=|after=`.
    pub async fn list(
        &self,
        request_id: &RequestId,
        limit: u32,
        page: PageRequest<'_>,
    ) -> Result<MessagePage, ApiError> {
        let mut url = self.url("/api/messages")?;
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        match page {
            PageRequest::Newest => {}
            PageRequest::Older(cursor) => {
                url.query_pairs_mut().append_pair("cursor", cursor);
            }
            PageRequest::Newer(after) => {
                url.query_pairs_mut().append_pair("after", after);
            }
        }
        let response = self.call(self.http.get(url), request_id).await?;
        decode(response).await
    }

    /// `GET /api/messages/{id}`.
    pub async fn get(&self, request_id: &RequestId, id: i64) -> Result<Message, ApiError> {
        let request = self.http.get(self.url(&format!("/api/messages/{id}"))?);
        decode(self.call(request, request_id).await?).await
    }

    /// `POST /api/messages`, with `Idempotency-Key` when given.
    pub async fn create(
        &self,
        request_id: &RequestId,
        content: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Message, ApiError> {
        let mut request = self
            .http
            .post(self.url("/api/messages")?)
            .json(&ContentBody { content });
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        decode(self.call(request, request_id).await?).await
    }

    /// `PATCH /api/messages/{id}`.
    pub async fn update(
        &self,
        request_id: &RequestId,
        id: i64,
        content: &str,
    ) -> Result<Message, ApiError> {
        let request = self
            .http
            .request(Method::PATCH, self.url(&format!("/api/messages/{id}"))?)
            .json(&ContentBody { content });
        decode(self.call(request, request_id).await?).await
    }

    /// `DELETE /api/messages/{id}`.
    pub async fn delete(&self, request_id: &RequestId, id: i64) -> Result<(), ApiError> {
        let request = self.http.delete(self.url(&format!("/api/messages/{id}"))?);
        self.call(request, request_id).await.map(drop)
    }

    fn url(&self, path: &str) -> Result<Url, ApiError> {
        Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| ApiError::Unexpected(format!("bad api url: {e}")))
    }

    /// Sends the request with the request id, maps transport failures and error statuses.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        request_id: &RequestId,
    ) -> Result<reqwest::Response, ApiError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let _permit = tokio::time::timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(|_| ApiError::Unavailable("too many concurrent api calls".into()))?
            .map_err(|_| ApiError::Unavailable("client closed".into()))?;
        // Only what is left of the budget: the wait for a slot counts against it.
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let response = request
            .timeout(remaining)
            .header(service_kit::request_id::HEADER, request_id.as_str())
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Option<ErrorBody> = response.json().await.ok();
        let (code, message, field) = match body {
            Some(ErrorBody { error }) => (error.code, error.message, error.field),
            None => (String::new(), String::new(), None),
        };
        Err(match status {
            StatusCode::NOT_FOUND => ApiError::NotFound,
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => ApiError::Invalid {
                message: if message.is_empty() {
                    "The input was rejected.".into()
                } else {
                    message
                },
                code,
                field,
            },
            s if s.is_server_error() => ApiError::Unavailable(format!("api answered {s} {code}")),
            s => ApiError::Unexpected(format!("api answered {s} {code}: {message}")),
        })
    }
}

fn transport_error(e: reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::Unavailable("api call timed out".into())
    } else if e.is_connect() {
        ApiError::Unavailable("cannot connect to the api".into())
    } else {
        ApiError::Unavailable(format!("api call failed: {e}"))
    }
}

async fn decode<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ApiError> {
    response.json::<T>().await.map_err(|e| {
        if e.is_timeout() {
            ApiError::Unavailable("api call timed out".into())
        } else {
            ApiError::Unexpected(format!("cannot decode the api response: {e}"))
        }
    })
}

/// Cursors are opaque: accept a string or a number and keep it as text.
fn cursor_to_string<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(
        match Option::<serde_json::Value>::deserialize(deserializer)? {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
        },
    )
}
