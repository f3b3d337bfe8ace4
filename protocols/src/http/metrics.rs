//! HTTP's metrics: responses by status class and how long requests took,
//! per shard.
//!
//! A request's duration runs from the moment its head and body were read
//! whole (when it is dispatched to its handler) to the moment its response
//! head is written to the transport: the handler's time and the wait behind
//! earlier pipelined responses, not the transfer of a streamed body.
//! Refusals (400, 408, 413, 431, …) are counted by status class and not
//! timed. Counting is a plain store to a per-shard `ShardCounter`; timing records
//! into the shard's own HdrHistogram (see `torsion::metrics`), with one
//! clock reading per dispatched request and one per batch of responses
//! written in a turn. With no [`HttpMetrics`] in the config nothing is
//! counted and no clock is read.

#[cfg(feature = "metrics")]
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use torsion::counters::{
    HistogramSnapshot, LatencyHistogram, LatencyRecorder, PerShard, ShardCounter,
};
#[cfg(feature = "metrics")]
use torsion::metrics::family::{counter, latency_histogram, Labels};
#[cfg(feature = "metrics")]
use torsion::metrics::prometheus_client::encoding::DescriptorEncoder;
#[cfg(feature = "metrics")]
use torsion::metrics::Collector;

#[cfg(feature = "metrics")]
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One shard's HTTP counters (written by that shard only).
#[derive(Debug, Default)]
pub struct HttpShardStats {
    by_class: [ShardCounter; 5],
    duration: LatencyHistogram,
}

impl HttpShardStats {
    /// Responses written with a status in `class` (1 to 5: 1xx … 5xx).
    pub fn responses(&self, class: usize) -> u64 {
        class
            .checked_sub(1)
            .and_then(|i| self.by_class.get(i))
            .map_or(0, ShardCounter::get)
    }

    /// Request durations published so far (see the module docs).
    pub fn request_durations(&self) -> HistogramSnapshot {
        self.duration.snapshot()
    }
}

/// HTTP metrics of every shard of a server: give it to
/// [`HttpConfig::with_metrics`](super::HttpConfig) and register it with a
/// [`Metrics`](torsion::metrics::Metrics). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HttpMetrics {
    shards: PerShard<HttpShardStats>,
}

impl HttpMetrics {
    /// No shard yet: each shard registers when its factory is built.
    pub fn new() -> HttpMetrics {
        HttpMetrics::default()
    }

    /// Every shard's counters, in shard order.
    pub fn shards(&self) -> Vec<(usize, Arc<HttpShardStats>)> {
        self.shards.shards()
    }

    /// The recording end for the calling shard.
    pub(crate) fn for_shard(&self, shard: usize) -> ShardHttpMetrics {
        let stats = self.shards.register(shard);
        ShardHttpMetrics {
            recorder: stats.duration.recorder(),
            stats,
        }
    }
}

#[cfg(feature = "metrics")]
impl Collector for HttpMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let shards = self.shards();
        let by_class = shards.iter().flat_map(|(shard, s)| {
            CLASSES.iter().enumerate().map(move |(i, class)| {
                let labels: Labels =
                    vec![("shard", shard.to_string()), ("code", class.to_string())];
                (labels, s.by_class[i].get())
            })
        });
        counter(
            &mut e,
            "torsion_http_responses",
            "HTTP responses written, by status class (code=\"2xx\" …), refusals included.",
            None,
            by_class,
        )?;
        latency_histogram(
            &mut e,
            "torsion_http_request_duration",
            "From a request read whole to its response head written (handler time and pipeline wait).",
            shards
                .iter()
                .map(|(shard, s)| (vec![("shard", shard.to_string())], s.duration.snapshot())),
        )
    }
}

/// A shard's recording end (`!Send`).
pub(crate) struct ShardHttpMetrics {
    stats: Arc<HttpShardStats>,
    recorder: LatencyRecorder,
}

impl ShardHttpMetrics {
    /// A response with `status` was written; its request was dispatched at
    /// `dispatched` (none for refusals), and `now` is the time of writing.
    pub(crate) fn responded(&self, status: StatusCode, dispatched: Option<Instant>, now: Instant) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.stats.by_class[class].add(1);
        if let Some(start) = dispatched {
            self.recorder.record_between(start, now);
        }
    }
}
