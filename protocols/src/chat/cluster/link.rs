//! [`ClusterLink`]: a shard's end of its node's cluster bridge.
// Without the `cluster` feature nothing makes a link: a room's cluster
// branch stays, unused.
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};

use super::stats::ClusterStats;
use crate::chat::message::ClaimOutcome;

/// Where the bridge answers a claim (the shard that owns the name awaits it).
pub(crate) type ClaimAnswer = torsion::oneshot::Sender<ClaimOutcome>;

/// Where the bridge answers a `/who` (the asking shard awaits it).
pub(crate) type WhoAnswer = torsion::oneshot::Sender<OtherNodes>;

/// The names held on every other live node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherNodes {
    /// Space-separated names.
    pub names: Bytes,
    /// False when Redis could not be asked (then `names` is empty and the
    /// list a shard shows is incomplete).
    pub reachable: bool,
}

/// What a shard asks of its node's bridge.
#[derive(Debug)]
pub(crate) enum Request {
    /// A line a client here sent: for every other node.
    Line(Bytes),
    /// Claim `name` in Redis for this node; the outcome goes to `answer`.
    Claim { name: String, answer: ClaimAnswer },
    /// This node no longer holds `name`.
    Release { name: String },
    /// The names on every other live node, for a `/who`.
    Who(WhoAnswer),
}

/// Stops the bridge's writer when the last link is dropped (when the last
/// shard's room goes, at shutdown) and waits for it to give its names
/// back.
pub(crate) struct BridgeGuard {
    pub(crate) writer: Option<JoinHandle<()>>,
}

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            // The writer ends when every sender is gone; this guard goes
            // with the last one (see `ClusterLink`'s field order).
            let _ = w.join();
        }
    }
}

/// A shard's end of its node's cluster bridge: `Send`, cheap to clone;
/// sending never blocks (an unbounded channel the bridge drains).
#[derive(Clone)]
pub struct ClusterLink {
    // Field order matters: the sender drops before the guard, so the
    // writer sees its channel close before the guard waits for it.
    tx: Sender<Request>,
    stats: Arc<ClusterStats>,
    _guard: Option<Arc<BridgeGuard>>,
}

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLink")
            .field("queued", &self.tx.len())
            .finish()
    }
}

impl ClusterLink {
    pub(crate) fn new(
        tx: Sender<Request>,
        stats: Arc<ClusterStats>,
        guard: Arc<BridgeGuard>,
    ) -> ClusterLink {
        ClusterLink {
            tx,
            stats,
            _guard: Some(guard),
        }
    }

    /// A link with no bridge behind it: what shards send arrives on the
    /// returned receiver (for tests of the room's side).
    #[cfg(test)]
    pub(crate) fn manual() -> (ClusterLink, Receiver<Request>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let link = ClusterLink {
            tx,
            stats: Arc::new(ClusterStats::default()),
            _guard: None,
        };
        (link, rx)
    }

    /// The node's cluster counters.
    pub fn stats(&self) -> &Arc<ClusterStats> {
        &self.stats
    }

    fn send(&self, request: Request) {
        // The bridge's receiver lives as long as any link (the writer
        // holds it until every sender is gone), so this cannot fail
        // while the writer runs; if the writer died, say so.
        if self.tx.send(request).is_err() {
            tracing::error!("chat cluster bridge is gone; request dropped");
        }
    }

    pub(crate) fn line(&self, line: Bytes) {
        self.send(Request::Line(line));
    }

    /// Claims `name` in Redis for this node: the outcome, when Redis
    /// answers (`Unavailable` while it cannot be asked, or if the bridge is
    /// gone).
    pub(crate) async fn claim(&self, name: String) -> ClaimOutcome {
        let (answer, outcome) = torsion::oneshot::channel();
        self.send(Request::Claim { name, answer });
        outcome.await.unwrap_or(ClaimOutcome::Unavailable)
    }

    pub(crate) fn release(&self, name: String) {
        self.send(Request::Release { name });
    }

    /// Asks for the other nodes' names now; the answer comes through the
    /// returned receiver.
    pub(crate) fn who(&self) -> torsion::oneshot::Receiver<OtherNodes> {
        let (answer, names) = torsion::oneshot::channel();
        self.send(Request::Who(answer));
        names
    }
}

/// The bridge's end: what shards send.
pub(crate) type Requests = Receiver<Request>;
