//! [`ClusterStats`]: what a node's cluster bridge counts, for `stats` and
//! the metrics endpoint.

#[cfg(feature = "metrics")]
use std::fmt;

use torsion::counters::{HistogramSnapshot, LatencyHistogram, ShardCounter};
#[cfg(feature = "metrics")]
use torsion::metrics::family::{counter, gauge, latency_histogram, Labels};
#[cfg(feature = "metrics")]
use torsion::metrics::prometheus_client::encoding::DescriptorEncoder;

/// A node's cluster counters. Each is a [`ShardCounter`] with one writer:
/// the bridge's writer thread writes the `writer_*`, line, name and lease
/// fields, its reader thread the `reader_*`, read and gap fields; anyone
/// reads.
#[derive(Debug, Default)]
pub struct ClusterStats {
    pub(crate) writer_up: ShardCounter,
    pub(crate) reader_up: ShardCounter,
    pub(crate) writer_reconnects: ShardCounter,
    pub(crate) reader_reconnects: ShardCounter,
    pub(crate) lines_sent: ShardCounter,
    pub(crate) entries_written: ShardCounter,
    pub(crate) lines_received: ShardCounter,
    pub(crate) entries_read: ShardCounter,
    pub(crate) reads: ShardCounter,
    pub(crate) writer_commands: ShardCounter,
    pub(crate) lines_dropped: ShardCounter,
    pub(crate) lines_missed: ShardCounter,
    pub(crate) duplicates: ShardCounter,
    pub(crate) backlog: ShardCounter,
    pub(crate) claims: ShardCounter,
    pub(crate) claims_unavailable: ShardCounter,
    pub(crate) names_held: ShardCounter,
    pub(crate) names_lost: ShardCounter,
    pub(crate) lease_lapses: ShardCounter,
    /// Time from a line's batch leaving its node to this node reading it
    /// (the nodes' clocks must agree, as NTP keeps them).
    pub(crate) lag: LatencyHistogram,
}

/// One reading of a node's [`ClusterStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterSnapshot {
    /// The writer's connection to Redis is up.
    pub writer_up: bool,
    /// The reader's connection to Redis is up.
    pub reader_up: bool,
    /// Connections to Redis made again after one was lost.
    pub reconnects: u64,
    /// This node's lines written to the stream.
    pub lines_sent: u64,
    /// Stream entries (batches of lines) this node wrote.
    pub entries_written: u64,
    /// Other nodes' lines delivered to this node's shards.
    pub lines_received: u64,
    /// Stream entries this node read (its own included).
    pub entries_read: u64,
    /// `XREAD` calls.
    pub reads: u64,
    /// Redis commands this node sent (both connections).
    pub commands: u64,
    /// This node's lines never sent: queued longer than the outage bound.
    pub lines_dropped: u64,
    /// Other nodes' lines this node never got (a gap in a sender's
    /// numbering: trimmed from the stream before it was read, or lost by a
    /// Redis restart).
    pub lines_missed: u64,
    /// Stream entries dropped as already delivered (a write retried after
    /// its reply was lost).
    pub duplicates: u64,
    /// Lines waiting to be written (while Redis is slow or down).
    pub backlog: u64,
    /// Name claims sent to Redis.
    pub claims: u64,
    /// Name claims refused because Redis was unreachable.
    pub claims_unavailable: u64,
    /// Names this node holds in Redis.
    pub names_held: u64,
    /// Names another node took while this node's lease had lapsed.
    pub names_lost: u64,
    /// Times this node found its lease lapsed and claimed its names again.
    pub lease_lapses: u64,
}

impl ClusterStats {
    /// The counters now.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let n = ShardCounter::get;
        ClusterSnapshot {
            writer_up: n(&self.writer_up) == 1,
            reader_up: n(&self.reader_up) == 1,
            reconnects: n(&self.writer_reconnects) + n(&self.reader_reconnects),
            lines_sent: n(&self.lines_sent),
            entries_written: n(&self.entries_written),
            lines_received: n(&self.lines_received),
            entries_read: n(&self.entries_read),
            reads: n(&self.reads),
            commands: n(&self.writer_commands) + n(&self.reads),
            lines_dropped: n(&self.lines_dropped),
            lines_missed: n(&self.lines_missed),
            duplicates: n(&self.duplicates),
            backlog: n(&self.backlog),
            claims: n(&self.claims),
            claims_unavailable: n(&self.claims_unavailable),
            names_held: n(&self.names_held),
            names_lost: n(&self.names_lost),
            lease_lapses: n(&self.lease_lapses),
        }
    }

    /// How long other nodes' lines took to reach this node (through
    /// Redis), as published so far.
    pub fn lag(&self) -> HistogramSnapshot {
        self.lag.snapshot()
    }

    /// Writes the node's cluster families (label `node`).
    #[cfg(feature = "metrics")]
    pub(crate) fn encode(&self, e: &mut DescriptorEncoder, node: &str) -> fmt::Result {
        let s = self.snapshot();
        let one = |v: u64| -> Vec<(Labels, u64)> { vec![(vec![("node", node.to_string())], v)] };
        gauge(
            e,
            "torsion_cluster_link_up",
            "Whether the node's writer and reader connections to Redis are up (2: both).",
            None,
            one(u64::from(s.writer_up) + u64::from(s.reader_up)),
        )?;
        let counters: [(&str, &str, u64); 13] = [
            (
                "torsion_cluster_reconnects",
                "Connections to Redis made again after one was lost.",
                s.reconnects,
            ),
            (
                "torsion_cluster_lines_sent",
                "This node's chat lines written to the stream.",
                s.lines_sent,
            ),
            (
                "torsion_cluster_entries_written",
                "Stream entries (batches of lines) this node wrote.",
                s.entries_written,
            ),
            (
                "torsion_cluster_lines_received",
                "Other nodes' chat lines delivered here.",
                s.lines_received,
            ),
            ("torsion_cluster_reads", "XREAD calls.", s.reads),
            (
                "torsion_cluster_commands",
                "Redis commands this node sent.",
                s.commands,
            ),
            (
                "torsion_cluster_lines_dropped",
                "This node's lines never sent: queued longer than the outage bound.",
                s.lines_dropped,
            ),
            (
                "torsion_cluster_lines_missed",
                "Other nodes' lines never received (gaps in a sender's numbering).",
                s.lines_missed,
            ),
            (
                "torsion_cluster_duplicates",
                "Stream entries dropped as already delivered.",
                s.duplicates,
            ),
            (
                "torsion_cluster_claims",
                "Name claims sent to Redis.",
                s.claims,
            ),
            (
                "torsion_cluster_claims_unavailable",
                "Name claims refused because Redis was unreachable.",
                s.claims_unavailable,
            ),
            (
                "torsion_cluster_names_lost",
                "Names another node took while this node's lease had lapsed.",
                s.names_lost,
            ),
            (
                "torsion_cluster_lease_lapses",
                "Times this node found its lease lapsed and claimed its names again.",
                s.lease_lapses,
            ),
        ];
        for (name, help, value) in counters {
            counter(e, name, help, None, one(value))?;
        }
        gauge(
            e,
            "torsion_cluster_backlog_lines",
            "Lines waiting to be written to Redis.",
            None,
            one(s.backlog),
        )?;
        gauge(
            e,
            "torsion_cluster_names_held",
            "Names this node holds in Redis.",
            None,
            one(s.names_held),
        )?;
        latency_histogram(
            e,
            "torsion_cluster_lag",
            "Time from a batch of lines leaving its node to this node reading it.",
            [(vec![("node", node.to_string())], self.lag())],
        )
    }
}
