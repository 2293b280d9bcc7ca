//! The first page of the list, kept as served and revalidated by the database on every request.
//!
//! Every `GET /api/messages` without a cursor still asks PostgreSQL, in the same single
//! statement as the list query, for its current snapshot (`pg_current_snapshot()`: the
//! oldest transaction still running, the next transaction id, and the ones running in between).
//! When that snapshot is the one a kept page was read in, no transaction has committed or
//! aborted since (either takes its id out of the running set or moves the snapshot's xmax), so
//! the rows the statement would return are the ones the page holds: the statement returns no
//! rows and the kept bytes are sent. Otherwise it returns the rows, read in that very snapshot.
//!
//! So a kept page is never served after any write anywhere in the cluster has been
//! acknowledged, by this instance or any other, nor after a migration or a hand-made change:
//! no invalidation messages, no time to live. What it saves is reading, decoding and
//! serializing the rows while nothing changes; under writes it costs nothing but the
//! comparison. First-page requests that arrive together share one statement
//! ([`crate::batches`]): sent after all of them arrived, it answers each as well as its own.
//! Why: benchmarks/README.md.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::batches::{Batches, Queued};
use crate::routes::messages::{older_page, older_rows, page_body};

/// Statements reading first pages at once (each holds one pooled connection).
pub const CONCURRENT_READS: usize = 2;
/// Most requests one statement answers.
pub const MAX_REQUESTS_PER_READ: usize = 256;

/// Counter of first pages served, by `result`: `kept` (the database's snapshot was the kept
/// page's) or `read` (the rows were read).
pub const FIRST_PAGE_READS: &str = "api_first_page_reads_total";

/// A first page's JSON, or the error of the statement that read it.
pub type FirstPage = Result<Bytes, Arc<sqlx::Error>>;

/// First-page requests (their page size) waiting for a statement.
pub type FirstPageReads = Batches<i64, FirstPage>;

/// The reads of first pages from `db`, keeping them in `pages`.
pub fn first_page_reads(db: PgPool, pages: Arc<FirstPages>) -> FirstPageReads {
    Batches::new(
        CONCURRENT_READS,
        MAX_REQUESTS_PER_READ,
        Arc::new(move |batch| Box::pin(read_first_pages(db.clone(), pages.clone(), batch))),
    )
}

/// Answer every request of `batch`, one statement per page size asked for.
async fn read_first_pages(db: PgPool, pages: Arc<FirstPages>, batch: Vec<Queued<i64, FirstPage>>) {
    let mut by_limit: BTreeMap<i64, Vec<oneshot::Sender<FirstPage>>> = BTreeMap::new();
    for queued in batch {
        by_limit.entry(queued.job).or_default().push(queued.answer);
    }
    let mut conn = match db.acquire().await {
        Ok(conn) => conn,
        Err(error) => {
            let error = Arc::new(error);
            for answer in by_limit.into_values().flatten() {
                let _ = answer.send(Err(error.clone()));
            }
            return;
        }
    };
    for (limit, answers) in by_limit {
        let page = first_page(&mut conn, &pages, limit).await;
        if let Ok((_, result)) = &page {
            metrics::counter!(FIRST_PAGE_READS, "result" => *result)
                .increment(answers.len() as u64);
        }
        let page = page.map(|(body, _)| body).map_err(Arc::new);
        for answer in answers {
            let _ = answer.send(page.clone());
        }
    }
}

/// The first page of `limit` messages as JSON: the kept one when the database's snapshot is
/// still its own, otherwise read (and kept). Also says which (`kept` or `read`).
async fn first_page(
    conn: &mut sqlx::PgConnection,
    pages: &FirstPages,
    limit: i64,
) -> Result<(Bytes, &'static str), sqlx::Error> {
    let generation = pages.generation();
    let kept = pages.get(limit);
    let read = older_rows(
        conn,
        None,
        limit,
        kept.as_ref().map(|page| page.snapshot.as_str()),
    )
    .await?;
    if let Some(kept) = kept.filter(|page| page.snapshot == read.snapshot) {
        return Ok((kept.body, "kept"));
    }
    let body = page_body(&older_page(read.messages, limit, None))?;
    pages.store(
        KeptPage {
            limit,
            snapshot: read.snapshot,
            body: body.clone(),
        },
        generation,
    );
    Ok((body, "read"))
}

/// Page sizes kept at once (the web asks for one, API clients for a few); a page holds at most
/// 100 messages of at most 2,000 characters (~1.2 MB of JSON when every character is a control
/// character, escaped to 6 bytes), so the pages kept stay within ~5 MB at worst.
pub const KEPT_PAGE_SIZES: usize = 4;

/// A first page as sent, and the snapshot it was read in.
#[derive(Clone)]
pub struct KeptPage {
    pub limit: i64,
    /// `pg_current_snapshot()::text` of the statement that read the rows.
    pub snapshot: String,
    pub body: Bytes,
}

/// What the list statement returns as its snapshot on a standby: there `pg_current_snapshot()`
/// lists no running transactions (recovery keeps them elsewhere), so a commit need not change
/// it. A page read there is never kept.
pub const IN_RECOVERY: &str = "in recovery";

/// The first pages kept, one per page size, the most recently stored last.
#[derive(Default)]
pub struct FirstPages {
    pages: Mutex<Vec<KeptPage>>,
    /// Bumped whenever the pool opens a connection (see [`FirstPages::forget_all`]).
    generation: AtomicU64,
}

impl FirstPages {
    /// Forget every page: called for each new database connection. A snapshot names the
    /// same data only on one server that lost no acknowledged commit; after a restart that lost
    /// some (`synchronous_commit = off`), a failover or a restore, the same snapshot text may
    /// come back over other data. Those all end the pool's connections, so a page read before
    /// is never compared with a snapshot of the new server.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lock().clear();
    }

    /// The current generation, to be passed to [`FirstPages::store`] for a page read after now.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The page kept for `limit`, if any.
    pub fn get(&self, limit: i64) -> Option<KeptPage> {
        self.lock().iter().find(|page| page.limit == limit).cloned()
    }

    /// Keep `page`, replacing the one of its size, or the least recently stored one when
    /// [`KEPT_PAGE_SIZES`] sizes are kept already. Concurrent misses may store in any order:
    /// a page read in an older snapshot only fails the next comparison.
    /// Nothing is kept if [`FirstPages::forget_all`] ran since `generation` was read, or if the
    /// page was read on a standby.
    pub fn store(&self, page: KeptPage, generation: u64) {
        if page.snapshot == IN_RECOVERY {
            return;
        }
        let mut pages = self.lock();
        if self.generation() != generation {
            return;
        }
        pages.retain(|kept| kept.limit != page.limit);
        if pages.len() >= KEPT_PAGE_SIZES {
            pages.remove(0);
        }
        pages.push(page);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<KeptPage>> {
        // The lock guards no invariant a panic could break halfway: take it back.
        self.pages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(limit: i64, snapshot: &str) -> KeptPage {
        KeptPage {
            limit,
            snapshot: snapshot.to_owned(),
            body: Bytes::from(format!("{limit}@{snapshot}")),
        }
    }

    impl FirstPages {
        fn store_now(&self, page: KeptPage) {
            self.store(page, self.generation());
        }
    }

    #[test]
    fn a_page_read_before_a_new_connection_or_on_a_standby_is_not_kept() {
        let pages = FirstPages::default();
        let before = pages.generation();
        pages.store_now(page(20, "1:1:"));
        pages.forget_all();
        assert!(pages.get(20).is_none(), "forgotten");
        pages.store(page(20, "1:1:"), before);
        assert!(pages.get(20).is_none(), "read before the new connection");
        pages.store_now(page(20, IN_RECOVERY));
        assert!(pages.get(20).is_none(), "read on a standby");
        pages.store_now(page(20, "2:2:"));
        assert!(pages.get(20).is_some());
    }

    #[test]
    fn one_page_per_size_the_newest_stored() {
        let pages = FirstPages::default();
        assert!(pages.get(20).is_none());
        pages.store_now(page(20, "1:1:"));
        pages.store_now(page(20, "2:2:"));
        let kept = pages.get(20).unwrap();
        assert_eq!(kept.snapshot, "2:2:");
        assert_eq!(kept.body, Bytes::from("20@2:2:"));
        assert!(pages.get(50).is_none());
    }

    #[test]
    fn at_most_the_kept_sizes_the_oldest_stored_dropped() {
        let pages = FirstPages::default();
        for limit in 1..=KEPT_PAGE_SIZES as i64 + 1 {
            pages.store_now(page(limit, "1:1:"));
        }
        assert!(pages.get(1).is_none(), "the first stored size is dropped");
        for limit in 2..=KEPT_PAGE_SIZES as i64 + 1 {
            assert!(pages.get(limit).is_some(), "size {limit} is kept");
        }
        // Storing a size again moves it to the back.
        pages.store_now(page(2, "2:2:"));
        pages.store_now(page(100, "2:2:"));
        assert!(pages.get(2).is_some());
        assert!(pages.get(3).is_none());
    }
}
