//! [`Pacer`]: how long the bridge waits between Redis commands, from the
//! rate of lines it carries.
//!
//! Every command costs Redis CPU and every wait costs latency. At a low
//! rate the wait is short (250 µs: a line is not held back for a batch
//! that will not come); as the rate rises the wait grows with it (300 ns
//! per line per second, at most 3 ms), so a batch holds more lines: at
//! 10,000 lines/s a node writes one entry and makes one read every 3 ms,
//! about 0.07 commands per line for the pair (measured in BENCHMARKS.md:
//! 250 ns gave 0.094, too close to the 0.1 goal). The rate is measured
//! over 100 ms and smoothed (half the old estimate, half the new).

use std::time::{Duration, Instant};

/// The shortest wait between commands.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_micros(250);
/// The longest wait between commands.
pub(crate) const MAX_INTERVAL: Duration = Duration::from_millis(3);
/// The wait per line per second.
const NANOS_PER_RATE: f64 = 300.0;
const PERIOD: Duration = Duration::from_millis(100);

/// Lines-per-second estimate and the interval it calls for.
#[derive(Debug)]
pub(crate) struct Pacer {
    since: Instant,
    lines: u64,
    rate: f64,
}

impl Pacer {
    pub fn new(now: Instant) -> Pacer {
        Pacer {
            since: now,
            lines: 0,
            rate: 0.0,
        }
    }

    /// `n` lines went through at `now`.
    pub fn note(&mut self, n: u64, now: Instant) {
        self.lines += n;
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed >= PERIOD {
            let rate = self.lines as f64 / elapsed.as_secs_f64();
            self.rate = if elapsed >= PERIOD * 10 {
                rate
            } else {
                (self.rate + rate) / 2.0
            };
            self.lines = 0;
            self.since = now;
        }
    }

    /// The smoothed rate, in lines per second.
    #[cfg(test)]
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// How long to wait between commands at the current rate.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos((self.rate * NANOS_PER_RATE) as u64).clamp(MIN_INTERVAL, MAX_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(rate: u64) -> Pacer {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0);
        // Two seconds at `rate`, noted every millisecond.
        for ms in 1..=2000u64 {
            p.note(rate / 1000, t0 + Duration::from_millis(ms));
        }
        p
    }

    #[test]
    fn the_wait_grows_with_the_rate_between_its_bounds() {
        assert_eq!(steady(0).interval(), MIN_INTERVAL);
        assert_eq!(steady(500).interval(), MIN_INTERVAL);
        let p = steady(5_000);
        assert!((p.rate() - 5_000.0).abs() < 100.0, "{}", p.rate());
        let i = p.interval();
        assert!(
            i > Duration::from_micros(1450) && i < Duration::from_micros(1550),
            "{i:?}"
        );
        assert_eq!(steady(100_000).interval(), MAX_INTERVAL);
    }

    #[test]
    fn a_long_silence_resets_the_estimate() {
        let t0 = Instant::now();
        let mut p = steady(20_000);
        assert_eq!(p.interval(), MAX_INTERVAL);
        p.note(1, t0 + Duration::from_secs(60));
        assert_eq!(p.interval(), MIN_INTERVAL);
    }
}
