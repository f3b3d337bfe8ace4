//! Writing one metric family — a name, its help, its type, and one sample
//! per label set (usually one per shard) — with `prometheus-client`'s
//! encoder. Collectors (the runtime's and the protocols') build their
//! families from counters read at scrape time through these helpers.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::counters::{HistogramSnapshot, LATENCY_BUCKETS};

/// A sample's labels: `(name, value)` pairs, e.g. `[("shard", "0")]`.
pub type Labels = Vec<(&'static str, String)>;

/// `[("shard", id)]`.
pub fn shard_label(shard: usize) -> Labels {
    vec![("shard", shard.to_string())]
}

/// A counter family: `name` gets `_<unit>` (if any) and `_total`.
pub fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    samples: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    numbers(encoder, (name, help, unit), MetricType::Counter, samples)
}

/// A gauge family: `name` gets `_<unit>` (if any).
pub fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    samples: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    numbers(encoder, (name, help, unit), MetricType::Gauge, samples)
}

/// A counter or gauge family of whole numbers.
fn numbers(
    encoder: &mut DescriptorEncoder,
    (name, help, unit): (&str, &str, Option<Unit>),
    kind: MetricType,
    samples: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), kind)?;
    for (labels, value) in samples {
        let mut sample = family.encode_family(&labels)?;
        match kind {
            MetricType::Counter => sample.encode_counter::<NoLabelSet, _, u64>(&value, None)?,
            _ => sample.encode_gauge(&value)?,
        }
    }
    Ok(())
}

/// A latency histogram family in seconds (`name` gets `_seconds`), with
/// the [`LATENCY_BUCKETS`] bounds.
pub fn latency_histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, HistogramSnapshot)>,
) -> fmt::Result {
    let mut family =
        encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, snapshot) in samples {
        // The encoder adds the buckets up itself: hand it each bucket's own
        // count, not the cumulative one.
        let mut below = 0;
        let buckets: Vec<(f64, u64)> = snapshot
            .buckets(&LATENCY_BUCKETS)
            .into_iter()
            .map(|(le, cumulative)| {
                let own = cumulative.saturating_sub(below);
                below = below.max(cumulative);
                (le, own)
            })
            .collect();
        family
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(
                snapshot.sum_seconds(),
                snapshot.count(),
                &buckets,
                None,
            )?;
    }
    Ok(())
}
