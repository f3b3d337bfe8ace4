//! Numbers a shard writes without locks and others read: the bottom layer,
//! imported by every subsystem that counts (the bus, the server's stats,
//! protocols) and by `metrics/`, which encodes them for scrapes. Nothing
//! here imports another module of the crate.
//!
//! | file | what |
//! |---|---|
//! | `shard_counter.rs` | [`ShardCounter`]: a relaxed atomic one shard writes with a plain store |
//! | `per_shard.rs` | [`PerShard`]: a protocol's per-shard counters, registered by each shard at start |
//! | `histogram.rs` | [`LatencyHistogram`], [`LatencyRecorder`]: HdrHistograms recorded on a shard without locks, published for scrapes |

pub(crate) mod histogram;
mod per_shard;
mod shard_counter;

pub use histogram::{
    HistogramSnapshot, LatencyHistogram, LatencyRecorder, LATENCY_BUCKETS, PUBLISH_EVERY,
};
pub use per_shard::PerShard;
pub use shard_counter::ShardCounter;
