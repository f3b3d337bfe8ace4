//! Awaitable calls between shards over a bus: [`Rpc`] (Seastar's
//! `submit_to` on a service of your own).
//!
//! Each shard attaches once with the async function that *serves* requests
//! sent to it — it may await anything (a timer, [`defer_to_thread`], I/O,
//! a call to a third shard) — and gets back its end of the `Rpc`;
//! [`Rpc::call`] sends a request and returns a future of the response:
//!
//! ```no_run
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use torsion::{Bus, Rpc, RpcMessage, Server, ConnectionFn};
//!
//! // Each shard owns a counter; any shard may add to any shard's.
//! let builder = Server::builder().listen_on("tcp:0:interface=127.0.0.1")?;
//! let bus: Bus<RpcMessage<u64, u64>> = builder.bus()?;
//! let server = builder.serve(move |shard| {
//!     let counter = Rc::new(RefCell::new(0u64));
//!     let rpc = Rpc::attach(&bus, shard, move |_from, add: u64| {
//!         let counter = counter.clone();
//!         async move {
//!             *counter.borrow_mut() += add;
//!             let total = *counter.borrow();
//!             total
//!         }
//!     })?;
//!     Ok::<_, torsion::BusError>(ConnectionFn::new(move |conn: torsion::Connection| {
//!         let rpc = rpc.clone();
//!         async move {
//!             let owner = conn.peer_addr().port() as usize % rpc.shard_count();
//!             let total = rpc.call(owner, 1).await; // Ok(new total) or Err(RpcError)
//!             let _ = conn.write(format!("{total:?}\n").as_bytes()).await;
//!         }
//!     }))
//! })?;
//! # server.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Order
//!
//! Calls from one shard to another are *started* on the serving shard in
//! the order they were made (the bus is FIFO per pair of shards), and the
//! request is sent when `call` is called, not when its future is first
//! polled: a caller may start several calls and await them in any order
//! (a pipelined connection awaits them in command order, so its replies
//! leave in command order). A serve function that answers without waiting
//! answers in that order too; one that waits finishes when it finishes, so
//! calls that wait may complete out of order. Each call's future resolves
//! with its own answer.
//!
//! A call to the calling shard itself takes no bus message: its serve
//! future is started inside `call`, as a remote one would be on arrival.
//!
//! # Concurrency
//!
//! Any number of calls may be in flight. On the serving shard a serve
//! future is first polled on the spot; only one that waits becomes a task
//! of its own, so a serve function that answers at once costs no task.
//!
//! # Cancellation
//!
//! Dropping a call's future before it resolves cancels the call: its reply
//! will be ignored, and the serving shard is told to drop the serve future
//! if it is still waiting (it stops at its next `.await`; what it did before
//! stays done). A serve that already finished had its effect.
//!
//! # Failures
//!
//! A call resolves with [`RpcError::NoSuchShard`] for a shard the bus does
//! not have, [`RpcError::Panicked`] if the serve function panicked (the
//! panic is contained and counted on the serving shard), and
//! [`RpcError::Stopped`] if the serving shard stopped before answering: a
//! server's shards stop together once every shard has drained (calls made
//! during a drain are served), so this is what a call to a shard that
//! stopped (or never attached, or panicked away) gets, immediately or when
//! the shard's inbox is closed.
//!
//! # In tests
//!
//! [`Rpc::attach_manual`] attaches a pretend shard of a [`ManualBus`]:
//! [`ManualBus::pump`] delivers the messages and runs the serve futures
//! that wait, so a test polls the call futures after a pump.
//!
//! [`defer_to_thread`]: crate::defer_to_thread

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::{Bus, BusError, BusHandle, BusSender, LocalTask, ManualBus};
use crate::shard::{self, ShardInfo};

/// What an [`Rpc`] sends over its bus.
#[derive(Debug, Clone)]
pub enum RpcMessage<Req, Resp> {
    /// A request from shard `from`, answered with `Reply { id }`.
    Call {
        /// The calling shard.
        from: usize,
        /// The caller's number for this call.
        id: u64,
        /// What is asked.
        request: Req,
    },
    /// The answer to call `id`.
    Reply {
        /// The call answered.
        id: u64,
        /// The answer, or why there is none.
        response: Result<Resp, RpcError>,
    },
    /// The caller of call `id` (from shard `from`) no longer waits for it.
    Cancel {
        /// The calling shard.
        from: usize,
        /// The call given up.
        id: u64,
    },
}

/// Why a call has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// A shard id outside `0..shards`.
    #[error("no shard {shard} (there are {shards})")]
    NoSuchShard {
        /// The shard asked for.
        shard: usize,
        /// How many there are.
        shards: usize,
    },
    /// The serving shard stopped (or never attached) before answering.
    #[error("shard {0} has stopped")]
    Stopped(usize),
    /// The serve function panicked; the message is the panic's.
    #[error("the call panicked on its shard: {0}")]
    Panicked(String),
}

impl From<BusError> for RpcError {
    fn from(e: BusError) -> RpcError {
        match e {
            BusError::NoSuchShard { shard, shards } => RpcError::NoSuchShard { shard, shards },
            BusError::Disconnected(shard) => RpcError::Stopped(shard),
            BusError::AlreadyAttached(shard) => RpcError::Stopped(shard),
            BusError::Setup(_) => RpcError::Stopped(usize::MAX),
        }
    }
}

type ServeFuture<Resp> = Pin<Box<dyn Future<Output = Resp>>>;
type Serve<Req, Resp> = Box<dyn Fn(usize, Req) -> ServeFuture<Resp>>;

/// Where one call's answer lands and who waits for it.
struct CallSlot<Resp> {
    answer: RefCell<Option<Result<Resp, RpcError>>>,
    waker: RefCell<Option<Waker>>,
}

impl<Resp> CallSlot<Resp> {
    fn new() -> Rc<Self> {
        Rc::new(CallSlot {
            answer: RefCell::new(None),
            waker: RefCell::new(None),
        })
    }

    fn fill(&self, answer: Result<Resp, RpcError>) {
        *self.answer.borrow_mut() = Some(answer);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// One shard's end of a request/response bus. See the module docs.
pub struct Rpc<Req, Resp> {
    me: usize,
    shards: usize,
    bus: OnceCell<BusHandle<RpcMessage<Req, Resp>>>,
    serve: Serve<Req, Resp>,
    /// Calls made from here, waiting for their reply.
    pending: RefCell<HashMap<u64, Rc<CallSlot<Resp>>>>,
    /// Calls served here that wait (their tasks), by caller and id.
    serving: RefCell<HashMap<(usize, u64), LocalTask>>,
    next_id: Cell<u64>,
}

impl<Req, Resp> fmt::Debug for Rpc<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rpc")
            .field("shard", &self.me)
            .field("pending", &self.pending.borrow().len())
            .field("serving", &self.serving.borrow().len())
            .finish()
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> Rpc<Req, Resp> {
    fn new<S, Fut>(me: usize, shards: usize, serve: S) -> Rc<Self>
    where
        S: Fn(usize, Req) -> Fut + 'static,
        Fut: Future<Output = Resp> + 'static,
    {
        Rc::new(Rpc {
            me,
            shards,
            bus: OnceCell::new(),
            serve: Box::new(move |from, req| Box::pin(serve(from, req))),
            pending: RefCell::new(HashMap::new()),
            serving: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        })
    }

    /// The bus handler: messages to this shard's `Rpc`; once it is gone,
    /// calls are answered `Stopped`.
    fn handler(
        rpc: &Rc<Self>,
        bounce: BusSender<RpcMessage<Req, Resp>>,
    ) -> impl FnMut(RpcMessage<Req, Resp>) + 'static {
        let weak: Weak<Self> = Rc::downgrade(rpc);
        let me = rpc.me;
        move |msg| match weak.upgrade() {
            Some(rpc) => rpc.on_message(msg),
            None => refuse(&bounce, me, msg),
        }
    }

    /// Attaches the current shard to `bus`; `serve(from, request)` answers
    /// the requests other shards (and this one) send here, as a future.
    ///
    /// # Panics
    /// Off a shard (as [`Bus::attach`]).
    pub fn attach<S, Fut>(
        bus: &Bus<RpcMessage<Req, Resp>>,
        shard: &ShardInfo,
        serve: S,
    ) -> Result<Rc<Self>, BusError>
    where
        S: Fn(usize, Req) -> Fut + 'static,
        Fut: Future<Output = Resp> + 'static,
    {
        let rpc = Rpc::new(shard.id, bus.shard_count(), serve);
        let sender = bus.sender();
        let leftovers = bus.sender();
        let me = shard.id;
        let weak = Rc::downgrade(&rpc);
        let handle = bus.attach_with_leftovers(
            shard,
            Rpc::handler(&rpc, sender),
            move || {
                if let Some(rpc) = weak.upgrade() {
                    rpc.stop_serving();
                }
            },
            move |msg| refuse(&leftovers, me, msg),
        )?;
        let _ = rpc.bus.set(handle);
        Ok(rpc)
    }

    /// Attaches pretend shard `shard` of a test's [`ManualBus`].
    pub fn attach_manual<S, Fut>(
        bus: &ManualBus<RpcMessage<Req, Resp>>,
        shard: usize,
        serve: S,
    ) -> Result<Rc<Self>, BusError>
    where
        S: Fn(usize, Req) -> Fut + 'static,
        Fut: Future<Output = Resp> + 'static,
    {
        let rpc = Rpc::new(shard, bus.shard_count(), serve);
        let weak = Rc::downgrade(&rpc);
        let handle = bus.attach(shard, move |msg| {
            if let Some(rpc) = weak.upgrade() {
                rpc.on_message(msg);
            }
        })?;
        let _ = rpc.bus.set(handle);
        Ok(rpc)
    }

    /// This shard's id.
    pub fn shard_id(&self) -> usize {
        self.me
    }

    /// How many shards the bus connects.
    pub fn shard_count(&self) -> usize {
        self.shards
    }

    /// Calls made from here and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.pending.borrow().len()
    }

    /// Calls served here that are still waiting.
    pub fn serving(&self) -> usize {
        self.serving.borrow().len()
    }

    fn bus(&self) -> &BusHandle<RpcMessage<Req, Resp>> {
        self.bus.get().expect("an attached Rpc has its bus")
    }

    /// Asks `shard` to serve `request`: the request is sent now (served
    /// at once when `shard` is this one), the future resolves with the
    /// response. Dropping the future cancels the call (module docs).
    pub fn call(self: &Rc<Self>, shard: usize, request: Req) -> RpcCall<Resp> {
        if shard >= self.shards {
            return RpcCall::ready(Err(RpcError::NoSuchShard {
                shard,
                shards: self.shards,
            }));
        }
        if shard == self.me {
            return self.call_here(request);
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let slot = CallSlot::new();
        self.pending.borrow_mut().insert(id, slot.clone());
        let sent = self.bus().send_to(
            shard,
            RpcMessage::Call {
                from: self.me,
                id,
                request,
            },
        );
        if let Err(e) = sent {
            self.pending.borrow_mut().remove(&id);
            return RpcCall::ready(Err(e.into()));
        }
        RpcCall {
            state: CallState::Remote {
                rpc: Rc::downgrade(self) as Weak<dyn Canceller>,
                shard,
                id,
                slot,
            },
        }
    }

    /// Sends `request` to every shard (this one included) and resolves
    /// with the answers in shard order: Seastar's `map_reduce` over an
    /// `Rpc` (fold the vector for the reduce).
    pub async fn call_all(self: &Rc<Self>, request: Req) -> Vec<Result<Resp, RpcError>>
    where
        Req: Clone,
    {
        let calls: Vec<_> = (0..self.shards)
            .map(|shard| self.call(shard, request.clone()))
            .collect();
        let mut answers = Vec::with_capacity(calls.len());
        for call in calls {
            answers.push(call.await);
        }
        answers
    }

    /// A call to this shard: the serve future starts now.
    fn call_here(self: &Rc<Self>, request: Req) -> RpcCall<Resp> {
        let mut future = (self.serve)(self.me, request);
        match poll_once(&mut future) {
            Some(answer) => RpcCall::ready(answer),
            None => {
                let slot = CallSlot::new();
                let filled = slot.clone();
                let task = self.bus().spawn(async move {
                    filled.fill(Guarded(future).await);
                });
                RpcCall {
                    state: CallState::Local { slot, _task: task },
                }
            }
        }
    }

    fn on_message(self: &Rc<Self>, msg: RpcMessage<Req, Resp>) {
        match msg {
            RpcMessage::Call { from, id, request } => {
                let mut future = (self.serve)(from, request);
                match poll_once(&mut future) {
                    Some(answer) => self.reply(from, id, answer),
                    None => {
                        let weak = Rc::downgrade(self);
                        let task = self.bus().spawn(async move {
                            let answer = Guarded(future).await;
                            if let Some(rpc) = weak.upgrade() {
                                rpc.serving.borrow_mut().remove(&(from, id));
                                rpc.reply(from, id, answer);
                            }
                        });
                        self.serving.borrow_mut().insert((from, id), task);
                    }
                }
            }
            RpcMessage::Reply { id, response } => {
                let slot = self.pending.borrow_mut().remove(&id);
                match slot {
                    Some(slot) => slot.fill(response),
                    // Cancelled by its caller, or refused twice (a send
                    // that raced the destination's stop): nobody waits.
                    None => tracing::trace!(shard = self.me, id, "rpc reply to no call"),
                }
            }
            RpcMessage::Cancel { from, id } => {
                // Dropping the task cancels the serve future.
                let task = self.serving.borrow_mut().remove(&(from, id));
                drop(task);
            }
        }
    }

    /// The shard stops: the calls it is serving are answered `Stopped`
    /// (their serve futures are dropped).
    fn stop_serving(&self) {
        let serving = std::mem::take(&mut *self.serving.borrow_mut());
        for ((from, id), task) in serving {
            drop(task);
            self.reply(from, id, Err(RpcError::Stopped(self.me)));
        }
    }

    fn reply(&self, to: usize, id: u64, response: Result<Resp, RpcError>) {
        if let Err(e) = self.bus().send_to(to, RpcMessage::Reply { id, response }) {
            // The caller's shard stopped: nobody waits for this any more.
            tracing::debug!(shard = self.me, to, "rpc reply not delivered: {e}");
        }
    }
}

/// Answers a call that reached a shard whose `Rpc` is gone or stopping:
/// `Stopped`. Other messages are dropped (nobody waits for them here).
fn refuse<Req: Send + 'static, Resp: Send + 'static>(
    bus: &BusSender<RpcMessage<Req, Resp>>,
    me: usize,
    msg: RpcMessage<Req, Resp>,
) {
    if let RpcMessage::Call { from, id, .. } = msg {
        // Err: the caller's shard is stopping too; nobody waits.
        let _ = bus.send_to(
            from,
            RpcMessage::Reply {
                id,
                response: Err(RpcError::Stopped(me)),
            },
        );
    }
}

/// Polls a serve future once, on the spot (with a waker that does
/// nothing: if it waits, the task it becomes polls it again with its
/// own): its answer, or `None` if it waits.
fn poll_once<Resp>(future: &mut ServeFuture<Resp>) -> Option<Result<Resp, RpcError>> {
    let waker = NOOP_WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        future.as_mut().poll(&mut cx)
    })) {
        Ok(Poll::Ready(answer)) => Some(Ok(answer)),
        Ok(Poll::Pending) => None,
        Err(payload) => {
            shard::report_panic("an rpc serve function", payload.as_ref());
            Some(Err(RpcError::Panicked(shard::panic_message(
                payload.as_ref(),
            ))))
        }
    }
}

/// Wakes nothing (see `poll_once`).
struct Noop;

impl std::task::Wake for Noop {
    fn wake(self: std::sync::Arc<Self>) {}
}

thread_local! {
    static NOOP_WAKER: Waker = Waker::from(std::sync::Arc::new(Noop));
}

/// A serve future whose panic becomes [`RpcError::Panicked`].
struct Guarded<Resp>(ServeFuture<Resp>);

impl<Resp> Future for Guarded<Resp> {
    type Output = Result<Resp, RpcError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(answer)) => Poll::Ready(Ok(answer)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                shard::report_panic("an rpc serve function", payload.as_ref());
                Poll::Ready(Err(RpcError::Panicked(shard::panic_message(
                    payload.as_ref(),
                ))))
            }
        }
    }
}

/// What a dropped remote call tells its `Rpc` (object-safe: the call's
/// future does not carry the request type).
trait Canceller {
    fn cancel(&self, shard: usize, id: u64);
}

impl<Req: Send + 'static, Resp: Send + 'static> Canceller for Rpc<Req, Resp> {
    fn cancel(&self, shard: usize, id: u64) {
        if self.pending.borrow_mut().remove(&id).is_some() {
            let _ = self
                .bus()
                .send_to(shard, RpcMessage::Cancel { from: self.me, id });
        }
    }
}

enum CallState<Resp> {
    /// Answered already (or failed before it was sent).
    Ready(Option<Result<Resp, RpcError>>),
    /// Served on this shard by a task that waits.
    Local {
        slot: Rc<CallSlot<Resp>>,
        _task: LocalTask,
    },
    /// Sent to another shard.
    Remote {
        rpc: Weak<dyn Canceller>,
        shard: usize,
        id: u64,
        slot: Rc<CallSlot<Resp>>,
    },
    /// Resolved and taken.
    Done,
}

/// The future of one [`Rpc::call`]: its answer, or why there is none.
/// Dropping it before it resolves cancels the call.
#[must_use = "a call's answer arrives through its future; dropping it cancels the call"]
pub struct RpcCall<Resp> {
    state: CallState<Resp>,
}

impl<Resp> fmt::Debug for RpcCall<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            CallState::Ready(_) => "answered",
            CallState::Local { .. } => "serving here",
            CallState::Remote { .. } => "sent",
            CallState::Done => "taken",
        };
        f.debug_struct("RpcCall").field("state", &state).finish()
    }
}

impl<Resp> RpcCall<Resp> {
    fn ready(answer: Result<Resp, RpcError>) -> Self {
        RpcCall {
            state: CallState::Ready(Some(answer)),
        }
    }
}

// The answer is moved out, never pinned in place.
impl<Resp> Unpin for RpcCall<Resp> {}

impl<Resp> Future for RpcCall<Resp> {
    type Output = Result<Resp, RpcError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let answer = match &mut this.state {
            CallState::Ready(answer) => answer.take(),
            CallState::Local { slot, .. } | CallState::Remote { slot, .. } => {
                let answer = slot.answer.borrow_mut().take();
                if answer.is_none() {
                    *slot.waker.borrow_mut() = Some(cx.waker().clone());
                }
                answer
            }
            CallState::Done => panic!("an RpcCall polled after it resolved"),
        };
        match answer {
            Some(answer) => {
                this.state = CallState::Done;
                Poll::Ready(answer)
            }
            None => Poll::Pending,
        }
    }
}

impl<Resp> Drop for RpcCall<Resp> {
    fn drop(&mut self) {
        if let CallState::Remote {
            rpc,
            shard,
            id,
            slot,
        } = &self.state
        {
            if slot.answer.borrow().is_none() {
                if let Some(rpc) = rpc.upgrade() {
                    rpc.cancel(*shard, *id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    fn now<T>(f: impl Future<Output = T>) -> T {
        futures_lite::future::block_on(futures_lite::future::poll_once(f))
            .expect("the future is ready")
    }

    /// Three pretend shards, each owning a counter; calls add to a shard's
    /// counter and answer its new value.
    fn counters(bus: &ManualBus<RpcMessage<u64, (usize, u64)>>) -> Vec<Rc<Rpc<u64, (usize, u64)>>> {
        (0..3)
            .map(|s| {
                let total = Rc::new(Cell::new(0));
                Rpc::attach_manual(bus, s, move |_from, add: u64| {
                    total.set(total.get() + add);
                    std::future::ready((s, total.get()))
                })
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn calls_are_served_in_order_per_shard_and_at_once_locally() {
        let bus = ManualBus::new(3);
        let rpcs = counters(&bus);
        let calls: Vec<_> = [(1, 1), (2, 10), (1, 2), (0, 100), (2, 20)]
            .into_iter()
            .map(|(shard, add)| rpcs[0].call(shard, add))
            .collect();
        // The local call was served inside `call`; the others are in flight.
        assert_eq!(rpcs[0].in_flight(), 4);
        bus.pump();
        let answers: Vec<_> = calls.into_iter().map(|c| now(c).unwrap()).collect();
        assert_eq!(answers, vec![(1, 1), (2, 10), (1, 3), (0, 100), (2, 30)]);
        assert_eq!(rpcs[0].in_flight(), 0);
    }

    #[test]
    fn a_call_to_no_such_shard_is_an_error_and_leaves_nothing_pending() {
        let bus: ManualBus<RpcMessage<u8, u8>> = ManualBus::new(2);
        let rpc = Rpc::attach_manual(&bus, 0, |_, r| std::future::ready(r)).unwrap();
        let err = block_on(rpc.call(5, 1)).unwrap_err();
        assert_eq!(
            err,
            RpcError::NoSuchShard {
                shard: 5,
                shards: 2
            }
        );
        assert_eq!(rpc.in_flight(), 0);
    }

    /// A serve function that waits (for a gate the test opens) answers
    /// later, out of order with one that does not; many are in flight.
    #[test]
    fn serves_that_wait_finish_when_they_finish() {
        type Gate = Rc<RefCell<Vec<Rc<CallSlot<()>>>>>;
        let bus: ManualBus<RpcMessage<u32, u32>> = ManualBus::new(2);
        let gates: Gate = Rc::default();
        let g = gates.clone();
        let rpc0 = Rpc::attach_manual(&bus, 0, |_, x| std::future::ready(x)).unwrap();
        let r1 = Rpc::attach_manual(&bus, 1, move |_, x: u32| {
            let gate = CallSlot::new();
            g.borrow_mut().push(gate.clone());
            async move {
                if x % 2 == 0 {
                    // Wait for the gate.
                    std::future::poll_fn(|cx| {
                        if gate.answer.borrow().is_some() {
                            Poll::Ready(())
                        } else {
                            *gate.waker.borrow_mut() = Some(cx.waker().clone());
                            Poll::Pending
                        }
                    })
                    .await;
                }
                x * 10
            }
        })
        .unwrap();
        let mut calls: Vec<_> = (0..4).map(|x| Some(rpc0.call(1, x))).collect();
        bus.pump();
        assert_eq!(r1.serving(), 2, "the even calls wait");
        let poll = |c: &mut Option<RpcCall<u32>>| {
            futures_lite::future::block_on(futures_lite::future::poll_once(c.as_mut().unwrap()))
        };
        assert_eq!(poll(&mut calls[1]), Some(Ok(10)));
        assert_eq!(poll(&mut calls[3]), Some(Ok(30)));
        assert_eq!(poll(&mut calls[0]), None);
        for gate in gates.borrow().iter() {
            gate.fill(Ok(()));
        }
        bus.pump();
        assert_eq!(poll(&mut calls[0]), Some(Ok(0)));
        assert_eq!(poll(&mut calls[2]), Some(Ok(20)));
        assert_eq!(r1.serving(), 0);
    }

    #[test]
    fn dropping_a_call_cancels_its_serve_future() {
        let bus: ManualBus<RpcMessage<(), ()>> = ManualBus::new(2);
        let dropped = Rc::new(Cell::new(false));
        struct Flag(Rc<Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let d = dropped.clone();
        let rpc0 = Rpc::attach_manual(&bus, 0, |_, ()| std::future::ready(())).unwrap();
        let rpc1 = Rpc::attach_manual(&bus, 1, move |_, ()| {
            let flag = Flag(d.clone());
            async move {
                let _flag = flag;
                std::future::pending::<()>().await
            }
        })
        .unwrap();
        let call = rpc0.call(1, ());
        bus.pump();
        assert_eq!(rpc1.serving(), 1);
        assert!(!dropped.get());
        drop(call);
        assert_eq!(rpc0.in_flight(), 0);
        bus.pump();
        assert_eq!(rpc1.serving(), 0);
        assert!(dropped.get(), "the serve future was dropped");
    }

    #[test]
    fn a_panicking_serve_function_answers_panicked() {
        let bus: ManualBus<RpcMessage<u8, u8>> = ManualBus::new(2);
        let rpc0 = Rpc::attach_manual(&bus, 0, |_, x| std::future::ready(x)).unwrap();
        let _rpc1 = Rpc::attach_manual(&bus, 1, |_, x: u8| async move {
            if x == 13 {
                panic!("unlucky");
            }
            x
        })
        .unwrap();
        let bad = rpc0.call(1, 13);
        let good = rpc0.call(1, 7);
        bus.pump();
        assert_eq!(now(bad), Err(RpcError::Panicked("unlucky".into())));
        assert_eq!(now(good), Ok(7));
    }

    #[test]
    fn call_all_answers_in_shard_order() {
        let bus = ManualBus::new(3);
        let rpcs = counters(&bus);
        let mut all = Box::pin(rpcs[1].call_all(5));
        assert!(
            futures_lite::future::block_on(futures_lite::future::poll_once(&mut all)).is_none()
        );
        bus.pump();
        let answers = now(all);
        assert_eq!(answers, vec![Ok((0, 5)), Ok((1, 5)), Ok((2, 5))]);
    }
}
