//! Tasks on the shard (Twisted's `Deferred` / `inlineCallbacks` become
//! `async` blocks) and what their handles do when dropped.
//!
//! | handle | dropping it |
//! |---|---|
//! | [`JoinHandle`] (from [`spawn_local`]) | **cancels** the task: await it, or [`JoinHandle::detach`] it |
//! | [`Sleep`](crate::Sleep) | cancels the sleep (it is a future) |
//! | [`DelayedCall`](crate::DelayedCall) | nothing: the call still runs (as Twisted's `IDelayedCall`); keep it to [`cancel`](crate::DelayedCall::cancel) |
//! | [`LoopingCall`](crate::LoopingCall) | nothing: the loop runs until [`stop`](crate::LoopingCall::stop) |
//! | [`BusHandle`](crate::BusHandle) | nothing: the shard keeps receiving; [`stop_receiving`](crate::BusHandle::stop_receiving) ends it |

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A task running on the current shard: a future of its output.
///
/// Dropping the handle **cancels** the task (it is not polled again). To
/// let it run on without waiting for it, call [`JoinHandle::detach`].
#[must_use = "dropping a JoinHandle cancels its task: await it, or call .detach() to let it run"]
pub struct JoinHandle<T>(glommio::Task<T>);

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle").finish_non_exhaustive()
    }
}

impl<T> JoinHandle<T> {
    /// Lets the task run to its end on its own; its output is dropped.
    pub fn detach(self) {
        drop(self.0.detach());
    }

    /// Cancels the task now (what dropping the handle does, said out loud).
    pub fn cancel(self) {
        drop(self);
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Runs a future on the current shard and returns its handle (dropping the
/// handle cancels the task; see [`JoinHandle`]).
///
/// # Panics
/// When called off a shard (no glommio executor on this thread).
pub fn spawn_local<T: 'static>(future: impl Future<Output = T> + 'static) -> JoinHandle<T> {
    JoinHandle(glommio::spawn_local(future))
}
