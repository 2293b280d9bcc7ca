//! The first page of the list, kept as served and revalidated by the database on every request.
//!
//! Every `GET /api/messages` without a cursor still asks PostgreSQL, in the same single
//! statement as the list query, for its current snapshot (`pg_current_snapshot()`: the
//! oldest transaction still running, the next transaction id, and the ones running in between).
//! When that snapshot is the one a kept page was read in, no transaction has committed or
//! aborted since (a commit takes its id out of the running set, a new write takes a new id), so
//! the rows the statement would return are the ones the page holds: the statement returns no
//! rows and the kept bytes are sent. Otherwise it returns the rows, read in that very snapshot.
//!
//! So a kept page is never served after any write anywhere in the cluster has been
//! acknowledged, by this instance or any other, nor after a migration or a hand-made change:
//! no invalidation messages, no time to live. What it saves is reading, decoding and
//! serializing the rows while nothing changes; under writes it costs nothing but the
//! comparison. Why: benchmarks/README.md.

use std::sync::Mutex;

use axum::body::Bytes;

/// Page sizes kept at once (the web asks for one, API clients for a few); a page holds at most
/// 100 messages of at most 2,000 characters, so the pages kept stay within a few MiB.
pub const KEPT_PAGE_SIZES: usize = 4;

/// A first page as sent, and the snapshot it was read in.
#[derive(Clone)]
pub struct KeptPage {
    pub limit: i64,
    /// `pg_current_snapshot()::text` of the statement that read the rows.
    pub snapshot: String,
    pub body: Bytes,
}

/// The first pages kept, one per page size, the most recently stored last.
#[derive(Default)]
pub struct FirstPages {
    pages: Mutex<Vec<KeptPage>>,
}

impl FirstPages {
    /// The page kept for `limit`, if any.
    pub fn get(&self, limit: i64) -> Option<KeptPage> {
        self.lock().iter().find(|page| page.limit == limit).cloned()
    }

    /// Keep `page`, replacing the one of its size, or the least recently stored one when
    /// [`KEPT_PAGE_SIZES`] sizes are kept already. Concurrent misses may store in any order:
    /// a page read in an older snapshot only fails the next comparison.
    pub fn store(&self, page: KeptPage) {
        let mut pages = self.lock();
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

    #[test]
    fn one_page_per_size_the_newest_stored() {
        let pages = FirstPages::default();
        assert!(pages.get(20).is_none());
        pages.store(page(20, "1:1:"));
        pages.store(page(20, "2:2:"));
        let kept = pages.get(20).unwrap();
        assert_eq!(kept.snapshot, "2:2:");
        assert_eq!(kept.body, Bytes::from("20@2:2:"));
        assert!(pages.get(50).is_none());
    }

    #[test]
    fn at_most_the_kept_sizes_the_oldest_stored_dropped() {
        let pages = FirstPages::default();
        for limit in 1..=KEPT_PAGE_SIZES as i64 + 1 {
            pages.store(page(limit, "1:1:"));
        }
        assert!(pages.get(1).is_none(), "the first stored size is dropped");
        for limit in 2..=KEPT_PAGE_SIZES as i64 + 1 {
            assert!(pages.get(limit).is_some(), "size {limit} is kept");
        }
        // Storing a size again moves it to the back.
        pages.store(page(2, "2:2:"));
        pages.store(page(100, "2:2:"));
        assert!(pages.get(2).is_some());
        assert!(pages.get(3).is_none());
    }
}
