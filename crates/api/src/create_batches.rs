//! Creates that arrive together are inserted and committed together: one statement, one commit
//! (one WAL flush), one round trip per batch instead of per message ([`crate::batches`]: no
//! create waits for a batch to fill). Each create is answered only once its batch has
//! committed, so an acknowledged create is durable as before. A batch the database refuses for
//! its data is retried message by message, so one bad message fails only its own request.
//! Rows are inserted in key order: two batches holding the same keys wait for each other in
//! the same order, never in a cycle (a deadlock). Why: benchmarks/README.md.

use std::sync::Arc;

use sqlx::PgPool;

use crate::batches::{Batches, Queued, Unanswered};
use crate::routes::messages::Message;

/// Most messages in one statement.
pub const MAX_BATCH: usize = 64;
/// Batches written at once (each holds one pooled connection while it does).
pub const CONCURRENT_BATCHES: usize = 4;

/// The answer to one create: the message inserted, `None` when its idempotency key exists
/// already (as `ON CONFLICT DO NOTHING` answers), or the batch's error.
pub type Inserted = Result<Option<Message>, Arc<sqlx::Error>>;

/// A message to insert: its content and idempotency key.
pub struct NewMessage {
    pub content: String,
    pub key: Option<String>,
}

/// Creates waiting to be inserted.
pub type CreateBatches = Batches<NewMessage, Inserted>;

/// The batched inserts into `db`.
pub fn create_batches(db: PgPool) -> CreateBatches {
    Batches::new(
        CONCURRENT_BATCHES,
        MAX_BATCH,
        Arc::new(move |batch| Box::pin(write_batch(db.clone(), batch))),
    )
}

/// Insert one message (with its idempotency key), in the next batch written.
pub async fn insert(batches: &Arc<CreateBatches>, content: &str, key: Option<&str>) -> Inserted {
    let message = NewMessage {
        content: content.to_owned(),
        key: key.map(str::to_owned),
    };
    match batches.submit(message).await {
        Ok(inserted) => inserted,
        // Both mean: not now (503), and nothing was inserted for this request.
        Err(Unanswered::QueueFull) => Err(Arc::new(sqlx::Error::PoolTimedOut)),
        Err(Unanswered::WriterFailed) => Err(Arc::new(sqlx::Error::WorkerCrashed)),
    }
}

type Queued_ = Queued<NewMessage, Inserted>;

/// Insert `batch` in one statement and answer each create.
async fn write_batch(db: PgPool, batch: Vec<Queued_>) {
    let contents: Vec<String> = batch.iter().map(|q| q.job.content.clone()).collect();
    let keys: Vec<Option<String>> = batch.iter().map(|q| q.job.key.clone()).collect();
    let inserted = sqlx::query_as!(
        InsertedRow,
        r#"INSERT INTO messages (content, idempotency_key)
           SELECT content, key
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS input(content, key, position)
           ORDER BY key NULLS LAST, position
           ON CONFLICT (idempotency_key) DO NOTHING
           RETURNING id, content, created_at, updated_at, idempotency_key"#,
        &contents,
        &keys as &[Option<String>],
    )
    .fetch_all(&db)
    .await;
    match inserted {
        Ok(rows) => answer_each(batch, rows),
        Err(sqlx::Error::Database(error)) if batch.len() > 1 && refuses_data(&*error) => {
            for queued in batch.into_iter().filter(|queued| !queued.abandoned()) {
                Box::pin(write_batch(db.clone(), vec![queued])).await;
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for queued in batch {
                let _ = queued.answer.send(Err(error.clone()));
            }
        }
    }
}

/// An error about the rows themselves (SQLSTATE classes 22 data exception, 23 integrity
/// constraint violation, 40 transaction rollback): another batch may well succeed. Any other
/// (a login refused, a connection lost, the server shutting down) would fail each message
/// again, one connection attempt at a time.
fn refuses_data(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.code().is_some_and(|code| {
        ["22", "23", "40"]
            .iter()
            .any(|class| code.starts_with(class))
    })
}

struct InsertedRow {
    id: i64,
    content: String,
    created_at: time::OffsetDateTime,
    updated_at: time::OffsetDateTime,
    idempotency_key: Option<String>,
}

impl InsertedRow {
    fn into_message(self) -> Message {
        Message {
            id: self.id,
            content: self.content,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Match the rows inserted to the creates: by key where there is one; otherwise by content, in
/// id order (rows of equal content differ only by id, so either assignment is right). A keyed
/// create with no row found its key taken (earlier, or by a create in the same batch).
fn answer_each(batch: Vec<Queued_>, rows: Vec<InsertedRow>) {
    let (keyed, mut unkeyed): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|row| row.idempotency_key.is_some());
    unkeyed.sort_by_key(|row| row.id);
    let mut keyed: Vec<Option<InsertedRow>> = keyed.into_iter().map(Some).collect();
    let mut unkeyed: Vec<Option<InsertedRow>> = unkeyed.into_iter().map(Some).collect();
    for queued in batch {
        let row = match &queued.job.key {
            Some(key) => take_first(&mut keyed, |row| row.idempotency_key.as_ref() == Some(key)),
            None => take_first(&mut unkeyed, |row| row.content == queued.job.content),
        };
        let answer = match (row, &queued.job.key) {
            (Some(row), _) => Ok(Some(row.into_message())),
            (None, Some(_)) => Ok(None),
            (None, None) => Err(Arc::new(sqlx::Error::Decode(
                "a message of the batch was not returned by the insert".into(),
            ))),
        };
        let _ = queued.answer.send(answer);
    }
}

fn take_first(
    rows: &mut [Option<InsertedRow>],
    wanted: impl Fn(&InsertedRow) -> bool,
) -> Option<InsertedRow> {
    rows.iter_mut()
        .find(|row| row.as_ref().is_some_and(&wanted))
        .and_then(Option::take)
}
