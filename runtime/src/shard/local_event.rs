//! A one-shot, shard-local event: tasks wait until it is set.
//!
//! Used for "stop accepting" and "every connection has ended" during
//! shutdown. `!Send` by design: it never leaves its shard.
//!
//! Every waiting future holds one slot in the event's waiter table and gives
//! it back when it is dropped, finished or not: a task that waits on the
//! event as one branch of a race (a TLS handshake against "stop accepting")
//! and finishes by the other branch leaves nothing behind. (A waker left
//! registered would keep the finished task's memory alive until the event
//! is set: one per TLS connection, for the life of the server.)

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A flag that, once set, releases every waiter.
#[derive(Default)]
pub(crate) struct LocalEvent {
    is_set: Cell<bool>,
    waiters: RefCell<HashMap<u64, Waker>>,
    next_key: Cell<u64>,
}

impl LocalEvent {
    /// Sets the event and wakes every waiter. Idempotent.
    pub(crate) fn set(&self) {
        if !self.is_set.replace(true) {
            let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
            for (_, w) in waiters {
                w.wake();
            }
        }
    }

    /// Resolves once the event is set. Dropping the future deregisters it.
    pub(crate) fn wait(&self) -> Wait<'_> {
        Wait {
            event: self,
            key: None,
        }
    }

    /// Futures currently registered as waiting.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiters.borrow().len()
    }
}

/// The future returned by [`LocalEvent::wait`].
pub(crate) struct Wait<'a> {
    event: &'a LocalEvent,
    key: Option<u64>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let event = self.event;
        if event.is_set.get() {
            if let Some(key) = self.key.take() {
                event.waiters.borrow_mut().remove(&key);
            }
            return Poll::Ready(());
        }
        let mut waiters = event.waiters.borrow_mut();
        match self.key {
            Some(key) => match waiters.get_mut(&key) {
                Some(w) if w.will_wake(cx.waker()) => {}
                Some(w) => *w = cx.waker().clone(),
                None => {
                    waiters.insert(key, cx.waker().clone());
                }
            },
            None => {
                let key = event.next_key.get();
                event.next_key.set(key + 1);
                waiters.insert(key, cx.waker().clone());
                drop(waiters);
                self.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.event.waiters.borrow_mut().remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_once(f: Pin<&mut Wait<'_>>) -> Poll<()> {
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        f.poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_dropped_wait_leaves_no_waiter_behind() {
        let event = LocalEvent::default();
        for _ in 0..1000 {
            let mut wait = Box::pin(event.wait());
            assert_eq!(poll_once(wait.as_mut()), Poll::Pending);
            // Polled again: still one slot, not two.
            assert_eq!(poll_once(wait.as_mut()), Poll::Pending);
            assert_eq!(event.waiting(), 1);
        }
        assert_eq!(event.waiting(), 0);
    }

    #[test]
    fn setting_releases_every_waiter() {
        let event = LocalEvent::default();
        let mut a = Box::pin(event.wait());
        let mut b = Box::pin(event.wait());
        assert_eq!(poll_once(a.as_mut()), Poll::Pending);
        assert_eq!(poll_once(b.as_mut()), Poll::Pending);
        event.set();
        assert_eq!(event.waiting(), 0);
        assert_eq!(poll_once(a.as_mut()), Poll::Ready(()));
        assert_eq!(poll_once(b.as_mut()), Poll::Ready(()));
        assert_eq!(poll_once(Box::pin(event.wait()).as_mut()), Poll::Ready(()));
    }
}
