//! What a shard asks of another and waits for, as awaited calls (an
//! [`Rpc`]): may this client have this name (asked of the name's owner
//! shard), and which names does each shard hold (asked of every shard, for
//! `/who`).
//!
//! A client's claim or `/who` is a future on its connection's task
//! ([`FrameHandler::poll_future`](crate::FrameHandler::poll_future)): the
//! client's reading pauses while it runs, so a client has at most one in
//! flight and its next lines wait in its socket. Clustered, the owner's
//! answer itself waits for Redis (through the node's bridge), and `/who`
//! waits for the other nodes' names too.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use torsion::Rpc;

use super::message::ClaimOutcome;

/// A question for another shard's room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomRequest {
    /// To a name's owner shard: may connection `conn` of the asking shard
    /// hold `name`?
    Claim {
        /// The name.
        name: String,
        /// The claiming client's connection id on the asking shard.
        conn: u64,
    },
    /// Which names do your clients hold?
    Names,
}

/// A room's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomAnswer {
    /// To a claim.
    Claim(ClaimOutcome),
    /// The shard's names, space-separated (built once per change and
    /// shared by every answer).
    Names(Bytes),
}

/// The calls between the shards' rooms.
pub type RoomRpc = Rpc<RoomRequest, RoomAnswer>;

/// A client's request under way, polled on its connection's task.
pub(crate) type PendingRequest = Pin<Box<dyn Future<Output = ()>>>;

/// Polls a connection's request under way, if any (dropped once done):
/// `Ready` when none is left.
pub(crate) fn poll_request(
    request: &mut Option<PendingRequest>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<()> {
    let Some(pending) = request else {
        return std::task::Poll::Ready(());
    };
    let done = pending.as_mut().poll(cx);
    if done.is_ready() {
        *request = None;
    }
    done
}

/// Asks `name`'s owner whether connection `conn` here may hold it.
pub(crate) async fn claim(
    rpc: &Rc<RoomRpc>,
    owner: usize,
    name: String,
    conn: u64,
) -> ClaimOutcome {
    match rpc.call(owner, RoomRequest::Claim { name, conn }).await {
        Ok(RoomAnswer::Claim(outcome)) => outcome,
        // The owner shard stopped (the server is stopping): no name now.
        Ok(RoomAnswer::Names(_)) | Err(_) => ClaimOutcome::Unavailable,
    }
}

/// Every shard's names (a shard that could not answer holds none).
pub(crate) async fn every_shards_names(rpc: &Rc<RoomRpc>) -> Vec<Bytes> {
    rpc.call_all(RoomRequest::Names)
        .await
        .into_iter()
        .filter_map(|answer| match answer {
            Ok(RoomAnswer::Names(names)) => Some(names),
            _ => None,
        })
        .collect()
}
