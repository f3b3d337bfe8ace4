//! Request/response between shards over a bus: [`Rpc`].
//!
//! A shard asks another to do something with the data it owns and gets
//! the answer back on its own shard, in a callback (Twisted's `Deferred`
//! callback, without a future to poll): Seastar's `submit_to`, Dragonfly's
//! shard hops. Each shard attaches once with the function that *serves*
//! requests sent to it; [`Rpc::call`] sends a request and runs `on_reply`
//! with the response, on the calling shard, when it comes back.
//!
//! # Order
//!
//! Calls from one shard to another are served in the order they were made
//! and their replies come back in that order (the bus is FIFO per pair of
//! shards). Replies from *different* shards may come back in any order: a
//! caller that must answer in request order (a pipelined connection) keeps
//! its own queue of answers and fills each slot as its reply arrives (the
//! KV example does).
//!
//! A call to the calling shard itself is served at once, inside `call`,
//! and `on_reply` runs before `call` returns: no bus message, no wait.
//!
//! # Rules
//!
//! The serve function must not call its own `Rpc` (it runs while the Rpc
//! holds it); `on_reply` may. A reply whose caller is gone (a closed
//! connection) is for the callback to ignore (hold a `Weak`). Calls to a
//! shard that stopped get [`BusError::Disconnected`] from `call`; calls in
//! flight when a shard stops are never answered.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use super::{Bus, BusError, BusHandle, ManualBus};
use crate::shard::ShardInfo;

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
        /// The answer.
        response: Resp,
    },
}

type Serve<Req, Resp> = Box<dyn FnMut(usize, Req) -> Resp>;
type OnReply<Resp> = Box<dyn FnOnce(Resp)>;

/// One shard's end of a request/response bus. See the module docs.
pub struct Rpc<Req, Resp> {
    me: usize,
    bus: OnceCell<BusHandle<RpcMessage<Req, Resp>>>,
    serve: RefCell<Serve<Req, Resp>>,
    pending: RefCell<HashMap<u64, OnReply<Resp>>>,
    next_id: Cell<u64>,
}

impl<Req, Resp> std::fmt::Debug for Rpc<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("shard", &self.me)
            .field("pending", &self.pending.borrow().len())
            .finish()
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> Rpc<Req, Resp> {
    fn new(me: usize, serve: impl FnMut(usize, Req) -> Resp + 'static) -> Rc<Self> {
        Rc::new(Rpc {
            me,
            bus: OnceCell::new(),
            serve: RefCell::new(Box::new(serve)),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        })
    }

    fn handler(rpc: &Rc<Self>) -> impl FnMut(RpcMessage<Req, Resp>) + 'static {
        let weak: Weak<Self> = Rc::downgrade(rpc);
        move |msg| {
            if let Some(rpc) = weak.upgrade() {
                rpc.on_message(msg);
            }
        }
    }

    /// Attaches the current shard to `bus`; `serve(from, request)` answers
    /// the requests other shards (and this one) send here.
    ///
    /// # Panics
    /// Off a shard (as [`Bus::attach`]).
    pub fn attach(
        bus: &Bus<RpcMessage<Req, Resp>>,
        shard: &ShardInfo,
        serve: impl FnMut(usize, Req) -> Resp + 'static,
    ) -> Result<Rc<Self>, BusError> {
        let rpc = Rpc::new(shard.id, serve);
        let handle = bus.attach(shard, Rpc::handler(&rpc))?;
        let _ = rpc.bus.set(handle);
        Ok(rpc)
    }

    /// Attaches pretend shard `shard` of a test's [`ManualBus`].
    pub fn attach_manual(
        bus: &ManualBus<RpcMessage<Req, Resp>>,
        shard: usize,
        serve: impl FnMut(usize, Req) -> Resp + 'static,
    ) -> Result<Rc<Self>, BusError> {
        let rpc = Rpc::new(shard, serve);
        let handle = bus.attach(shard, Rpc::handler(&rpc))?;
        let _ = rpc.bus.set(handle);
        Ok(rpc)
    }

    /// This shard's id.
    pub fn shard_id(&self) -> usize {
        self.me
    }

    /// Calls made from here and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.pending.borrow().len()
    }

    /// Asks `shard` to serve `request`; `on_reply` runs on this shard with
    /// the response (at once when `shard` is this one).
    pub fn call(
        &self,
        shard: usize,
        request: Req,
        on_reply: impl FnOnce(Resp) + 'static,
    ) -> Result<(), BusError> {
        if shard == self.me {
            let response = (self.serve.borrow_mut())(self.me, request);
            on_reply(response);
            return Ok(());
        }
        let bus = self.bus.get().expect("an attached Rpc has its bus");
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.pending.borrow_mut().insert(id, Box::new(on_reply));
        let sent = bus.send_to(
            shard,
            RpcMessage::Call {
                from: self.me,
                id,
                request,
            },
        );
        if sent.is_err() {
            self.pending.borrow_mut().remove(&id);
        }
        sent
    }

    fn on_message(&self, msg: RpcMessage<Req, Resp>) {
        match msg {
            RpcMessage::Call { from, id, request } => {
                let response = (self.serve.borrow_mut())(from, request);
                if let Some(bus) = self.bus.get() {
                    if let Err(e) = bus.send_to(from, RpcMessage::Reply { id, response }) {
                        tracing::warn!(shard = self.me, to = from, "rpc reply lost: {e}");
                    }
                }
            }
            RpcMessage::Reply { id, response } => {
                let on_reply = self.pending.borrow_mut().remove(&id);
                match on_reply {
                    Some(f) => f(response),
                    None => tracing::warn!(shard = self.me, id, "rpc reply to no call"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three pretend shards, each owning a counter; calls add to a shard's
    /// counter and answer its new value.
    #[test]
    fn calls_are_answered_in_order_per_shard_and_at_once_locally() {
        let bus: ManualBus<RpcMessage<u64, (usize, u64)>> = ManualBus::new(3);
        let rpcs: Vec<_> = (0..3)
            .map(|s| {
                let mut total = 0;
                Rpc::attach_manual(&bus, s, move |_from, add: u64| {
                    total += add;
                    (s, total)
                })
                .unwrap()
            })
            .collect();
        let got = Rc::new(RefCell::new(Vec::new()));
        for (shard, add) in [(1, 1), (2, 10), (1, 2), (0, 100), (2, 20)] {
            let got = got.clone();
            rpcs[0]
                .call(shard, add, move |r| got.borrow_mut().push(r))
                .unwrap();
        }
        // The local call was answered inside `call`; the others wait.
        assert_eq!(*got.borrow(), vec![(0, 100)]);
        assert_eq!(rpcs[0].in_flight(), 4);
        bus.pump();
        let got = got.borrow();
        let from = |s: usize| got.iter().filter(|r| r.0 == s).copied().collect::<Vec<_>>();
        assert_eq!(
            from(1),
            vec![(1, 1), (1, 3)],
            "shard 1 served in call order"
        );
        assert_eq!(from(2), vec![(2, 10), (2, 30)]);
        assert_eq!(rpcs[0].in_flight(), 0);
    }

    #[test]
    fn a_call_to_no_such_shard_is_an_error_and_leaves_nothing_pending() {
        let bus: ManualBus<RpcMessage<u8, u8>> = ManualBus::new(2);
        let rpc = Rpc::attach_manual(&bus, 0, |_, r| r).unwrap();
        let err = rpc.call(5, 1, |_| panic!("no reply")).unwrap_err();
        assert_eq!(
            err,
            BusError::NoSuchShard {
                shard: 5,
                shards: 2
            }
        );
        assert_eq!(rpc.in_flight(), 0);
    }
}
