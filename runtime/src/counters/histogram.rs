//! Latency histograms a shard records without locks and a scraper reads.
//!
//! A [`LatencyHistogram`] is an HdrHistogram (microseconds, 2 significant
//! digits, 1 µs to 1 hour) behind a mutex that only two parties take: a
//! *publish* from the recording shard, and a scrape. The shard never records
//! into it directly: it records into its own [`LatencyRecorder`] (a local
//! HdrHistogram in a `RefCell`, no lock, no atomic) and merges what it holds
//! into the shared one at most every [`PUBLISH_EVERY`] — when a record finds
//! the last publish that old, when the shard's reactor-lag probe ticks
//! (every recorder of the shard is published then, so a quiet shard's last
//! records are seen within one tick), and when the recorder is dropped.
//! So a request pays a local histogram increment; the lock is taken at most
//! ten times a second per recorder, never contended by another shard.
//!
//! Prometheus wants cumulative buckets; [`HistogramSnapshot::buckets`]
//! counts the recorded values at or below each bound ([`LATENCY_BUCKETS`]:
//! 100 µs to 10 s). A value within 1% above a bound (the histogram's
//! precision) may count as at it; the sum is exact (kept in nanoseconds
//! beside the histogram).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Upper bounds (seconds) of the buckets latency histograms are exported
/// with: from 100 µs (a healthy reactor's timer lag, a fast request) to 10 s.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How stale a shard's published histogram may get while it records.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Largest value recorded (1 hour, in µs); larger ones are clamped to it.
const MAX_MICROS: u64 = 3_600_000_000;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    (d.as_micros().min(MAX_MICROS as u128) as u64).max(1)
}

#[derive(Debug)]
struct Totals {
    histogram: Histogram<u64>,
    sum_nanos: u64,
}

/// One shard's latency histogram as scrapers see it. Cheap to clone;
/// `Send + Sync`.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    shared: Arc<Mutex<Totals>>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> LatencyHistogram {
        LatencyHistogram {
            shared: Arc::new(Mutex::new(Totals {
                histogram: new_histogram(),
                sum_nanos: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Totals> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The recording end, for the shard that owns this histogram (call on
    /// that shard: the recorder is `!Send` and registers with the shard's
    /// publisher).
    pub fn recorder(&self) -> LatencyRecorder {
        let inner = Rc::new(RecorderInner {
            local: RefCell::new(new_histogram()),
            sum_nanos: Cell::new(0),
            last_publish: Cell::new(Instant::now()),
            shared: self.clone(),
        });
        RECORDERS.with(|r| {
            let mut list = r.borrow_mut();
            list.retain(|w| w.strong_count() > 0);
            list.push(Rc::downgrade(&inner));
        });
        LatencyRecorder { inner }
    }

    /// What has been published so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let totals = self.lock();
        HistogramSnapshot {
            histogram: totals.histogram.clone(),
            sum_nanos: totals.sum_nanos,
        }
    }
}

/// A copy of a latency histogram at one moment.
#[derive(Debug, Clone)]
pub struct HistogramSnapshot {
    histogram: Histogram<u64>,
    sum_nanos: u64,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        HistogramSnapshot {
            histogram: new_histogram(),
            sum_nanos: 0,
        }
    }
}

impl HistogramSnapshot {
    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The sum of the recorded values, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos as f64 / 1e9
    }

    /// The value at quantile `q` (0.0..=1.0), to 1% precision.
    pub fn value_at_quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.histogram.value_at_quantile(q))
    }

    /// Cumulative counts at each bound (seconds): Prometheus's `le` buckets
    /// (the `+Inf` bucket is [`count`](Self::count)).
    pub fn buckets(&self, bounds: &[f64]) -> Vec<(f64, u64)> {
        bounds
            .iter()
            .map(|&le| {
                // Values in the bucket holding the bound count as at it.
                let top = (le * 1e6) as u64;
                (le, self.histogram.count_between(0, top))
            })
            .collect()
    }
}

thread_local! {
    /// The recorders living on this thread (shard), for the lag probe's
    /// periodic publish.
    static RECORDERS: RefCell<Vec<Weak<RecorderInner>>> = const { RefCell::new(Vec::new()) };
}

/// Publishes every recorder living on the calling thread.
pub(crate) fn publish_all_on_this_thread() {
    let live: Vec<Rc<RecorderInner>> = RECORDERS.with(|r| {
        let mut list = r.borrow_mut();
        list.retain(|w| w.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    });
    let now = Instant::now();
    for recorder in live {
        recorder.publish(now);
    }
}

struct RecorderInner {
    local: RefCell<Histogram<u64>>,
    sum_nanos: Cell<u64>,
    last_publish: Cell<Instant>,
    shared: LatencyHistogram,
}

impl RecorderInner {
    fn publish(&self, now: Instant) {
        self.last_publish.set(now);
        let mut local = self.local.borrow_mut();
        if local.is_empty() {
            return;
        }
        let mut totals = self.shared.lock();
        let _ = totals.histogram.add(&*local);
        totals.sum_nanos = totals.sum_nanos.saturating_add(self.sum_nanos.replace(0));
        drop(totals);
        local.reset();
    }
}

impl Drop for RecorderInner {
    fn drop(&mut self) {
        self.publish(Instant::now());
    }
}

/// A shard's recording end of a [`LatencyHistogram`]: records without a
/// lock; publishes at most every [`PUBLISH_EVERY`]. `!Send`; cheap to clone
/// (clones record into the same local histogram).
#[derive(Clone)]
pub struct LatencyRecorder {
    inner: Rc<RecorderInner>,
}

impl std::fmt::Debug for LatencyRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyRecorder")
            .field("pending", &self.inner.local.borrow().len())
            .finish()
    }
}

impl LatencyRecorder {
    /// Records the time from `start` to `end` (`end` also decides whether
    /// it is time to publish, so recording reads no clock).
    pub fn record_between(&self, start: Instant, end: Instant) {
        self.record_at(end.saturating_duration_since(start), end);
    }

    /// Records `value`, observed at `now`.
    pub fn record_at(&self, value: Duration, now: Instant) {
        let inner = &*self.inner;
        // Clamped to the histogram's range: recording cannot fail.
        let _ = inner.local.borrow_mut().record(micros(value));
        let nanos = value.as_nanos().min(u64::MAX as u128) as u64;
        inner
            .sum_nanos
            .set(inner.sum_nanos.get().saturating_add(nanos));
        if now.saturating_duration_since(inner.last_publish.get()) >= PUBLISH_EVERY {
            inner.publish(now);
        }
    }

    /// Publishes what this recorder holds now.
    pub fn publish(&self) {
        self.inner.publish(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_reach_the_shared_histogram_when_published() {
        let h = LatencyHistogram::new();
        let r = h.recorder();
        let t0 = Instant::now();
        r.record_at(Duration::from_micros(300), t0);
        r.record_at(Duration::from_millis(3), t0);
        assert_eq!(h.snapshot().count(), 0, "not published yet");
        r.publish();
        let s = h.snapshot();
        assert_eq!(s.count(), 2);
        assert!((s.sum_seconds() - 0.0033).abs() < 1e-9);
        let b = s.buckets(&LATENCY_BUCKETS);
        assert_eq!(b[0], (0.0001, 0));
        assert_eq!(b[2], (0.0005, 1));
        assert_eq!(b[4], (0.0025, 1));
        assert_eq!(b[5], (0.005, 2));
        assert_eq!(b.last().unwrap().1, 2);
    }

    #[test]
    fn a_record_publishes_when_the_last_publish_is_old_enough() {
        let h = LatencyHistogram::new();
        let r = h.recorder();
        let later = Instant::now() + PUBLISH_EVERY;
        r.record_at(Duration::from_micros(50), later);
        assert_eq!(h.snapshot().count(), 1);
    }

    #[test]
    fn the_thread_publish_and_drop_publish() {
        let h = LatencyHistogram::new();
        let r = h.recorder();
        r.record_at(Duration::from_micros(10), Instant::now());
        publish_all_on_this_thread();
        assert_eq!(h.snapshot().count(), 1);
        r.record_at(Duration::from_micros(10), Instant::now());
        drop(r);
        assert_eq!(h.snapshot().count(), 2);
    }

    #[test]
    fn extreme_values_are_clamped_not_lost() {
        let h = LatencyHistogram::new();
        let r = h.recorder();
        r.record_at(Duration::ZERO, Instant::now());
        r.record_at(Duration::from_secs(100 * 365 * 24 * 3600), Instant::now());
        r.publish();
        let s = h.snapshot();
        assert_eq!(s.count(), 2);
        assert_eq!(s.buckets(&LATENCY_BUCKETS)[0].1, 1);
        assert_eq!(s.buckets(&LATENCY_BUCKETS).last().unwrap().1, 1);
    }
}
