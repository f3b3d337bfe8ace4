//! A one-shot, shard-local event: tasks wait until it is set.
//!
//! Used for "stop accepting" and "every connection has ended" during
//! shutdown. `!Send` by design: it never leaves its shard.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::{Poll, Waker};

/// A flag that, once set, releases every waiter.
#[derive(Default)]
pub(crate) struct LocalEvent {
    is_set: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl LocalEvent {
    /// Sets the event and wakes every waiter. Idempotent.
    pub(crate) fn set(&self) {
        if !self.is_set.replace(true) {
            for w in self.waiters.borrow_mut().drain(..) {
                w.wake();
            }
        }
    }

    /// Resolves once the event is set.
    pub(crate) fn wait(&self) -> impl Future<Output = ()> + '_ {
        futures_lite::future::poll_fn(move |cx| {
            if self.is_set.get() {
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}
