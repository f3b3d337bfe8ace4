//! What one load shard measures: two latency histograms (corrected for
//! coordinated omission, and raw service time), per-second intervals, and
//! errors by kind.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use torsion::DisconnectReason;

/// Highest latency the histograms track: one hour, in nanoseconds.
pub const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// A latency histogram in nanoseconds, 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

/// Errors by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// Connections that could not be made.
    pub connect: u64,
    /// Responses whose bytes differ from what was sent.
    pub mismatch: u64,
    /// Connections the server closed before every response arrived.
    pub closed: u64,
    /// Connections reset by the server.
    pub reset: u64,
    /// Other I/O errors.
    pub io: u64,
    /// Requests never answered by the end of the run.
    pub timeout: u64,
    /// Responses that could not be framed.
    pub frame: u64,
    /// Chat: deliveries that never arrived.
    pub lost: u64,
    /// Chat: deliveries that arrived twice or out of order.
    pub reordered: u64,
    /// Chat: lines the generator did not expect.
    pub unexpected: u64,
}

impl ErrorCounts {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.mismatch += other.mismatch;
        self.closed += other.closed;
        self.reset += other.reset;
        self.io += other.io;
        self.timeout += other.timeout;
        self.frame += other.frame;
        self.lost += other.lost;
        self.reordered += other.reordered;
        self.unexpected += other.unexpected;
    }

    /// All errors.
    pub fn total(&self) -> u64 {
        self.connect
            + self.mismatch
            + self.closed
            + self.reset
            + self.io
            + self.timeout
            + self.frame
            + self.lost
            + self.reordered
            + self.unexpected
    }

    /// Counts an I/O error by kind.
    pub fn io_error(&mut self, err: &std::io::Error) {
        match err.kind() {
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => self.reset += 1,
            std::io::ErrorKind::UnexpectedEof => self.closed += 1,
            std::io::ErrorKind::TimedOut => self.timeout += 1,
            _ => self.io += 1,
        }
    }

    /// Counts a connection whose input ended before the load was done with
    /// it, by why it ended (`reason`: `None` while it is only half-closed,
    /// the peer's EOF): a reset, a timeout or another failure always counts;
    /// an orderly close (EOF) counts as an early close only if `unanswered`
    /// requests were still waiting for their answers.
    pub fn connection_ended(&mut self, reason: Option<&DisconnectReason>, unanswered: bool) {
        match reason {
            None | Some(DisconnectReason::Closed) | Some(DisconnectReason::Shutdown) => {
                if unanswered {
                    self.closed += 1;
                }
            }
            Some(DisconnectReason::Reset) => self.reset += 1,
            Some(DisconnectReason::TimedOut) => self.timeout += 1,
            Some(DisconnectReason::Io { kind, .. }) => self.io_error(&std::io::Error::from(*kind)),
            Some(_) => self.io += 1,
        }
    }
}

/// One shard's measurements.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latency from each request's intended send time.
    pub corrected: Histogram<u64>,
    /// Latency from each request's actual send time.
    pub uncorrected: Histogram<u64>,
    /// Corrected latency since the last interval was taken.
    pub interval: Histogram<u64>,
    /// Requests (messages) sent in the measured period.
    pub sent: u64,
    /// Responses (deliveries) recorded in the measured period.
    pub completed: u64,
    /// Completions since the last interval was taken.
    pub interval_completed: u64,
    /// Errors by kind.
    pub errors: ErrorCounts,
    /// Chat over several nodes: corrected latency of deliveries whose
    /// sender was on the receiver's node, and of the others.
    pub same_node: Histogram<u64>,
    /// See `same_node`.
    pub cross_node: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            corrected: histogram(),
            uncorrected: histogram(),
            interval: histogram(),
            sent: 0,
            completed: 0,
            interval_completed: 0,
            errors: ErrorCounts::default(),
            same_node: histogram(),
            cross_node: histogram(),
        }
    }
}

impl Recorder {
    /// Records one completion.
    pub fn record(&mut self, corrected: Duration, uncorrected: Duration) {
        let c = (corrected.as_nanos() as u64).clamp(1, MAX_LATENCY_NS);
        let u = (uncorrected.as_nanos() as u64).clamp(1, MAX_LATENCY_NS);
        let _ = self.corrected.record(c);
        let _ = self.uncorrected.record(u);
        let _ = self.interval.record(c);
        self.completed += 1;
        self.interval_completed += 1;
    }

    /// Records a delivery's corrected latency as same-node or cross-node.
    pub fn record_node(&mut self, same: bool, corrected: Duration) {
        let c = (corrected.as_nanos() as u64).clamp(1, MAX_LATENCY_NS);
        let h = if same {
            &mut self.same_node
        } else {
            &mut self.cross_node
        };
        let _ = h.record(c);
    }

    /// Takes the interval histogram and count, leaving them empty.
    pub fn take_interval(&mut self) -> (Histogram<u64>, u64) {
        let h = std::mem::replace(&mut self.interval, histogram());
        (h, std::mem::take(&mut self.interval_completed))
    }

    /// Merges another shard's measurements into this one.
    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.corrected.add(&other.corrected);
        let _ = self.uncorrected.add(&other.uncorrected);
        let _ = self.same_node.add(&other.same_node);
        let _ = self.cross_node.add(&other.cross_node);
        self.sent += other.sent;
        self.completed += other.completed;
        self.errors.add(&other.errors);
    }
}

/// One shard's figures for one second of the run, sent to the reporter.
#[derive(Debug)]
pub struct Interval {
    /// Which second (0 = the first measured second).
    pub index: u64,
    /// Corrected latencies of that second.
    pub histogram: Histogram<u64>,
    /// Completions in that second.
    pub completed: u64,
    /// Errors so far on the shard.
    pub errors: u64,
}
