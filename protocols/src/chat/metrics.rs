//! Chat's metrics, per shard: clients connected, named users, messages
//! sent by this shard's clients, deliveries (lines queued to a reader, from
//! any shard). Each room keeps its counters in `ShardCounter`s it alone
//! writes (a plain store per message and per fan-out, never per reader);
//! a [`ChatMetrics`] registered with a `torsion::metrics::Metrics` reads
//! them at scrape time.

use std::fmt;
use std::sync::{Arc, OnceLock};

use torsion::counters::{PerShard, ShardCounter};
#[cfg(feature = "metrics")]
use torsion::metrics::family::{counter, gauge, shard_label};
#[cfg(feature = "metrics")]
use torsion::metrics::prometheus_client::encoding::DescriptorEncoder;
#[cfg(feature = "metrics")]
use torsion::metrics::{encode_bus, Collector};
use torsion::{Bus, BusShardStats};

use super::cluster::ClusterStats;
use super::message::ChatMessage;

/// Reads the chat bus's per-shard traffic.
type BusReader = Box<dyn Fn() -> Vec<BusShardStats> + Send + Sync>;

/// One shard's chat counters (written by that shard's room only).
#[derive(Debug, Default)]
pub struct ChatShardStats {
    clients: ShardCounter,
    users: ShardCounter,
    messages: ShardCounter,
    deliveries: ShardCounter,
}

impl ChatShardStats {
    /// Clients connected now (named or not).
    pub fn clients(&self) -> u64 {
        self.clients.get()
    }
    /// Named users now.
    pub fn users(&self) -> u64 {
        self.users.get()
    }
    /// Messages this shard's clients sent (each counted once, however many
    /// read it).
    pub fn messages(&self) -> u64 {
        self.messages.get()
    }
    /// Lines queued to readers on this shard (one per reader per message).
    pub fn deliveries(&self) -> u64 {
        self.deliveries.get()
    }

    pub(crate) fn set_clients(&self, n: usize) {
        self.clients.set(n as u64);
    }
    pub(crate) fn set_users(&self, n: usize) {
        self.users.set(n as u64);
    }
    pub(crate) fn message_sent(&self) {
        self.messages.add(1);
    }
    pub(crate) fn delivered(&self, readers: usize) {
        self.deliveries.add(readers as u64);
    }
}

/// Chat metrics of every shard of a server: give it to
/// [`ChatConfig::with_metrics`](super::ChatConfig::with_metrics) and
/// register it with a `Metrics`. Cheap to clone; clones are the same set.
#[derive(Clone, Default)]
pub struct ChatMetrics {
    shards: PerShard<ChatShardStats>,
    /// The server's bus (`bus="chat"`), once [`start_chat_server`] made it.
    ///
    /// [`start_chat_server`]: super::start_chat_server
    bus: Arc<OnceLock<BusReader>>,
    /// The node's cluster counters and its key, when it is clustered.
    cluster: Arc<OnceLock<(Arc<ClusterStats>, String)>>,
}

impl fmt::Debug for ChatMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatMetrics")
            .field("shards", &self.shards.shards().len())
            .finish_non_exhaustive()
    }
}

/// Equal when the same set (configs compare by identity here).
impl PartialEq for ChatMetrics {
    fn eq(&self, other: &Self) -> bool {
        self.shards.same_set(&other.shards)
    }
}
impl Eq for ChatMetrics {}

impl ChatMetrics {
    /// No shard yet: each room registers when it is made.
    pub fn new() -> ChatMetrics {
        ChatMetrics::default()
    }

    /// Every shard's counters, in shard order.
    pub fn shards(&self) -> Vec<(usize, Arc<ChatShardStats>)> {
        self.shards.shards()
    }

    pub(crate) fn register(&self, shard: usize) -> Arc<ChatShardStats> {
        self.shards.register(shard)
    }

    /// Reports `bus`'s traffic too (the first bus given; later ones are
    /// ignored: one chat server per set).
    pub fn attach_bus(&self, bus: &Bus<ChatMessage>) {
        let bus = bus.clone();
        let _ = self.bus.set(Box::new(move || bus.shard_stats()));
    }

    /// Reports a cluster node's counters too (label `node`; the first
    /// given is kept).
    pub fn attach_cluster(&self, stats: Arc<ClusterStats>, node: String) {
        let _ = self.cluster.set((stats, node));
    }
}

#[cfg(feature = "metrics")]
impl Collector for ChatMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let shards = self.shards();
        let per_shard = |f: fn(&ChatShardStats) -> u64| {
            shards
                .iter()
                .map(|(shard, s)| (shard_label(*shard), f(s)))
                .collect::<Vec<_>>()
        };
        gauge(
            &mut e,
            "torsion_chat_clients",
            "Chat clients connected (named or not).",
            None,
            per_shard(ChatShardStats::clients),
        )?;
        gauge(
            &mut e,
            "torsion_chat_users",
            "Named chat users.",
            None,
            per_shard(ChatShardStats::users),
        )?;
        counter(
            &mut e,
            "torsion_chat_messages",
            "Chat messages sent by this shard's clients.",
            None,
            per_shard(ChatShardStats::messages),
        )?;
        counter(
            &mut e,
            "torsion_chat_deliveries",
            "Chat lines queued to readers on this shard (one per reader per message).",
            None,
            per_shard(ChatShardStats::deliveries),
        )?;
        if let Some(read) = self.bus.get() {
            encode_bus(&mut e, "chat", &read())?;
        }
        match self.cluster.get() {
            Some((stats, node)) => stats.encode(&mut e, node),
            None => Ok(()),
        }
    }
}
