//! Creates that arrive together are inserted and committed together: one statement, one commit
//! (one WAL flush), one round trip per batch instead of per message.
//!
//! No create waits for a batch to fill. A create queues its message and, when fewer than
//! [`CONCURRENT_BATCHES`] batches are being written, starts one with whatever is queued; while
//! batches are in flight, the creates arriving meanwhile queue up and go in the next one. Alone,
//! a create is a batch of one. Each create is answered only once its batch has committed, so an
//! acknowledged create is durable as before. A batch the database refuses as a whole (a
//! statement error) is retried message by message, so one bad message fails only its own
//! request. Why: benchmarks/README.md ("Creates").

use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::routes::messages::Message;

/// Most messages in one statement.
pub const MAX_BATCH: usize = 64;
/// Batches written at once (each holds one pooled connection while it does).
pub const CONCURRENT_BATCHES: usize = 4;

/// The answer to one create: the message inserted, `None` when its idempotency key exists
/// already (as `ON CONFLICT DO NOTHING` answers), or the batch's error.
type Inserted = Result<Option<Message>, Arc<sqlx::Error>>;

struct Queued {
    content: String,
    key: Option<String>,
    answer: oneshot::Sender<Inserted>,
}

/// The creates queued, and the permits to write a batch.
pub struct CreateBatches {
    queue: Mutex<Vec<Queued>>,
    writers: Arc<Semaphore>,
}

impl Default for CreateBatches {
    fn default() -> Self {
        Self {
            queue: Mutex::default(),
            writers: Arc::new(Semaphore::new(CONCURRENT_BATCHES)),
        }
    }
}

impl CreateBatches {
    /// Insert one message (with its idempotency key), in the next batch written.
    pub async fn insert(
        self: &Arc<Self>,
        db: &PgPool,
        content: &str,
        key: Option<&str>,
    ) -> Inserted {
        let (answer, answered) = oneshot::channel();
        self.lock().push(Queued {
            content: content.to_owned(),
            key: key.map(str::to_owned),
            answer,
        });
        if let Ok(permit) = self.writers.clone().try_acquire_owned() {
            // A task of its own: a request cancelled meanwhile must not cancel the others'.
            tokio::spawn(self.clone().write_queued(db.clone(), permit));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(Arc::new(sqlx::Error::WorkerCrashed)))
    }

    /// Write batches until the queue is empty.
    async fn write_queued(self: Arc<Self>, db: PgPool, permit: OwnedSemaphorePermit) {
        let mut permit = Some(permit);
        while permit.is_some() {
            let batch = self.take_batch();
            if batch.is_empty() {
                // A create queued after the take above found no free permit (this one was
                // held): free it, then look again, or that create would wait forever.
                drop(permit.take());
                if !self.lock().is_empty() {
                    permit = self.writers.clone().try_acquire_owned().ok();
                }
                continue;
            }
            write_batch(&db, batch).await;
        }
    }

    fn take_batch(&self) -> Vec<Queued> {
        let mut queue = self.lock();
        let taken = queue.len().min(MAX_BATCH);
        let rest = queue.split_off(taken);
        std::mem::replace(&mut *queue, rest)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        // Pushes and takes leave the queue whole even if a panic interrupts them.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Insert `batch` in one statement and answer each create.
async fn write_batch(db: &PgPool, batch: Vec<Queued>) {
    let contents: Vec<String> = batch.iter().map(|q| q.content.clone()).collect();
    let keys: Vec<Option<String>> = batch.iter().map(|q| q.key.clone()).collect();
    let inserted = sqlx::query_as!(
        InsertedRow,
        r#"INSERT INTO messages (content, idempotency_key)
           SELECT content, key
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS input(content, key, position)
           ORDER BY position
           ON CONFLICT (idempotency_key) DO NOTHING
           RETURNING id, content, created_at, updated_at, idempotency_key"#,
        &contents,
        &keys as &[Option<String>],
    )
    .fetch_all(db)
    .await;
    match inserted {
        Ok(rows) => answer_each(batch, rows),
        Err(sqlx::Error::Database(_)) if batch.len() > 1 => {
            for queued in batch {
                Box::pin(write_batch(db, vec![queued])).await;
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
fn answer_each(batch: Vec<Queued>, rows: Vec<InsertedRow>) {
    let (keyed, mut unkeyed): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|row| row.idempotency_key.is_some());
    unkeyed.sort_by_key(|row| row.id);
    let mut keyed: Vec<Option<InsertedRow>> = keyed.into_iter().map(Some).collect();
    let mut unkeyed: Vec<Option<InsertedRow>> = unkeyed.into_iter().map(Some).collect();
    for queued in batch {
        let row = match &queued.key {
            Some(key) => take_first(&mut keyed, |row| row.idempotency_key.as_ref() == Some(key)),
            None => take_first(&mut unkeyed, |row| row.content == queued.content),
        };
        let answer = match (row, &queued.key) {
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
