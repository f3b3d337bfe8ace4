//! Per-shard counters, readable from any thread through the server handle.
//!
//! Each shard owns one [`ShardStats`] and is its only writer; other threads
//! only read. The counters are relaxed atomics: a single writer needs no
//! read-modify-write ordering, and readers want a cheap, eventually exact
//! snapshot, not a lock on the hot path.
//!
//! A write is counted in `bytes_out` when the shard handles its completion,
//! which can come after the peer has already read the bytes: a snapshot of
//! a live server may trail the wire by the writes in flight. Once the
//! server has stopped (every shard joined) the counters are exact.

use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use crate::connection::reason::DisconnectReason;
use crate::counters::LatencyHistogram;

/// Live counters of one shard (written by that shard only).
#[derive(Debug, Default)]
pub struct ShardStats {
    open: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    closed: [AtomicU64; DisconnectReason::COUNT],
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    panics: AtomicU64,
    accept_errors: AtomicU64,
    over_capacity: AtomicU64,
    tls_failures: AtomicU64,
    thread_id: AtomicU64,
    /// How late the shard's timers fire (filled by the reactor-lag probe,
    /// when the server runs one).
    reactor_lag: LatencyHistogram,
}

impl ShardStats {
    pub(crate) fn connection_accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
    }
    pub(crate) fn connection_refused(&self) {
        self.refused.fetch_add(1, Relaxed);
    }
    pub(crate) fn connection_opened(&self) {
        self.open.fetch_add(1, Relaxed);
    }
    pub(crate) fn connection_closed(&self, reason: &DisconnectReason) {
        // Counted closed before it stops counting as open (and the open
        // count released after), so a reader that sees it gone from `open`
        // sees why it closed.
        self.closed[reason.index()].fetch_add(1, Relaxed);
        self.open.fetch_sub(1, Release);
    }
    pub(crate) fn add_bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Relaxed);
    }
    pub(crate) fn add_bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Relaxed);
    }
    pub(crate) fn panic_caught(&self) {
        self.panics.fetch_add(1, Relaxed);
    }
    pub(crate) fn accept_error(&self) {
        self.accept_errors.fetch_add(1, Relaxed);
    }
    pub(crate) fn over_capacity(&self) {
        self.over_capacity.fetch_add(1, Relaxed);
    }
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn tls_failure(&self) {
        self.tls_failures.fetch_add(1, Relaxed);
    }
    /// The shard's reactor-lag histogram (empty unless the server was built
    /// with [`ServerBuilder::reactor_lag_probe`](crate::ServerBuilder::reactor_lag_probe)).
    pub fn reactor_lag(&self) -> &LatencyHistogram {
        &self.reactor_lag
    }
    pub(crate) fn set_thread_id(&self, tid: u64) {
        self.thread_id.store(tid, Relaxed);
    }

    /// A point-in-time copy of the counters.
    pub fn snapshot(&self, shard_id: usize, core: usize) -> ShardStatsSnapshot {
        // `open` first (acquiring what its release published): every
        // connection that has left it is in `closed` below.
        let open_connections = self.open.load(Acquire);
        let mut closed = [0u64; DisconnectReason::COUNT];
        for (slot, counter) in closed.iter_mut().zip(&self.closed) {
            *slot = counter.load(Relaxed);
        }
        ShardStatsSnapshot {
            shard_id,
            core,
            thread_id: self.thread_id.load(Relaxed),
            open_connections,
            accepted: self.accepted.load(Relaxed),
            refused: self.refused.load(Relaxed),
            closed,
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            panics: self.panics.load(Relaxed),
            accept_errors: self.accept_errors.load(Relaxed),
            over_capacity: self.over_capacity.load(Relaxed),
            tls_failures: self.tls_failures.load(Relaxed),
        }
    }
}

/// A copy of one shard's counters at one moment. Its `Debug` output names
/// the reasons connections closed for (`closed: {"closed": 3, "reset": 1}`),
/// leaving out those that never happened.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ShardStatsSnapshot {
    /// The shard's id (`0..shard_count`).
    pub shard_id: usize,
    /// The core the shard is pinned to.
    pub core: usize,
    /// The Linux thread id (`gettid`) of the shard's thread.
    pub thread_id: u64,
    /// Connections currently open (accepted and not yet closed).
    pub open_connections: u64,
    /// Connections accepted from the listener (including refused ones).
    pub accepted: u64,
    /// Connections refused by `Factory::build_protocol` returning `None`.
    pub refused: u64,
    /// Closed connections by reason, indexed by [`DisconnectReason::index`].
    pub closed: [u64; DisconnectReason::COUNT],
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets (counted when the shard sees the write
    /// complete, so a live snapshot may trail what the peer has read).
    pub bytes_out: u64,
    /// Panics caught in protocol and factory code.
    pub panics: u64,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub accept_errors: u64,
    /// Connections turned away by `max_connections` or `max_per_ip`.
    pub over_capacity: u64,
    /// TLS handshakes that failed or timed out (the connection was closed).
    pub tls_failures: u64,
}

impl std::fmt::Debug for ShardStatsSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct ByReason<'a>(&'a [u64; DisconnectReason::COUNT]);
        impl std::fmt::Debug for ByReason<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_map()
                    .entries(
                        DisconnectReason::NAMES
                            .iter()
                            .zip(self.0)
                            .filter(|(_, n)| **n > 0),
                    )
                    .finish()
            }
        }
        f.debug_struct("ShardStatsSnapshot")
            .field("shard_id", &self.shard_id)
            .field("core", &self.core)
            .field("thread_id", &self.thread_id)
            .field("open_connections", &self.open_connections)
            .field("accepted", &self.accepted)
            .field("refused", &self.refused)
            .field("closed", &ByReason(&self.closed))
            .field("bytes_in", &self.bytes_in)
            .field("bytes_out", &self.bytes_out)
            .field("panics", &self.panics)
            .field("accept_errors", &self.accept_errors)
            .field("over_capacity", &self.over_capacity)
            .field("tls_failures", &self.tls_failures)
            .finish()
    }
}

impl ShardStatsSnapshot {
    /// Connections closed for `reason`'s kind.
    pub fn closed_by(&self, reason: &DisconnectReason) -> u64 {
        self.closed[reason.index()]
    }

    /// All closed connections.
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }

    /// Connections served by a protocol (accepted, neither refused nor over
    /// capacity).
    pub fn served(&self) -> u64 {
        // The counters are read one by one while the shard runs, so a
        // refusal may be counted before its acceptance: never underflow.
        self.accepted
            .saturating_sub(self.refused)
            .saturating_sub(self.over_capacity)
            .saturating_sub(self.tls_failures)
    }

    /// Adds another shard's counters into this one (for server totals).
    pub fn accumulate(&mut self, other: &ShardStatsSnapshot) {
        self.open_connections += other.open_connections;
        self.accepted += other.accepted;
        self.refused += other.refused;
        for (a, b) in self.closed.iter_mut().zip(other.closed) {
            *a += b;
        }
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.panics += other.panics;
        self.accept_errors += other.accept_errors;
        self.over_capacity += other.over_capacity;
        self.tls_failures += other.tls_failures;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_reasons() {
        let mut s = ShardStatsSnapshot::default();
        s.closed[DisconnectReason::Closed.index()] = 3;
        s.closed[DisconnectReason::SlowConsumer.index()] = 1;
        let text = format!("{s:?}");
        assert!(
            text.contains(r#"closed: {"closed": 3, "slow_consumer": 1}"#),
            "{text}"
        );
    }

    #[test]
    fn served_never_underflows_on_a_torn_snapshot() {
        // A snapshot can see a refusal before the acceptance it belongs to
        // (the counters are loaded one by one while the shard runs).
        let s = ShardStatsSnapshot {
            accepted: 1,
            refused: 1,
            over_capacity: 1,
            tls_failures: 1,
            ..ShardStatsSnapshot::default()
        };
        assert_eq!(s.served(), 0);
        let s = ShardStatsSnapshot {
            accepted: 10,
            refused: 2,
            over_capacity: 3,
            tls_failures: 1,
            ..ShardStatsSnapshot::default()
        };
        assert_eq!(s.served(), 4);
    }
}
