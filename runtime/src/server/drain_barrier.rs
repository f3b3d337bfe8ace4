//! Shards stop together: each waits, after draining its own connections,
//! until every shard of the server has drained.
//!
//! A connection draining on one shard may still need another shard (an
//! [`Rpc`](crate::Rpc) to the owner of a key, a name release): so a shard
//! that has finished draining keeps running — its bus still receives and
//! serves — until the last shard has finished too, then all stop. Each
//! shard's drain is bounded by the drain deadline, so the wait is too. A
//! shard that failed to start or panicked counts as arrived (its
//! [`Arrival`] is dropped on the way out).
//!
//! The barrier is a count and the wakers of the shards waiting on it; the
//! last to arrive wakes them (glommio's cross-thread wake).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

/// The shards of one server still draining.
#[derive(Debug)]
pub(crate) struct DrainBarrier {
    remaining: AtomicUsize,
    waiters: Mutex<Vec<Waker>>,
}

impl DrainBarrier {
    /// A barrier for `shards` shards.
    pub(crate) fn new(shards: usize) -> Arc<DrainBarrier> {
        Arc::new(DrainBarrier {
            remaining: AtomicUsize::new(shards),
            waiters: Mutex::new(Vec::new()),
        })
    }

    /// One shard's place at the barrier: arrives when dropped.
    pub(crate) fn arrival(self: &Arc<Self>) -> Arrival {
        Arrival(Some(self.clone()))
    }

    fn arrive(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waiters = std::mem::take(&mut *self.lock());
            for w in waiters {
                w.wake();
            }
        }
    }

    /// Resolves once every shard has arrived.
    pub(crate) async fn all_arrived(&self) {
        std::future::poll_fn(|cx| {
            if self.remaining.load(Ordering::Acquire) == 0 {
                return Poll::Ready(());
            }
            self.lock().push(cx.waker().clone());
            // Arrived meanwhile (its wake-ups may have been taken first).
            if self.remaining.load(Ordering::Acquire) == 0 {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A shard's arrival at the [`DrainBarrier`], made when it is dropped or
/// [`Arrival::arrive`]d.
#[derive(Debug)]
pub(crate) struct Arrival(Option<Arc<DrainBarrier>>);

impl Arrival {
    /// Arrives now; returns the barrier to wait on.
    pub(crate) fn arrive(mut self) -> Arc<DrainBarrier> {
        let barrier = self.0.take().expect("arrives once");
        barrier.arrive();
        barrier
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        if let Some(barrier) = self.0.take() {
            barrier.arrive();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_arrival_releases_everyone() {
        let barrier = DrainBarrier::new(3);
        let first = barrier.arrival();
        let second = barrier.arrival();
        let third = barrier.arrival();
        let waiting = std::thread::spawn({
            let b = first.arrive();
            move || futures_lite::future::block_on(b.all_arrived())
        });
        drop(second); // a shard that failed: arrived all the same
        assert!(!waiting.is_finished() || barrier.remaining.load(Ordering::SeqCst) == 0);
        let b = third.arrive();
        futures_lite::future::block_on(b.all_arrived());
        waiting.join().unwrap();
    }
}
