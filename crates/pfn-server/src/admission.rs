//! Admission control: how many predictions compute at once, how many may wait, and for how long.
//!
//! A prediction holds a permit of a semaphore while it runs on the blocking pool, so at most
//! [`ServerLimits::max_concurrent`] compute at once. Up to [`ServerLimits::max_queued`] more wait for
//! a permit, each for at most [`ServerLimits::queue_wait`]; a request beyond the queue, or one that
//! waited too long, is answered at once with `503 Service Unavailable` and a `Retry-After` header
//! instead of piling up memory and latency. Reading a request body is bounded by
//! [`ServerLimits::body_timeout`] (`408 Request Timeout`), so slow clients cannot hold a
//! connection's buffers forever.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The server's limits on concurrent work and on slow requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Predictions computing at once (default: the number of cores).
    pub max_concurrent: usize,
    /// Predictions waiting for a compute slot beyond those (default 256).
    pub max_queued: usize,
    /// Longest wait for a compute slot before answering 503 (default 10 s).
    pub queue_wait: Duration,
    /// Longest time to receive a request body before answering 408 (default 10 s).
    pub body_timeout: Duration,
    /// The `Retry-After` a 503 suggests, in seconds (default 1).
    pub retry_after_secs: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_queued: 256,
            queue_wait: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            retry_after_secs: 1,
        }
    }
}

/// The compute slots and the queue in front of them (shared by all handlers).
#[derive(Debug)]
pub struct Admission {
    limits: ServerLimits,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// Decrements the waiting count when a queued request stops waiting (admitted, refused or
/// dropped because its client went away).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// Slots and a queue as `limits` says (`max_concurrent` at least 1).
    pub fn new(limits: ServerLimits) -> Self {
        Admission {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The limits.
    pub fn limits(&self) -> ServerLimits {
        self.limits
    }

    /// Waits for a compute slot: immediately when one is free; in the queue when there is room
    /// (for at most `queue_wait`); otherwise [`ApiError::Busy`].
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        let busy = || ApiError::Busy {
            retry_after_secs: self.limits.retry_after_secs,
        };
        let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        if queued >= self.limits.max_queued {
            return Err(busy());
        }
        match tokio::time::timeout(
            self.limits.queue_wait,
            Arc::clone(&self.slots).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out, or the semaphore was closed (never, here).
            _ => Err(busy()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_and_long_waits_are_refused_with_busy() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let admission = Arc::new(Admission::new(ServerLimits {
                max_concurrent: 1,
                max_queued: 1,
                queue_wait: Duration::from_millis(50),
                body_timeout: Duration::from_secs(1),
                retry_after_secs: 2,
            }));
            let held = admission.admit().await.unwrap();
            // One waiter fits in the queue; while it waits, a second is refused at once.
            let a = Arc::clone(&admission);
            let waiter = tokio::spawn(async move { a.admit().await.map(|_| ()) });
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(matches!(
                admission.admit().await,
                Err(ApiError::Busy {
                    retry_after_secs: 2
                })
            ));
            // The waiter gives up after queue_wait since the slot stays taken.
            assert!(waiter.await.unwrap().is_err());
            assert_eq!(admission.waiting.load(Ordering::Acquire), 0);
            drop(held);
            assert!(admission.admit().await.is_ok());
        });
    }
}
