//! Requests that arrive together, answered by one database statement.
//!
//! No request waits for a batch to fill. A request queues its job and, when fewer than
//! `concurrent` batches are being written, starts one with whatever is queued; while batches
//! are in flight, the requests arriving meanwhile queue up and go in the next one. Alone, a
//! request is a batch of one. Every job of a batch was queued before its statement was sent,
//! so the statement sees every write acknowledged before any of its requests arrived. Each
//! batch is written by a task of its own: a request cancelled meanwhile does not cancel the
//! others'. Why: benchmarks/README.md.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// A queued job and where its answer goes.
pub struct Queued<J, A> {
    pub job: J,
    pub answer: oneshot::Sender<A>,
}

/// Writes one batch and answers each of its jobs.
pub type WriteBatch<J, A> = Arc<dyn Fn(Vec<Queued<J, A>>) -> BoxFuture<'static, ()> + Send + Sync>;

/// The jobs queued, the permits to write a batch, and how a batch is written.
pub struct Batches<J, A> {
    queue: Mutex<Vec<Queued<J, A>>>,
    writers: Arc<Semaphore>,
    max_batch: usize,
    write: WriteBatch<J, A>,
}

impl<J: Send + 'static, A: Send + 'static> Batches<J, A> {
    /// At most `concurrent` batches in flight (each holds one pooled connection), of at most
    /// `max_batch` jobs.
    pub fn new(concurrent: usize, max_batch: usize, write: WriteBatch<J, A>) -> Self {
        Self {
            queue: Mutex::default(),
            writers: Arc::new(Semaphore::new(concurrent)),
            max_batch,
            write,
        }
    }

    /// Queue `job` and wait for its answer; `None` if the batch's task ended without one
    /// (it panicked).
    pub async fn submit(self: &Arc<Self>, job: J) -> Option<A> {
        let (answer, answered) = oneshot::channel();
        self.lock().push(Queued { job, answer });
        if let Ok(permit) = self.writers.clone().try_acquire_owned() {
            tokio::spawn(self.clone().write_queued(permit));
        }
        answered.await.ok()
    }

    /// Write batches until the queue is empty.
    async fn write_queued(self: Arc<Self>, permit: OwnedSemaphorePermit) {
        let mut permit = Some(permit);
        while permit.is_some() {
            let batch = self.take_batch();
            if batch.is_empty() {
                // A job queued after the take above found no free permit (this one was held):
                // free it, then look again, or that job would wait forever.
                drop(permit.take());
                if !self.lock().is_empty() {
                    permit = self.writers.clone().try_acquire_owned().ok();
                }
                continue;
            }
            (self.write)(batch).await;
        }
    }

    fn take_batch(&self) -> Vec<Queued<J, A>> {
        let mut queue = self.lock();
        let taken = queue.len().min(self.max_batch);
        let rest = queue.split_off(taken);
        std::mem::replace(&mut *queue, rest)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Queued<J, A>>> {
        // Pushes and takes leave the queue whole even if a panic interrupts them.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Jobs are numbers; a batch answers each with the batch's size, after a pause that lets
    /// the next jobs queue up.
    fn sized_batches(
        concurrent: usize,
        max_batch: usize,
        in_flight: Arc<AtomicUsize>,
    ) -> Arc<Batches<u32, usize>> {
        Arc::new(Batches::new(
            concurrent,
            max_batch,
            Arc::new(move |batch: Vec<Queued<u32, usize>>| {
                let in_flight = in_flight.clone();
                Box::pin(async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= concurrent, "{now} batches at once");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    let size = batch.len();
                    for queued in batch {
                        let _ = queued.answer.send(size);
                    }
                })
            }),
        ))
    }

    #[tokio::test]
    async fn every_job_is_answered_in_batches_within_the_limits() {
        let batches = sized_batches(2, 8, Arc::default());
        let sizes = futures::future::join_all((0..200).map(|i| {
            let batches = batches.clone();
            tokio::spawn(async move { batches.submit(i).await })
        }))
        .await;
        let sizes: Vec<usize> = sizes.into_iter().map(|s| s.unwrap().unwrap()).collect();
        assert_eq!(sizes.len(), 200);
        assert!(sizes.iter().all(|&s| (1..=8).contains(&s)), "{sizes:?}");
        assert!(
            sizes.iter().any(|&s| s > 1),
            "jobs arriving together share a batch"
        );
    }

    #[tokio::test]
    async fn a_job_alone_is_a_batch_of_one() {
        let batches = sized_batches(1, 8, Arc::default());
        for i in 0..3 {
            assert_eq!(batches.submit(i).await, Some(1));
        }
    }
}
