//! The runtime's own collectors: a server's per-shard counters and reactor
//! lag, a bus's traffic, a blocking pool's load. Each reads, at scrape time,
//! what the shards already keep (relaxed single-writer atomics, published
//! histograms): a scrape takes no lock a shard's hot path takes and sends
//! the shards nothing.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::family::{counter, gauge, latency_histogram, shard_label, Labels};
use crate::blocking::{BlockingPool, BlockingPoolStats};
use crate::bus::BusShardStats;
use crate::connection::reason::DisconnectReason;
use crate::server::StatsReader;

fn with(mut labels: Labels, name: &'static str, value: impl ToString) -> Labels {
    labels.push((name, value.to_string()));
    labels
}

/// A server's shards: connections, bytes, panics, TLS, reactor lag.
#[derive(Debug)]
pub(crate) struct ServerCollector {
    pub(crate) stats: StatsReader,
}

impl Collector for ServerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let shards = self.stats.snapshot();
        let per_shard = |f: fn(&crate::ShardStatsSnapshot) -> u64| {
            shards
                .iter()
                .map(move |s| (shard_label(s.shard_id), f(s)))
                .collect::<Vec<_>>()
        };
        gauge(
            &mut e,
            "torsion_shard_info",
            "One per shard; the core it is pinned to is a label.",
            None,
            shards
                .iter()
                .map(|s| (with(shard_label(s.shard_id), "core", s.core), 1)),
        )?;
        counter(
            &mut e,
            "torsion_connections_accepted",
            "Connections accepted from the listener (including those then refused).",
            None,
            per_shard(|s| s.accepted),
        )?;
        let refused = shards.iter().flat_map(|s| {
            [
                ("protocol", s.refused),
                ("over_capacity", s.over_capacity),
                ("tls_handshake", s.tls_failures),
            ]
            .map(|(cause, n)| (with(shard_label(s.shard_id), "cause", cause), n))
        });
        counter(
            &mut e,
            "torsion_connections_refused",
            "Accepted connections turned away, by cause: the factory refused (protocol), a connection cap (over_capacity), a failed TLS handshake (tls_handshake).",
            None,
            refused,
        )?;
        gauge(
            &mut e,
            "torsion_connections_open",
            "Connections open now.",
            None,
            per_shard(|s| s.open_connections),
        )?;
        let closed = shards.iter().flat_map(|s| {
            DisconnectReason::NAMES
                .iter()
                .zip(s.closed)
                .map(|(reason, n)| (with(shard_label(s.shard_id), "reason", reason), n))
        });
        counter(
            &mut e,
            "torsion_connections_closed",
            "Connections ended, by reason (torsion's DisconnectReason).",
            None,
            closed,
        )?;
        counter(
            &mut e,
            "torsion_slow_consumers_cut",
            "Connections ended because the peer did not read its output (the outbound hard cap).",
            None,
            per_shard(|s| s.closed_by(&DisconnectReason::SlowConsumer)),
        )?;
        counter(
            &mut e,
            "torsion_accept_errors",
            "Failed accept calls (for example out of file descriptors).",
            None,
            per_shard(|s| s.accept_errors),
        )?;
        counter(
            &mut e,
            "torsion_received",
            "Bytes read from sockets.",
            Some(Unit::Bytes),
            per_shard(|s| s.bytes_in),
        )?;
        counter(
            &mut e,
            "torsion_sent",
            "Bytes written to sockets.",
            Some(Unit::Bytes),
            per_shard(|s| s.bytes_out),
        )?;
        counter(
            &mut e,
            "torsion_panics",
            "Panics caught in protocol, factory and timer code (each ended at most its connection).",
            None,
            per_shard(|s| s.panics),
        )?;
        counter(
            &mut e,
            "torsion_tls_handshake_failures",
            "TLS handshakes that failed or timed out.",
            None,
            per_shard(|s| s.tls_failures),
        )?;
        latency_histogram(
            &mut e,
            "torsion_reactor_lag",
            "How late the shard's probe timer fired: how long anything scheduled on the shard waits for it.",
            self.stats
                .reactor_lag()
                .into_iter()
                .enumerate()
                .map(|(shard, h)| (shard_label(shard), h)),
        )
    }
}

/// A bus's per-shard traffic.
pub(crate) struct BusCollector {
    pub(crate) name: String,
    pub(crate) read: Box<dyn Fn() -> Vec<BusShardStats> + Send + Sync>,
}

impl fmt::Debug for BusCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusCollector")
            .field("name", &self.name)
            .finish()
    }
}

impl Collector for BusCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        encode_bus(&mut e, &self.name, &(self.read)())
    }
}

/// Writes a bus's families (`torsion_bus_…`, labelled `bus="<name>"` and
/// by shard) from its [`Bus::shard_stats`](crate::Bus::shard_stats): for a
/// protocol's collector that owns a bus.
pub fn encode_bus(e: &mut DescriptorEncoder, name: &str, shards: &[BusShardStats]) -> fmt::Result {
    let labelled = |f: fn(&BusShardStats) -> u64| {
        shards
            .iter()
            .map(|s| (with(shard_label(s.shard), "bus", name), f(s)))
            .collect::<Vec<_>>()
    };
    counter(
        e,
        "torsion_bus_messages_sent",
        "Messages a shard sent over the bus (to any shard).",
        None,
        labelled(|s| s.sent),
    )?;
    counter(
        e,
        "torsion_bus_messages_received",
        "Messages a shard's bus handler was given.",
        None,
        labelled(|s| s.received),
    )?;
    gauge(
        e,
        "torsion_bus_inbox_depth",
        "Messages waiting in a shard's bus inbox.",
        None,
        labelled(|s| s.inbox_depth),
    )?;
    counter(
        e,
        "torsion_bus_wakeups",
        "Times a shard's bus receiver woke from its park.",
        None,
        labelled(|s| s.wake_ups),
    )
}

/// Where a pool collector finds its pool.
#[derive(Debug)]
pub(crate) enum PoolSource {
    /// A pool the user made.
    Pool(BlockingPool),
    /// `defer_to_thread`'s pool, once it exists.
    Default,
}

/// A blocking pool's load.
#[derive(Debug)]
pub(crate) struct PoolCollector {
    pub(crate) name: String,
    pub(crate) source: PoolSource,
}

impl Collector for PoolCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let stats = match &self.source {
            PoolSource::Pool(pool) => pool.stats(),
            PoolSource::Default => crate::blocking::default_pool()
                .map(BlockingPool::stats)
                .unwrap_or_default(),
        };
        let labels = || vec![("pool", self.name.clone())];
        let sample = |f: fn(&BlockingPoolStats) -> usize| [(labels(), f(&stats) as u64)];
        gauge(
            &mut e,
            "torsion_blocking_pool_threads",
            "Worker threads of a blocking pool.",
            None,
            sample(|s| s.threads),
        )?;
        gauge(
            &mut e,
            "torsion_blocking_pool_queue_depth",
            "Jobs queued for a blocking pool's threads and not yet taken.",
            None,
            sample(|s| s.queued),
        )?;
        gauge(
            &mut e,
            "torsion_blocking_pool_queue_capacity",
            "Room for queued jobs in a blocking pool.",
            None,
            sample(|s| s.queue_capacity),
        )
    }
}
