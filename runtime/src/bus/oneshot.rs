//! One value from any thread, awaited on a shard: [`channel`].
//!
//! A bridge thread (a Redis client, a blocking library) that answers a
//! shard's question sends the answer through the [`Sender`]; the shard
//! awaits the [`Receiver`]. The send wakes the awaiting task through
//! glommio's cross-thread wake (the shard is woken if it sleeps). A sender
//! dropped without sending resolves the receiver with [`Canceled`], so a
//! question whose answerer died is never waited on forever.
//!
//! ```
//! let (tx, rx) = torsion::oneshot::channel::<u32>();
//! std::thread::spawn(move || tx.send(42));
//! assert_eq!(futures_lite::future::block_on(rx), Ok(42));
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The sender was dropped without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the answer will never come: its sender was dropped")]
pub struct Canceled;

struct Slot<T> {
    value: Option<Result<T, Canceled>>,
    waker: Option<Waker>,
}

struct Shared<T>(Mutex<Slot<T>>);

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn put(&self, value: Result<T, Canceled>) {
        let waker = {
            let mut slot = self.lock();
            if slot.value.is_some() {
                return;
            }
            slot.value = Some(value);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A sender and a receiver of one value.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared(Mutex::new(Slot {
        value: None,
        waker: None,
    })));
    (
        Sender {
            shared: Some(shared.clone()),
        },
        Receiver { shared },
    )
}

/// Sends the one value (from any thread). Dropping it unsent resolves the
/// receiver with [`Canceled`].
pub struct Sender<T> {
    shared: Option<Arc<Shared<T>>>,
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("oneshot::Sender").finish_non_exhaustive()
    }
}

impl<T> Sender<T> {
    /// Sends `value` and wakes the receiver's task.
    pub fn send(mut self, value: T) {
        if let Some(shared) = self.shared.take() {
            shared.put(Ok(value));
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.put(Err(Canceled));
        }
    }
}

/// The future of the one value.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("oneshot::Receiver").finish_non_exhaustive()
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, Canceled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.shared.lock();
        match slot.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_sender_cancels() {
        let (tx, rx) = channel::<u8>();
        drop(tx);
        assert_eq!(futures_lite::future::block_on(rx), Err(Canceled));
    }

    #[test]
    fn a_value_sent_before_the_wait_is_there_at_once() {
        let (tx, rx) = channel();
        tx.send("hello");
        assert_eq!(futures_lite::future::block_on(rx), Ok("hello"));
    }
}
