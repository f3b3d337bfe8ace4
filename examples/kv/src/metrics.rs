//! The app's own metrics (served by `--metrics` beside the runtime's): per
//! shard, the commands its connections ran, the ops they sent to other
//! shards, and the keys it holds. A custom `prometheus-client` collector
//! over `ShardCounter`s, each written by its shard only.

use std::fmt;
use std::sync::Arc;

use torsion::counters::{PerShard, ShardCounter};
use torsion::metrics::family::{counter, gauge, shard_label};
use torsion::metrics::prometheus_client::encoding::DescriptorEncoder;
use torsion::metrics::Collector;

/// One shard's counters.
#[derive(Debug, Default)]
pub struct KvShardStats {
    /// Commands read from this shard's connections.
    pub commands: ShardCounter,
    /// Ops this shard's connections sent to other shards.
    pub remote_calls: ShardCounter,
    /// Keys this shard holds.
    pub keys: ShardCounter,
}

/// Every shard's counters; register with a `Metrics` to scrape them.
#[derive(Debug, Clone, Default)]
pub struct KvMetrics {
    shards: PerShard<KvShardStats>,
}

impl KvMetrics {
    /// The counters of `shard` (made on first use).
    pub fn register(&self, shard: usize) -> Arc<KvShardStats> {
        self.shards.register(shard)
    }
}

impl Collector for KvMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let shards = self.shards.shards();
        let per_shard = |f: fn(&KvShardStats) -> &ShardCounter| {
            shards
                .iter()
                .map(|(shard, s)| (shard_label(*shard), f(s).get()))
                .collect::<Vec<_>>()
        };
        counter(
            &mut e,
            "torsion_kv_commands",
            "Commands read from the shard's connections.",
            None,
            per_shard(|s| &s.commands),
        )?;
        counter(
            &mut e,
            "torsion_kv_remote_calls",
            "Ops the shard's connections sent to the shard owning their keys.",
            None,
            per_shard(|s| &s.remote_calls),
        )?;
        gauge(
            &mut e,
            "torsion_kv_keys",
            "Keys the shard holds (expired ones until touched or swept).",
            None,
            per_shard(|s| &s.keys),
        )
    }
}
