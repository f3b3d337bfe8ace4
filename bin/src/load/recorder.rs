//! What one load shard measures: two latency histograms (corrected for
//! coordinated omission, and raw service time), per-second intervals, and
//! errors by kind.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use torsion::DisconnectReason;

/// Highest latency the histograms track: one hour, in nanoseconds.
pub const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// How many distinct error texts (server errors, framing causes) a recorder
/// keeps; later ones are counted under [`OTHER_TEXTS`].
pub const MAX_TEXTS: usize = 16;
/// Where texts past [`MAX_TEXTS`] are counted.
pub const OTHER_TEXTS: &str = "(other texts)";

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
    /// HTTP: responses whose status `--accept` does not list.
    #[serde(default)]
    pub status: u64,
    /// Redis: `-ERR …` replies.
    #[serde(default)]
    pub server: u64,
    /// Requests still in flight on a connection given up after an error
    /// (an unframeable response, an early close): never answered.
    #[serde(default)]
    pub abandoned: u64,
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
        self.status += other.status;
        self.server += other.server;
        self.abandoned += other.abandoned;
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
            + self.status
            + self.server
            + self.abandoned
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
    /// Corrected latency and completions per row (targets, then Redis
    /// commands; see `Conn::take_responses`).
    pub rows: Vec<(Histogram<u64>, u64)>,
    /// HTTP: responses by status class, 1xx … 5xx.
    pub statuses: [u64; 5],
    /// Redis: `-ERR` texts and how often each came.
    pub server_errors: BTreeMap<String, u64>,
    /// Why responses could not be framed, and how often.
    pub frame_errors: BTreeMap<String, u64>,
    /// Churn: connections opened after the first (one per reconnect).
    pub reconnects: u64,
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
            rows: Vec::new(),
            statuses: [0; 5],
            server_errors: BTreeMap::new(),
            frame_errors: BTreeMap::new(),
            reconnects: 0,
        }
    }
}

/// A server error's text without what varies per command: Redis's
/// `, with args beginning with: …`, and anything past 120 characters.
pub fn error_kind(text: &str) -> String {
    let text = text.trim_end();
    let text = match text.find(", with args beginning with:") {
        Some(i) => &text[..i],
        None => text,
    };
    match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Counts `text` in `texts`, keeping at most [`MAX_TEXTS`] distinct ones.
fn count_text(texts: &mut BTreeMap<String, u64>, text: &str, n: u64) {
    if let Some(count) = texts.get_mut(text) {
        *count += n;
    } else if texts.len() < MAX_TEXTS {
        texts.insert(text.to_owned(), n);
    } else {
        *texts.entry(OTHER_TEXTS.to_owned()).or_default() += n;
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

    /// Records one completion's corrected latency in row `row` too.
    pub fn record_row(&mut self, row: usize, corrected: Duration) {
        if self.rows.len() <= row {
            self.rows.resize_with(row + 1, || (histogram(), 0));
        }
        let c = (corrected.as_nanos() as u64).clamp(1, MAX_LATENCY_NS);
        let (h, n) = &mut self.rows[row];
        let _ = h.record(c);
        *n += 1;
    }

    /// Counts an HTTP response's status; one `--accept` does not list is an
    /// error.
    pub fn status(&mut self, status: u16, accepted: bool) {
        if let Some(n) = self.statuses.get_mut((status / 100) as usize - 1) {
            *n += 1;
        }
        if !accepted {
            self.errors.status += 1;
        }
    }

    /// Counts a server's refusal (`-ERR …`) with its text, without the
    /// arguments Redis quotes back (so one kind of refusal is one line).
    pub fn server_error(&mut self, text: &str) {
        self.errors.server += 1;
        count_text(&mut self.server_errors, &error_kind(text), 1);
    }

    /// Counts a response that could not be framed, with why.
    pub fn frame_error(&mut self, cause: &str) {
        self.errors.frame += 1;
        count_text(&mut self.frame_errors, cause, 1);
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
        self.reconnects += other.reconnects;
        if self.rows.len() < other.rows.len() {
            self.rows.resize_with(other.rows.len(), || (histogram(), 0));
        }
        for ((h, n), (oh, on)) in self.rows.iter_mut().zip(&other.rows) {
            let _ = h.add(oh);
            *n += on;
        }
        for (mine, theirs) in self.statuses.iter_mut().zip(other.statuses) {
            *mine += theirs;
        }
        for (text, n) in &other.server_errors {
            count_text(&mut self.server_errors, text, *n);
        }
        for (text, n) in &other.frame_errors {
            count_text(&mut self.frame_errors, text, *n);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_grouped_by_kind() {
        let mut r = Recorder::default();
        for arg in 0..100 {
            r.server_error(&format!(
                "ERR unknown command 'NOSUCH', with args beginning with: '{arg}' "
            ));
        }
        r.server_error("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert_eq!(r.errors.server, 101);
        assert_eq!(r.server_errors["ERR unknown command 'NOSUCH'"], 100);
        assert_eq!(r.server_errors.len(), 2);
        assert_eq!(error_kind(&"x".repeat(200)).chars().count(), 121);
    }

    #[test]
    fn texts_past_the_limit_are_counted_together() {
        let mut r = Recorder::default();
        for k in 0..MAX_TEXTS + 5 {
            r.frame_error(&format!("cause {k}"));
        }
        assert_eq!(r.frame_errors.len(), MAX_TEXTS + 1);
        assert_eq!(r.frame_errors[OTHER_TEXTS], 5);
        assert_eq!(r.errors.frame, (MAX_TEXTS + 5) as u64);
    }
}
