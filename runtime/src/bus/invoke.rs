//! Running a closure on another shard and awaiting its result: Seastar's
//! [`invoke_on`], [`invoke_on_all`] and [`map_reduce`].
//!
//! Every server's shards (and every executor of [`run_on_cores`] and
//! [`block_on`]) share an *invocation bus* of their own, made and attached
//! by torsion: a message on it is a boxed `Send` closure that starts a
//! future on the destination shard; the future's output travels back in a
//! one-shot slot that wakes the caller (glommio's cross-thread wake). So any
//! code on a shard may write
//!
//! ```no_run
//! # async fn f() -> Result<(), torsion::RpcError> {
//! // The other shard's id and how many connections it serves, from shard 0.
//! let (id, load) = torsion::invoke_on(1, || async {
//!     let me = torsion::ShardInfo::current().unwrap();
//!     (me.id, 42usize)
//! })
//! .await?;
//! let total: usize = torsion::map_reduce(|shard| async move { shard.id }, 0, |a, b| a + b).await?;
//! # Ok(()) }
//! ```
//!
//! The closure must be `Send` (it crosses threads) and so must its result;
//! the future it starts need not be (it never leaves the shard). Per-shard
//! state is reached from inside it (a thread local, or state the shard's
//! factory registered); for a service with per-shard state and typed
//! requests, an [`Rpc`](crate::Rpc) is the better fit.
//!
//! Order, cancellation and failures are those of an [`Rpc`](crate::Rpc):
//! invocations from one shard to another start in the order they were
//! made; a call to the calling shard runs there (no message); dropping the
//! future does not stop the work already started on the other shard (its
//! result is dropped); a panic comes back as [`RpcError::Panicked`], and a
//! shard that stopped as [`RpcError::Stopped`].
//!
//! [`run_on_cores`]: crate::run_on_cores
//! [`block_on`]: crate::block_on

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::oneshot;
use super::rpc::RpcError;
use super::{Bus, BusError, BusHandle};
use crate::shard::{self, ShardInfo};

/// One invocation: starts its future on the shard that receives it.
pub(crate) struct Invocation(Box<dyn FnOnce() + Send>);

/// The bus every shard of a server (or of an executor pool) invokes on.
pub(crate) type InvokeBus = Bus<Invocation>;

thread_local! {
    /// This shard's end of its group's invocation bus.
    static INVOKER: RefCell<Option<Invoker>> = const { RefCell::new(None) };
}

struct Invoker {
    info: ShardInfo,
    handle: BusHandle<Invocation>,
}

/// Attaches the current shard to its group's invocation bus (the shard
/// thread does this before anything else runs on it).
pub(crate) fn attach(bus: &InvokeBus, info: ShardInfo) -> Result<(), BusError> {
    let handle = bus.attach_with_leftovers(
        &info,
        |inv: Invocation| (inv.0)(),
        || {},
        // Dropped unrun: its slot's sender says Stopped.
        drop,
    )?;
    INVOKER.with(|slot| *slot.borrow_mut() = Some(Invoker { info, handle }));
    Ok(())
}

/// Detaches the current shard (its executor is about to stop).
pub(crate) fn detach() {
    INVOKER.with(|slot| {
        if let Some(invoker) = slot.borrow_mut().take() {
            invoker.handle.stop_receiving();
        }
    });
}

/// Runs `f` on shard `shard` of the current server (or executor pool) —
/// it starts a future there — and resolves with that future's output on
/// this shard. See the module docs.
///
/// # Panics
/// Off a shard (no invocation bus on this thread).
pub async fn invoke_on<T, F, Fut>(shard: usize, f: F) -> Result<T, RpcError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    // Dropped unsent (the closure never ran, or its task went with its
    // shard): the receiver hears `Canceled`, which is `Stopped` here.
    let (sender, receiver) = oneshot::channel::<Result<T, RpcError>>();
    let run = Invocation(Box::new(move || {
        let future = match shard::call_guarded("an invoked closure", f) {
            Some(future) => future,
            None => {
                return sender.send(Err(RpcError::Panicked(
                    "the invoked closure panicked".into(),
                )))
            }
        };
        crate::spawn_local(async move {
            let out = CatchPanic(Box::pin(future)).await;
            sender.send(out);
        })
        .detach();
    }));
    let sent = INVOKER.with(|slot| {
        let invoker = slot.borrow();
        let invoker = invoker
            .as_ref()
            .expect("invoke_on is called on a shard (a server's, run_on_cores' or block_on's)");
        invoker.handle.send_to(shard, run)
    });
    if let Err(e) = sent {
        return Err(e.into());
    }
    receiver.await.unwrap_or(Err(RpcError::Stopped(shard)))
}

/// Runs `f(shard)` on every shard of the current server (or executor
/// pool), this one included, concurrently; resolves with the results in
/// shard order.
///
/// # Panics
/// Off a shard.
pub async fn invoke_on_all<T, F, Fut>(f: F) -> Result<Vec<T>, RpcError>
where
    F: Fn(ShardInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let count = INVOKER.with(|slot| {
        let invoker = slot.borrow();
        let invoker = invoker
            .as_ref()
            .expect("invoke_on_all is called on a shard (a server's, run_on_cores' or block_on's)");
        invoker.info.count
    });
    let f = Arc::new(f);
    // Started together, awaited in order.
    let calls: Vec<_> = (0..count)
        .map(|id| {
            let f = f.clone();
            Box::pin(invoke_on(id, move || {
                let info = shard::current().unwrap_or(ShardInfo { id, count, core: 0 });
                f(info)
            }))
        })
        .collect();
    let mut out = Vec::with_capacity(count);
    for call in calls {
        out.push(call.await?);
    }
    Ok(out)
}

/// Runs `map(shard)` on every shard concurrently and folds the results
/// with `reduce`, in shard order, starting from `init` (Seastar's
/// `map_reduce`).
///
/// # Panics
/// Off a shard.
pub async fn map_reduce<T, A, F, Fut, R>(map: F, init: A, mut reduce: R) -> Result<A, RpcError>
where
    F: Fn(ShardInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
    R: FnMut(A, T) -> A,
{
    let mut acc = init;
    for value in invoke_on_all(map).await? {
        acc = reduce(acc, value);
    }
    Ok(acc)
}

/// A future whose panic becomes [`RpcError::Panicked`] (contained and
/// counted on its shard).
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, RpcError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                shard::report_panic("an invoked future", payload.as_ref());
                Poll::Ready(Err(RpcError::Panicked(shard::panic_message(
                    payload.as_ref(),
                ))))
            }
        }
    }
}
