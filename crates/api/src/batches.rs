//! Requests that arrive together, answered by one database statement.
//!
//! No request waits for a batch to fill. A request queues its job and, when fewer than
//! `concurrent` batches are being written, starts one with whatever is queued; while batches
//! are in flight, the requests arriving meanwhile queue up and go in the next one. Alone, a
//! request is a batch of one. Every job of a batch was queued before its statement was sent,
//! so the statement sees every write acknowledged before any of its requests arrived. Each
//! batch is written by a task of its own: a request cancelled meanwhile does not cancel the
//! others'. Why: benchmarks/README.md.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// A queued job and where its answer goes.
pub struct Queued<J, A> {
    pub job: J,
    pub answer: oneshot::Sender<A>,
}

impl<J, A> Queued<J, A> {
    /// The request is gone (cancelled, timed out): its job must not run.
    pub fn abandoned(&self) -> bool {
        self.answer.is_closed()
    }
}

/// Why a job got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// So many jobs wait already that this one would only time out behind them.
    QueueFull,
    /// The task writing its batch failed (panicked).
    WriterFailed,
}

/// Writes one batch and answers each of its jobs.
pub type WriteBatch<J, A> = Arc<dyn Fn(Vec<Queued<J, A>>) -> BoxFuture<'static, ()> + Send + Sync>;

/// The jobs queued, the permits to write a batch, and how a batch is written.
pub struct Batches<J, A> {
    queue: Mutex<Vec<Queued<J, A>>>,
    writers: Arc<Semaphore>,
    max_batch: usize,
    max_queued: usize,
    write: WriteBatch<J, A>,
}

impl<J: Send + 'static, A: Send + 'static> Batches<J, A> {
    /// At most `concurrent` batches in flight (each holds one pooled connection), of at most
    /// `max_batch` jobs; at most `max_batch` × [`QUEUED_BATCHES`] jobs waiting.
    pub fn new(concurrent: usize, max_batch: usize, write: WriteBatch<J, A>) -> Self {
        Self {
            queue: Mutex::default(),
            writers: Arc::new(Semaphore::new(concurrent)),
            max_batch,
            max_queued: max_batch * QUEUED_BATCHES,
            write,
        }
    }

    /// Queue `job` and wait for its answer. Dropping the returned future before the answer
    /// withdraws the job unless its batch has been taken already.
    pub async fn submit(self: &Arc<Self>, job: J) -> Result<A, Unanswered> {
        let (answer, answered) = oneshot::channel();
        {
            let mut queue = self.lock();
            if queue.len() >= self.max_queued {
                return Err(Unanswered::QueueFull);
            }
            queue.push(Queued { job, answer });
        }
        if let Ok(permit) = self.writers.clone().try_acquire_owned() {
            tokio::spawn(self.clone().write_queued(permit));
        }
        answered.await.map_err(|_| Unanswered::WriterFailed)
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
            // A panic fails only its own batch (their answers are dropped); the loop goes on
            // with the jobs queued meanwhile, which no other writer may be looking at.
            if AssertUnwindSafe((self.write)(batch))
                .catch_unwind()
                .await
                .is_err()
            {
                tracing::error!("writing a batch panicked; its requests fail");
            }
        }
    }

    /// The oldest jobs still wanted, up to `max_batch`.
    fn take_batch(&self) -> Vec<Queued<J, A>> {
        let mut queue = self.lock();
        queue.retain(|queued| !queued.abandoned());
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

/// Full batches' worth of jobs that may wait.
pub const QUEUED_BATCHES: usize = 16;

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
        // 200 jobs fit in the queue: 16 × 16.
        let batches = sized_batches(2, 16, Arc::default());
        let sizes = futures::future::join_all((0..200).map(|i| {
            let batches = batches.clone();
            tokio::spawn(async move { batches.submit(i).await })
        }))
        .await;
        let sizes: Vec<usize> = sizes.into_iter().map(|s| s.unwrap().unwrap()).collect();
        assert_eq!(sizes.len(), 200);
        assert!(sizes.iter().all(|&s| (1..=16).contains(&s)), "{sizes:?}");
        assert!(
            sizes.iter().any(|&s| s > 1),
            "jobs arriving together share a batch"
        );
    }

    #[tokio::test]
    async fn a_job_alone_is_a_batch_of_one() {
        let batches = sized_batches(1, 8, Arc::default());
        for i in 0..3 {
            assert_eq!(batches.submit(i).await, Ok(1));
        }
    }

    /// Jobs are numbers; a batch records them, waits `pause`, and panics if it holds 0.
    fn recording_batches(
        concurrent: usize,
        max_batch: usize,
        pause: Duration,
        written: Arc<Mutex<Vec<u32>>>,
    ) -> Arc<Batches<u32, u32>> {
        Arc::new(Batches::new(
            concurrent,
            max_batch,
            Arc::new(move |batch: Vec<Queued<u32, u32>>| {
                let written = written.clone();
                Box::pin(async move {
                    written.lock().unwrap().extend(batch.iter().map(|q| q.job));
                    tokio::time::sleep(pause).await;
                    assert!(batch.iter().all(|q| q.job != 0), "job 0 panics its batch");
                    for queued in batch {
                        let _ = queued.answer.send(queued.job);
                    }
                })
            }),
        ))
    }

    #[tokio::test]
    async fn a_job_whose_request_is_gone_is_not_written() {
        let written = Arc::default();
        let batches = recording_batches(1, 8, Duration::from_millis(50), Arc::clone(&written));
        let first = tokio::spawn({
            let batches = batches.clone();
            async move { batches.submit(1).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Queued behind the first batch, then given up (as the request timeout does).
        let gone = tokio::time::timeout(Duration::from_millis(5), batches.submit(2)).await;
        assert!(gone.is_err());
        assert_eq!(batches.submit(3).await, Ok(3));
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(*written.lock().unwrap(), [1, 3]);
    }

    #[tokio::test]
    async fn a_panicking_batch_fails_its_own_jobs_only() {
        let written = Arc::default();
        let batches = recording_batches(1, 1, Duration::from_millis(20), written);
        let jobs = (0..4).map(|i| {
            let batches = batches.clone();
            tokio::spawn(async move { batches.submit(i).await })
        });
        let answers =
            tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(jobs))
                .await
                .expect("no job is stranded");
        let answers: Vec<_> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            answers,
            [Err(Unanswered::WriterFailed), Ok(1), Ok(2), Ok(3)]
        );
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let written = Arc::default();
        let batches = recording_batches(1, 1, Duration::from_millis(500), written);
        let submit = |i: u32| {
            let batches = batches.clone();
            tokio::spawn(async move { batches.submit(i).await })
        };
        let mut waiting = vec![submit(1)];
        // The one writer has taken job 1 and is busy with it; the queue fills behind it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiting.extend((2..=(1 + QUEUED_BATCHES as u32)).map(submit));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(batches.submit(99).await, Err(Unanswered::QueueFull));
        for job in waiting {
            job.abort();
        }
    }
}
