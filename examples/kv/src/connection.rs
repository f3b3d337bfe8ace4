//! One client connection, as a loop: commands in, replies out in command
//! order.
//!
//! Each turn takes every command already received (at most
//! [`MAX_WAITING`], so a pipeline cannot grow memory without bound): a
//! command whose keys live on this shard is answered on the spot while
//! nothing earlier still waits; any other becomes a call to its keys'
//! shard ([`Rpc::call`], sent at once). Then the turn awaits those calls in
//! command order and writes each reply as it comes (a fast shard's answer
//! waits for a slower one asked earlier, as it must). The write waits
//! while the client does not read its replies (the transport's high-water
//! mark), and the next turn does not start until then: a deaf client
//! stops being read.
//!
//! Effects keep command order too: calls from one shard to another are
//! served in the order they were made, and a key always lives on the same
//! shard.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use torsion::{Connection, Rpc, RpcCall, RpcError};
use torsion_protocols::codec::resp::reply;
use torsion_protocols::codec::resp::{RespCodec, RespError};

use crate::command::{encode, plan, Join, Plan};
use crate::metrics::KvShardStats;
use crate::store::{Answer, Op, Store};

/// Most commands a turn takes before it answers them.
pub const MAX_WAITING: usize = 1024;

/// Replies gathered in a turn are written out at this size.
const FLUSH_AT: usize = 64 * 1024;

/// What every connection of a shard shares.
pub struct ShardKv {
    /// This shard's keys.
    pub store: Rc<std::cell::RefCell<Store>>,
    /// Calls to the shards that own other keys.
    pub rpc: Rc<Rpc<Op, Answer>>,
    /// How many shards own keys.
    pub shards: usize,
    /// This shard's counters.
    pub stats: Arc<KvShardStats>,
}

/// A reply in the making.
enum Pending {
    /// Known already.
    Ready(Bytes),
    /// One shard's answer.
    Call(usize, RpcCall<Answer>),
    /// A command spread over shards: their answers, each with the places
    /// of its keys in the reply, and how they join.
    Spread(Vec<(usize, RpcCall<Answer>, Vec<usize>)>, Join, usize),
}

/// Serves one connection until the client quits, closes or breaks the
/// protocol.
pub async fn serve(conn: Connection, shard: Rc<ShardKv>) {
    let mut frames = conn.framed(RespCodec::new());
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut out = BytesMut::new();
    let mut closing = false;
    while !closing {
        // Wait for a command, then take the others already here.
        let Some(first) = frames.next().await else {
            break;
        };
        let now = Instant::now();
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Ok(args) if args.is_empty() => {}
                Ok(args) => {
                    closing = run(&shard, args, now, &mut pending, &mut out);
                }
                Err(RespError::Protocol(message)) => {
                    let mut bytes = BytesMut::new();
                    reply::error(&mut bytes, &format!("ERR Protocol error: {message}"));
                    answer_now(&mut pending, &mut out, bytes.freeze());
                    closing = true;
                }
                Err(RespError::Frame(_)) => closing = true,
            }
            if closing || pending.len() >= MAX_WAITING || out.len() >= FLUSH_AT {
                break;
            }
            next = frames.try_next();
        }
        // Answer in command order.
        while let Some(reply) = pending.pop_front() {
            write_reply(reply, &mut out).await;
            if out.len() >= FLUSH_AT && send(&frames, &mut out).await.is_err() {
                return;
            }
        }
        if !out.is_empty() && send(&frames, &mut out).await.is_err() {
            return;
        }
    }
}

/// Writes what is gathered (waiting while the client is behind).
async fn send<D>(
    frames: &torsion::Frames<D>,
    out: &mut BytesMut,
) -> Result<(), torsion::WriteError> {
    frames.connection().write_bytes(out.split().freeze()).await
}

/// A reply known now: straight out, unless an earlier one still waits.
fn answer_now(pending: &mut VecDeque<Pending>, out: &mut BytesMut, bytes: Bytes) {
    if pending.is_empty() {
        out.extend_from_slice(&bytes);
    } else {
        pending.push_back(Pending::Ready(bytes));
    }
}

/// Runs one command: answered now, or a call under way. True after `QUIT`.
fn run(
    shard: &ShardKv,
    args: Vec<Bytes>,
    now: Instant,
    pending: &mut VecDeque<Pending>,
    out: &mut BytesMut,
) -> bool {
    let me = shard.rpc.shard_id();
    shard.stats.commands.add(1);
    match plan(args, shard.shards) {
        Plan::Reply(bytes) => answer_now(pending, out, bytes),
        Plan::Quit => {
            answer_now(pending, out, Bytes::from_static(b"+OK\r\n"));
            return true;
        }
        Plan::One(owner, Op::Get(key)) if owner == me && pending.is_empty() => {
            let mut store = shard.store.borrow_mut();
            store.read(&key, now, |value| reply::bulk(out, value));
        }
        Plan::One(owner, op) if owner == me && pending.is_empty() => {
            let mut store = shard.store.borrow_mut();
            let answer = store.apply(op, now);
            shard.stats.keys.set(store.len() as u64);
            encode(&answer, out);
        }
        Plan::One(owner, op) => pending.push_back(Pending::Call(owner, call(shard, owner, op))),
        Plan::Spread(parts, join, width) => {
            let calls = parts
                .into_iter()
                .map(|(owner, op, places)| (owner, call(shard, owner, op), places))
                .collect();
            pending.push_back(Pending::Spread(calls, join, width));
        }
    }
    false
}

fn call(shard: &ShardKv, owner: usize, op: Op) -> RpcCall<Answer> {
    if owner != shard.rpc.shard_id() {
        shard.stats.remote_calls.add(1);
    }
    shard.rpc.call(owner, op)
}

/// Awaits one reply and encodes it.
async fn write_reply(reply: Pending, out: &mut BytesMut) {
    let answer = match reply {
        Pending::Ready(bytes) => return out.extend_from_slice(&bytes),
        Pending::Call(owner, call) => match call.await {
            Ok(answer) => answer,
            Err(e) => return unavailable(out, owner, &e),
        },
        Pending::Spread(calls, join, width) => {
            let mut sum = 0;
            let mut values: Vec<Option<Bytes>> = vec![None; width];
            let mut error = None;
            for (owner, call, places) in calls {
                match call.await {
                    Ok(Answer::Int(n)) => sum += n,
                    Ok(Answer::Values(got)) => {
                        for (place, v) in places.iter().zip(got) {
                            values[*place] = v;
                        }
                    }
                    Ok(Answer::Error(e)) => error = Some(e),
                    Ok(Answer::Ok | Answer::Value(_)) => {}
                    Err(e) => return unavailable(out, owner, &e),
                }
            }
            match (error, join) {
                (Some(e), _) => Answer::Error(e),
                (None, Join::Sum) => Answer::Int(sum),
                (None, Join::AllOk) => Answer::Ok,
                (None, Join::Values) => Answer::Values(values),
            }
        }
    };
    encode(&answer, out);
}

/// The reply for a call that got no answer (its shard stopped).
fn unavailable(out: &mut BytesMut, owner: usize, e: &RpcError) {
    reply::error(out, &format!("ERR shard {owner} unavailable: {e}"));
}
