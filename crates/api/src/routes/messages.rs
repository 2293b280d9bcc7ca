//! The messages resource.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::create_batches;
use crate::error::ErrorBody;
use crate::extract::{self, MessageId, Query};
use crate::{AppState, Error};

/// Longest content, in characters (after trimming).
pub const MAX_CONTENT_CHARS: usize = 2000;
/// Default page size.
pub const DEFAULT_LIMIT: i64 = 20;
/// Largest page size.
pub const MAX_LIMIT: i64 = 100;

/// A message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Message {
    /// Identifier, increasing with creation.
    pub id: i64,
    /// Text, trimmed, 1..=2000 characters.
    pub content: String,
    /// Creation time (RFC 3339).
    #[serde(
        serialize_with = "rfc3339_on_stack",
        deserialize_with = "time::serde::rfc3339::deserialize"
    )]
    pub created_at: OffsetDateTime,
    /// Time of the last change (RFC 3339).
    #[serde(
        serialize_with = "rfc3339_on_stack",
        deserialize_with = "time::serde::rfc3339::deserialize"
    )]
    pub updated_at: OffsetDateTime,
}

/// RFC 3339, as `time::serde::rfc3339` writes it, formatted in a stack buffer: that
/// serializer allocates a `String` per timestamp, 200 per page of the list (see
/// benchmarks/README.md).
fn rfc3339_on_stack<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error as _;
    // The longest RFC 3339 form `time` writes: `+YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+HH:MM` < 40.
    let mut buffer = [0u8; 40];
    let mut rest = &mut buffer[..];
    t.format_into(&mut rest, &time::format_description::well_known::Rfc3339)
        .map_err(S::Error::custom)?;
    let written = 40 - rest.len();
    s.serialize_str(std::str::from_utf8(&buffer[..written]).map_err(S::Error::custom)?)
}

/// One page of messages, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessagePage {
    /// The messages of this page.
    pub messages: Vec<Message>,
    /// Pass as `cursor` to get the next (older) page; `null` on the last page.
    pub next_cursor: Option<i64>,
    /// Pass as `after` to get the previous (newer) page; `null` on the first page.
    pub prev_cursor: Option<i64>,
}

/// Body of create and update.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MessageInput {
    /// Text, 1..=2000 characters; surrounding whitespace is trimmed, so it must contain a
    /// character that is not whitespace; NUL (U+0000) is refused (PostgreSQL `text` cannot
    /// store it). The pattern says the same (`\s` of ECMA-262 and of Python covers every
    /// Unicode `White_Space` character `str::trim` removes).
    #[schema(
        example = "Hello, world",
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub content: String,
}

/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The `Idempotency-Key` header of a create: absent, or 1..=255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|key| {
            (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&key.len())
                && key.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(Some)
        .ok_or(Error::InvalidHeader {
            field: "Idempotency-Key",
            message: format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            ),
        })
}

/// Pagination parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page: only messages with a smaller id are returned.
    pub cursor: Option<i64>,
    /// `prev_cursor` of a page: the page of messages just newer than it (greater ids).
    /// Ignored when `cursor` is given.
    pub after: Option<i64>,
}

impl MessageInput {
    /// The trimmed content, or a validation error naming `content`.
    fn validated(&self) -> Result<&str, Error> {
        let content = self.content.trim();
        if content.is_empty() {
            return Err(Error::Validation {
                field: "content",
                message: "content must not be empty".to_owned(),
            });
        }
        // PostgreSQL `text` cannot store NUL; without this check the insert fails with a 500.
        if content.contains('\0') {
            return Err(Error::Validation {
                field: "content",
                message: "content must not contain NUL characters".to_owned(),
            });
        }
        if content.chars().count() > MAX_CONTENT_CHARS {
            return Err(Error::Validation {
                field: "content",
                message: format!("content must be at most {MAX_CONTENT_CHARS} characters"),
            });
        }
        Ok(content)
    }
}

/// List live messages, newest first, keyset-paginated by id.
#[utoipa::path(get, path = "/api/messages", tag = "messages", params(ListParams),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 400, description = "Invalid `limit`, `cursor` or `after`", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Response, Error> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::InvalidQuery {
            field: "limit",
            message: format!("limit must be between 1 and {MAX_LIMIT}"),
        });
    }
    if let (Some(after), None) = (params.after, params.cursor) {
        let page = newer_page(&state, after, limit).await?;
        return Ok(json_response(
            page_body(&page).map_err(|e| Error::from(&e))?,
        ));
    }
    let Some(cursor) = params.cursor else {
        let page = state.first_page_reads.submit(limit).await;
        let body = page?.map_err(|e| Error::from(&*e))?;
        return Ok(json_response(body));
    };
    // In a task of its own, outside the request's tracing span: sqlx wraps each of its
    // (nested) row streams in the caller's span, so under the request span every row costs
    // several subscriber calls, a sixth of the api's CPU on this route (benchmarks/README.md).
    // Its errors come back here and are logged with the request id.
    let db = state.db.clone();
    let rows = tokio::spawn(async move {
        // On an acquired connection rather than the pool: one row stream fewer per row.
        let mut conn = db.acquire().await?;
        older_rows(&mut conn, Some(cursor), limit, None).await
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "the list query task failed");
        Error::Internal
    })??;
    let page = older_page(rows.messages, limit, Some(cursor));
    Ok(json_response(
        page_body(&page).map_err(|e| Error::from(&e))?,
    ))
}

/// What the list statement returned.
pub struct OlderRows {
    /// The snapshot the statement ran in (`pg_current_snapshot()::text`).
    pub snapshot: String,
    /// Up to `limit + 1` messages below `cursor`, newest first; none when the snapshot was the
    /// one given.
    pub messages: Vec<Message>,
}

/// The messages below `cursor` (all when `None`), one more than `limit` to tell whether a next
/// page exists, unless the database's snapshot is still `unless_snapshot` (then none: see
/// [`crate::first_pages`]).
pub async fn older_rows(
    conn: &mut PgConnection,
    cursor: Option<i64>,
    limit: i64,
    unless_snapshot: Option<&str>,
) -> Result<OlderRows, sqlx::Error> {
    // The snapshot is the statement's own, the one the rows are read in. It comes in a row of
    // its own: as a column of every row it cost the database ~10 % more on this statement
    // (benchmarks/README.md). On a standby it says nothing (see `first_pages::IN_RECOVERY`):
    // no page read there is kept, so `$3` is NULL and the rows are read every time. The filter
    // holds only stable functions: a volatile one (`pg_is_in_recovery()`) would stop it being a
    // one-time filter and run per row.
    let rows = sqlx::query!(
        r#"SELECT CASE WHEN pg_is_in_recovery() THEN 'in recovery'
                       ELSE pg_current_snapshot()::text END AS snapshot,
                  NULL::bigint AS id, NULL::text AS content,
                  NULL::timestamptz AS created_at, NULL::timestamptz AS updated_at
           UNION ALL
           (SELECT NULL, id, content, created_at, updated_at
            FROM messages
            WHERE pg_current_snapshot()::text IS DISTINCT FROM $3
              AND deleted_at IS NULL AND ($1::bigint IS NULL OR id < $1)
            ORDER BY id DESC
            LIMIT $2)"#,
        cursor,
        limit + 1,
        unless_snapshot,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut snapshot = String::new();
    let mut messages = Vec::with_capacity(rows.len());
    for row in rows {
        match (
            row.snapshot,
            row.id,
            row.content,
            row.created_at,
            row.updated_at,
        ) {
            (Some(read_in), ..) => snapshot = read_in,
            (None, Some(id), Some(content), Some(created_at), Some(updated_at)) => {
                messages.push(Message {
                    id,
                    content,
                    created_at,
                    updated_at,
                })
            }
            _ => {
                return Err(sqlx::Error::Decode(
                    "the list statement returned a row that is neither kind".into(),
                ));
            }
        }
    }
    // UNION ALL promises no order across its parts: newest first, whatever came.
    messages.sort_unstable_by_key(|message| std::cmp::Reverse(message.id));
    Ok(OlderRows { snapshot, messages })
}

/// The page of `limit` messages below `cursor`, from [`older_rows`]'s `messages`.
pub fn older_page(mut messages: Vec<Message>, limit: i64, cursor: Option<i64>) -> MessagePage {
    let next_cursor = if messages.len() as i64 > limit {
        messages.truncate(limit as usize);
        messages.last().map(|m| m.id)
    } else {
        None
    };
    let prev_cursor = cursor.and_then(|_| messages.first().map(|m| m.id));
    MessagePage {
        messages,
        next_cursor,
        prev_cursor,
    }
}

fn json_response(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The page as JSON, serialized into a buffer sized for it up front: axum's `Json` starts at
/// 128 bytes and grows by copying, eight times for a full page. A failure is an encoding error
/// of the database's data (the api answers 500).
pub fn page_body(page: &MessagePage) -> Result<Bytes, sqlx::Error> {
    // Per message: the content plus ~130 bytes of keys, id and two timestamps.
    let estimate = 64
        + page
            .messages
            .iter()
            .map(|m| m.content.len() + 160)
            .sum::<usize>();
    let mut body = Vec::with_capacity(estimate);
    serde_json::to_writer(&mut body, page).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    Ok(Bytes::from(body))
}

/// The page just newer than `after`: the `limit` oldest messages with a greater id, shown
/// newest first like every page.
async fn newer_page(state: &AppState, after: i64, limit: i64) -> Result<MessagePage, Error> {
    // One extra row tells whether there is a newer page still.
    let mut messages = sqlx::query_as!(
        Message,
        r#"SELECT id, content, created_at, updated_at
           FROM messages
           WHERE deleted_at IS NULL AND id > $1
           ORDER BY id ASC
           LIMIT $2"#,
        after,
        limit + 1,
    )
    .fetch_all(&state.db)
    .await?;
    let more_newer = messages.len() as i64 > limit;
    messages.truncate(limit as usize);
    messages.reverse();
    Ok(MessagePage {
        prev_cursor: more_newer.then(|| messages.first().map(|m| m.id)).flatten(),
        // `after` itself is older than this page: the older page starts right below it.
        next_cursor: messages.last().map(|m| m.id),
        messages,
    })
}

/// Create a message.
///
/// With an `Idempotency-Key` header, the key is stored with the message: a request repeating
/// a key creates nothing and answers with the message the first request created (as it is
/// now), so a client may retry a create whose answer it did not get.
#[utoipa::path(post, path = "/api/messages", tag = "messages", request_body = MessageInput,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
        pattern = "^[!-~]+$",
        description = "Client-chosen key (1..=255 visible ASCII characters) making retries safe")),
    responses(
        (status = 201, description = "Created (or created earlier with the same `Idempotency-Key`)", body = Message,
            headers(("Location" = String, description = "URL of the new message"))),
        (status = 400, description = "Malformed JSON or `Idempotency-Key`", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not `application/json`", body = ErrorBody),
        (status = 422, description = "Missing or invalid `content`", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    extract::Json(input): extract::Json<MessageInput>,
) -> Result<impl IntoResponse, Error> {
    let key = idempotency_key(&headers)?;
    let content = input.validated()?;
    // On a repeated key, the insert waits for the first one to commit, then inserts nothing.
    let inserted = create_batches::insert(&state.create_batches, content, key)
        .await
        .map_err(|e| Error::from(&*e))?;
    let message = match (inserted, key) {
        (Some(message), _) => message,
        (None, Some(key)) => {
            sqlx::query_as!(
                Message,
                r#"SELECT id, content, created_at, updated_at
               FROM messages
               WHERE idempotency_key = $1"#,
                key,
            )
            .fetch_one(&state.db)
            .await?
        }
        (None, None) => return Err(Error::Internal),
    };
    let location = format!("/api/messages/{}", message.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(message),
    ))
}

/// Get one message.
#[utoipa::path(get, path = "/api/messages/{id}", tag = "messages",
    params(("id" = i64, Path, description = "Message id")),
    responses(
        (status = 200, description = "The message", body = Message),
        (status = 400, description = "Non-integer id", body = ErrorBody),
        (status = 404, description = "No such message (or deleted)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    MessageId(id): MessageId,
) -> Result<Json<Message>, Error> {
    sqlx::query_as!(
        Message,
        r#"SELECT id, content, created_at, updated_at
           FROM messages
           WHERE id = $1 AND deleted_at IS NULL"#,
        id,
    )
    .fetch_optional(&state.db)
    .await?
    .map(Json)
    .ok_or(Error::NotFound)
}

/// Replace the content of a message.
#[utoipa::path(patch, path = "/api/messages/{id}", tag = "messages",
    params(("id" = i64, Path, description = "Message id")),
    request_body = MessageInput,
    responses(
        (status = 200, description = "The updated message", body = Message),
        (status = 400, description = "Non-integer id or malformed JSON", body = ErrorBody),
        (status = 404, description = "No such message (or deleted)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not `application/json`", body = ErrorBody),
        (status = 422, description = "Missing or invalid `content`", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    MessageId(id): MessageId,
    extract::Json(input): extract::Json<MessageInput>,
) -> Result<Json<Message>, Error> {
    let content = input.validated()?;
    sqlx::query_as!(
        Message,
        r#"UPDATE messages
           SET content = $1, updated_at = now()
           WHERE id = $2 AND deleted_at IS NULL
           RETURNING id, content, created_at, updated_at"#,
        content,
        id,
    )
    .fetch_optional(&state.db)
    .await?
    .map(Json)
    .ok_or(Error::NotFound)
}

/// Soft-delete a message.
#[utoipa::path(delete, path = "/api/messages/{id}", tag = "messages",
    params(("id" = i64, Path, description = "Message id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Non-integer id", body = ErrorBody),
        (status = 404, description = "No such message (or already deleted)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    MessageId(id): MessageId,
) -> Result<StatusCode, Error> {
    let result = sqlx::query!(
        "UPDATE messages SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL",
        id,
    )
    .execute(&state.db)
    .await?;
    if result.rows_affected() == 0 {
        Err(Error::NotFound)
    } else {
        Ok(StatusCode::NO_CONTENT)
    }
}
