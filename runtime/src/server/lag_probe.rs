//! The reactor-lag probe: how late a shard's timers fire.
//!
//! One task per shard (when the server is built with
//! [`ServerBuilder::reactor_lag_probe`](crate::ServerBuilder::reactor_lag_probe))
//! sleeps on a glommio `Timer` for the interval, then records how long
//! after its deadline it actually ran. On an idle shard that is the
//! timer's own granularity (tens of microseconds); on a shard whose tasks
//! hog the CPU it is how long everything scheduled on the shard waits —
//! connection callbacks, `call_later`, the bus — the number that tells an
//! operator a shard is overloaded (Node's `monitorEventLoopDelay`, tokio's
//! scheduling delay). Each tick also publishes every latency recorder of
//! the shard (see `histogram.rs`), so scrapes see a quiet shard's last
//! records within one interval.

use std::time::{Duration, Instant};

use crate::counters::histogram::{publish_all_on_this_thread, LatencyHistogram};

/// The probe's interval when `--metrics` turns it on.
pub const DEFAULT_LAG_PROBE: Duration = Duration::from_millis(100);

/// Runs the probe on the current shard until cancelled.
pub(crate) async fn run_probe(interval: Duration, histogram: LatencyHistogram) {
    let recorder = histogram.recorder();
    loop {
        let due = Instant::now() + interval;
        glommio::timer::Timer::new(interval).await;
        let now = Instant::now();
        recorder.record_at(now.saturating_duration_since(due), now);
        publish_all_on_this_thread();
    }
}
