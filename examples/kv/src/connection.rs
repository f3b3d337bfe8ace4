//! One client connection: commands in, replies out in command order.
//!
//! Each command gets its reply at once when its keys live on this shard
//! (written straight into the connection's output while nothing earlier
//! is still waiting); otherwise it takes a *slot* in the connection's
//! queue and its shard's answer fills the slot when it comes back over the
//! bus ([`Rpc`]). Replies leave in slot order: a fast shard's answer waits
//! for a slower one asked earlier, so pipelining keeps its order however
//! the keys are spread. At most [`MAX_WAITING`] slots wait; past that the
//! connection stops reading until they drain, and it stops reading too
//! while the client does not read its replies (the transport's high-water
//! mark), so neither a pipeline nor a deaf client grows memory without
//! bound.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use torsion::{Protocol, Rpc, Transport};
use torsion_protocols::codec::resp::reply;
use torsion_protocols::codec::{Decoder, RespCodec, RespError};

use crate::command::{encode, plan, Join, Plan};
use crate::metrics::KvShardStats;
use crate::store::{Answer, Op, Store};

/// Most replies waiting for other shards before reading pauses.
pub const MAX_WAITING: usize = 1024;

/// Replies gathered in one read are handed to the transport at this size.
const FLUSH_AT: usize = 64 * 1024;

/// What every connection of a shard shares.
pub struct ShardKv {
    /// This shard's keys.
    pub store: Rc<RefCell<Store>>,
    /// Calls to the other shards.
    pub rpc: Rc<Rpc<Op, Answer>>,
    /// How many shards own keys.
    pub shards: usize,
    /// This shard's counters.
    pub stats: Arc<KvShardStats>,
}

struct Conn {
    transport: Transport,
    /// Replies in command order: `None` until its answer arrives.
    slots: RefCell<VecDeque<Option<Bytes>>>,
    /// The number of the slot at the front.
    front: Cell<u64>,
    /// Replies ready to send, in order.
    out: RefCell<BytesMut>,
    /// Close once the slots are all sent (after QUIT or a protocol error).
    closing: Cell<bool>,
    paused: Cell<bool>,
}

impl Conn {
    fn waiting(&self) -> bool {
        !self.slots.borrow().is_empty()
    }

    fn push_slot(&self) -> u64 {
        let mut slots = self.slots.borrow_mut();
        slots.push_back(None);
        self.front.get() + slots.len() as u64 - 1
    }

    /// Queues `bytes` as the next reply (directly when nothing waits).
    fn reply_now(&self, bytes: &[u8]) {
        if self.waiting() {
            let id = self.push_slot();
            self.fill(id, Bytes::copy_from_slice(bytes));
        } else {
            self.out.borrow_mut().extend_from_slice(bytes);
        }
    }

    fn fill(&self, id: u64, bytes: Bytes) {
        let mut slots = self.slots.borrow_mut();
        if let Some(slot) = id
            .checked_sub(self.front.get())
            .and_then(|i| slots.get_mut(i as usize))
        {
            *slot = Some(bytes);
        }
    }

    /// Sends the ready replies at the front; closes or resumes reading
    /// when it is time.
    fn flush(&self) {
        {
            let mut slots = self.slots.borrow_mut();
            let mut out = self.out.borrow_mut();
            while let Some(Some(_)) = slots.front() {
                let bytes = slots.pop_front().flatten().expect("checked");
                self.front.set(self.front.get() + 1);
                out.extend_from_slice(&bytes);
            }
            if !out.is_empty() {
                let _ = self.transport.write_bytes(out.split().freeze());
            }
        }
        if self.closing.get() && !self.waiting() {
            self.transport.close();
        } else if self.paused.get()
            && self.slots.borrow().len() < MAX_WAITING / 2
            && !self.transport.is_writing_paused()
        {
            self.paused.set(false);
            self.transport.resume_reading();
        }
    }
}

/// The protocol of one connection.
pub struct KvConnection {
    shard: Rc<ShardKv>,
    codec: RespCodec,
    conn: Option<Rc<Conn>>,
}

impl KvConnection {
    /// A connection served by `shard`.
    pub fn new(shard: Rc<ShardKv>) -> KvConnection {
        KvConnection {
            shard,
            codec: RespCodec::new(),
            conn: None,
        }
    }

    /// Runs one command; `now` is the time of the read it came in (one
    /// clock reading per read, as Redis reads the clock once per event
    /// loop turn for its expiry checks).
    fn run(&self, conn: &Rc<Conn>, args: Vec<Bytes>, now: Instant) {
        let me = self.shard.rpc.shard_id();
        self.shard.stats.commands.add(1);
        match plan(args, self.shard.shards) {
            Plan::Reply(bytes) => conn.reply_now(&bytes),
            Plan::Quit => {
                conn.reply_now(b"+OK\r\n");
                conn.closing.set(true);
            }
            Plan::One(shard, Op::Get(key)) if shard == me && !conn.waiting() => {
                let mut out = conn.out.borrow_mut();
                let mut store = self.shard.store.borrow_mut();
                store.read(&key, now, |value| reply::bulk(&mut out, value));
            }
            Plan::One(shard, op) if shard == me && !conn.waiting() => {
                let mut store = self.shard.store.borrow_mut();
                let answer = store.apply(op, now);
                self.shard.stats.keys.set(store.len() as u64);
                encode(&answer, &mut conn.out.borrow_mut());
            }
            Plan::One(shard, op) => {
                let id = conn.push_slot();
                let target = Rc::downgrade(conn);
                self.call(conn, id, shard, op, move |answer| {
                    if let Some(conn) = target.upgrade() {
                        let mut out = BytesMut::new();
                        encode(&answer, &mut out);
                        conn.fill(id, out.freeze());
                        conn.flush();
                    }
                });
            }
            Plan::Spread(parts, join, width) => {
                let id = conn.push_slot();
                let joined = Rc::new(Joined {
                    conn: Rc::downgrade(conn),
                    id,
                    join,
                    remaining: Cell::new(parts.len()),
                    sum: Cell::new(0),
                    values: RefCell::new(vec![None; width]),
                    error: Cell::new(None),
                });
                for (shard, op, places) in parts {
                    let joined = joined.clone();
                    self.call(conn, id, shard, op, move |answer| {
                        joined.add(answer, &places)
                    });
                }
            }
        }
    }

    /// Calls `shard`; a call the bus refuses (a shard stopped) answers the
    /// slot with an error instead of leaving it waiting forever.
    fn call(
        &self,
        conn: &Rc<Conn>,
        id: u64,
        shard: usize,
        op: Op,
        on_reply: impl FnOnce(Answer) + 'static,
    ) {
        if shard != self.shard.rpc.shard_id() {
            self.shard.stats.remote_calls.add(1);
        }
        if let Err(e) = self.shard.rpc.call(shard, op, on_reply) {
            let mut out = BytesMut::new();
            reply::error(&mut out, &format!("ERR shard {shard} unavailable: {e}"));
            conn.fill(id, out.freeze());
        }
    }
}

/// A command spread over shards, waiting for their answers.
struct Joined {
    conn: std::rc::Weak<Conn>,
    id: u64,
    join: Join,
    remaining: Cell<usize>,
    sum: Cell<i64>,
    values: RefCell<Vec<Option<Bytes>>>,
    error: Cell<Option<&'static str>>,
}

impl Joined {
    fn add(&self, answer: Answer, places: &[usize]) {
        match answer {
            Answer::Int(n) => self.sum.set(self.sum.get() + n),
            Answer::Values(values) => {
                let mut all = self.values.borrow_mut();
                for (place, v) in places.iter().zip(values) {
                    all[*place] = v;
                }
            }
            Answer::Error(e) => self.error.set(Some(e)),
            Answer::Ok | Answer::Value(_) => {}
        }
        self.remaining.set(self.remaining.get() - 1);
        if self.remaining.get() > 0 {
            return;
        }
        let Some(conn) = self.conn.upgrade() else {
            return;
        };
        let answer = match (self.error.get(), self.join) {
            (Some(e), _) => Answer::Error(e),
            (None, Join::Sum) => Answer::Int(self.sum.get()),
            (None, Join::AllOk) => Answer::Ok,
            (None, Join::Values) => Answer::Values(std::mem::take(&mut self.values.borrow_mut())),
        };
        let mut out = BytesMut::new();
        encode(&answer, &mut out);
        conn.fill(self.id, out.freeze());
        conn.flush();
    }
}

impl Protocol for KvConnection {
    fn connection_made(&mut self, transport: &Transport) {
        self.conn = Some(Rc::new(Conn {
            transport: transport.clone(),
            slots: RefCell::new(VecDeque::new()),
            front: Cell::new(0),
            out: RefCell::new(BytesMut::new()),
            closing: Cell::new(false),
            paused: Cell::new(false),
        }));
    }

    fn data_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        let Some(conn) = self.conn.clone() else {
            data.clear();
            return;
        };
        let now = Instant::now();
        while !conn.closing.get() {
            if conn.slots.borrow().len() >= MAX_WAITING || transport.is_writing_paused() {
                conn.paused.set(true);
                transport.pause_reading();
                break;
            }
            match self.codec.decode(data) {
                Ok(Some(args)) if args.is_empty() => {}
                Ok(Some(args)) => {
                    self.run(&conn, args, now);
                    // Hand big output to the transport as it grows, so its
                    // high-water mark (checked above) sees it.
                    if conn.out.borrow().len() >= FLUSH_AT {
                        conn.flush();
                    }
                }
                Ok(None) => break,
                Err(RespError::Protocol(message)) => {
                    let mut out = BytesMut::new();
                    reply::error(&mut out, &format!("ERR Protocol error: {message}"));
                    conn.reply_now(&out);
                    conn.closing.set(true);
                }
                Err(RespError::Frame(_)) => conn.closing.set(true),
            }
        }
        if conn.closing.get() {
            data.clear();
        }
        conn.flush();
    }

    fn resume_writing(&mut self, _transport: &Transport) {
        if let Some(conn) = &self.conn {
            conn.flush();
        }
    }
}
