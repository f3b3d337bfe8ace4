//! Metrics a monitoring system can scrape: Prometheus's text format,
//! encoded by the `prometheus-client` crate.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Metrics`]: what is registered, and encoding a scrape |
//! | `family.rs` | helpers that write one family (counter, gauge, latency histogram) with its labelled samples |
//! | `runtime_collectors.rs` | the server's, a bus's and a blocking pool's collectors |
//!
//! The counters and histograms themselves live a layer below, in
//! [`crate::counters`] ([`ShardCounter`](crate::counters::ShardCounter),
//! [`LatencyHistogram`](crate::counters::LatencyHistogram)), so the
//! subsystems that count never import the module that encodes.
//!
//! # Nothing on the shards' hot paths
//!
//! A scrape never asks a shard for anything. Everything it reports is
//! already kept where the shard writes it without a lock: counters are
//! relaxed atomics each written by one shard only (the server's
//! [`ShardStats`](crate::ShardStats), the bus's per-inbox counts,
//! protocols' own per-shard counters), read at scrape time by
//! [`Collector`]s; latency histograms are recorded into shard-local
//! HdrHistograms and merged into a shared copy at most every 100 ms (see
//! `histogram.rs`). The encoding runs on the thread that serves the scrape
//! (the metrics endpoint's own shard, see `torsion_protocols::metrics`).
//!
//! # Names
//!
//! Every family starts with `torsion_`; counters end in `_total`, byte
//! counts in `_bytes_total`, durations are histograms in `_seconds`; per
//! shard samples carry a `shard` label. A protocol adds its own families
//! (`torsion_http_…`, `torsion_chat_…`) by registering a [`Collector`].
//!
//! ```
//! use torsion::metrics::Metrics;
//!
//! let metrics = Metrics::new();
//! metrics.register_default_blocking_pool();
//! let text = metrics.encode();
//! assert!(text.contains("# TYPE torsion_blocking_pool_queue_depth gauge"));
//! ```

pub mod family;
mod runtime_collectors;

use std::sync::{Arc, Mutex};

/// The encoding crate, for users writing their own [`Collector`]s.
pub use prometheus_client;
pub use prometheus_client::collector::Collector;

use crate::blocking::BlockingPool;
use crate::bus::Bus;
use crate::server::StatsReader;
pub use runtime_collectors::encode_bus;
use runtime_collectors::{BusCollector, PoolCollector, PoolSource, ServerCollector};

/// The `Content-Type` of what [`Metrics::encode`] returns (Prometheus text
/// format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What a scrape reports: a set of collectors, each read at scrape time.
/// Cheap to clone; `Send + Sync` (the registry's lock is taken by
/// registration and by scrapes, never by a shard).
#[derive(Clone, Default)]
pub struct Metrics {
    registry: Arc<Mutex<prometheus_client::registry::Registry>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// An empty set.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, prometheus_client::registry::Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a collector: its `encode` runs at every scrape.
    pub fn register_collector(&self, collector: impl Collector) {
        self.registry().register_collector(Box::new(collector));
    }

    /// Reports a server's shards (from
    /// [`ServerHandle::stats_reader`](crate::ServerHandle::stats_reader)):
    /// connections accepted, refused by cause, open, closed by reason, bytes,
    /// panics, slow consumers cut, TLS failures, reactor lag.
    pub fn register_server(&self, stats: StatsReader) {
        self.register_collector(ServerCollector { stats });
    }

    /// Reports a bus's traffic per shard, labelled `bus="<name>"`.
    pub fn register_bus<M: Send + 'static>(&self, name: &str, bus: &Bus<M>) {
        let bus = bus.clone();
        self.register_collector(BusCollector {
            name: name.to_string(),
            read: Box::new(move || bus.shard_stats()),
        });
    }

    /// Reports a blocking pool's threads and queue, labelled `pool="<name>"`.
    pub fn register_blocking_pool(&self, name: &str, pool: &BlockingPool) {
        self.register_collector(PoolCollector {
            name: name.to_string(),
            source: PoolSource::Pool(pool.clone()),
        });
    }

    /// Reports [`defer_to_thread`](crate::defer_to_thread)'s pool
    /// (`pool="default"`; zeros until something uses it).
    pub fn register_default_blocking_pool(&self) {
        self.register_collector(PoolCollector {
            name: "default".into(),
            source: PoolSource::Default,
        });
    }

    /// One scrape: every collector's families in the Prometheus text format
    /// (0.0.4; see [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; a collector's own fmt::Error
        // would end the scrape where it happened.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry());
        out
    }
}
