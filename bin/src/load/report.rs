//! The load report: what was offered and achieved, errors by kind, and the
//! latency spectrum corrected and uncorrected — printed for people, written
//! as JSON for tools.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::recorder::{ErrorCounts, Recorder};

/// Latency at the percentiles the report shows, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// 99.99th percentile.
    pub p9999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Percentiles {
    /// The 99th percentile in milliseconds, or `None` when nothing was
    /// measured (no samples: every field then reads 0, which is not a
    /// latency).
    pub fn p99_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.p99_us / 1000.0)
    }

    /// Reads the percentiles off a nanosecond histogram.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            p9999_us: us(h.value_at_quantile(0.9999)),
            max_us: us(h.max()),
        }
    }
}

/// Chat-only figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatFigures {
    /// Named clients.
    pub clients: usize,
    /// Of which sending.
    pub senders: usize,
    /// Messages sent in the whole run (warm-up included).
    pub messages_sent: u64,
    /// Deliveries due: messages × (clients − 1).
    pub deliveries_expected: u64,
    /// Deliveries that arrived.
    pub deliveries_received: u64,
    /// Measured deliveries per second.
    pub deliveries_per_second: f64,
}

/// What `render_into` writes, as a string.
pub fn render_with(render_into: impl FnOnce(&mut String) -> std::fmt::Result) -> String {
    let mut out = String::new();
    match render_into(&mut out) {
        Ok(()) => out,
        // A String takes every write; there is no error to see.
        Err(std::fmt::Error) => out,
    }
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json_file(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n")
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// One row of the per-target (or per-command) latency table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// A target as written, or a command template.
    pub name: String,
    /// Completions measured.
    pub completed: u64,
    /// Completions per second.
    pub achieved_rate: f64,
    /// Corrected latency.
    pub corrected: Percentiles,
}

/// A whole run's results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `echo` or `chat`.
    pub mode: String,
    /// The server.
    pub target: String,
    /// Connections (echo) or clients (chat).
    pub connections: usize,
    /// Framing (echo).
    pub framing: String,
    /// Payload bytes (echo).
    pub size: usize,
    /// Offered rate per second, or `None` for closed loop.
    pub offered_rate: Option<f64>,
    /// Closed loop: requests in flight per connection.
    pub pipeline: usize,
    /// Closed loop: the pipeline is sent in batches (the next when all are
    /// answered), not kept full.
    #[serde(default)]
    pub pipeline_batches: bool,
    /// Measured seconds.
    pub duration_s: f64,
    /// Warm-up seconds (excluded).
    pub warmup_s: f64,
    /// Requests (messages) sent in the measured period.
    pub sent: u64,
    /// Responses (deliveries) measured.
    pub completed: u64,
    /// Completions per second over the measured period.
    pub achieved_rate: f64,
    /// Errors by kind.
    pub errors: ErrorCounts,
    /// Latency from the intended send time.
    pub corrected: Percentiles,
    /// Latency from the actual send time.
    pub uncorrected: Percentiles,
    /// Chat over several nodes: corrected latency of same-node and of
    /// cross-node deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_node: Option<[Percentiles; 2]>,
    /// Chat figures.
    pub chat: Option<ChatFigures>,
    /// Redis: the key space, e.g. `100000 keys, uniform`, and data size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_space: Option<String>,
    /// Several targets: one row each, in `--target` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Row>,
    /// Redis: one row per command template, in `--command` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<Row>,
    /// HTTP: responses by status class, `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<[u64; 5]>,
    /// Redis: the servers' `-ERR` texts and how often each came.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_errors: BTreeMap<String, u64>,
    /// Why responses could not be framed, and how often.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub frame_errors: BTreeMap<String, u64>,
    /// Churn: the share of requests sent on a new connection, and the
    /// connections opened after the first ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn: Option<(f64, u64)>,
}

impl Report {
    /// True when any error was counted.
    pub fn has_errors(&self) -> bool {
        self.errors.total() > 0
    }

    /// Fills in the measured figures from the merged recorder.
    pub fn measured(&mut self, merged: &Recorder, measured_secs: f64) {
        self.sent = merged.sent;
        self.completed = merged.completed;
        self.achieved_rate = merged.completed as f64 / measured_secs.max(1e-9);
        self.errors = merged.errors.clone();
        self.corrected = Percentiles::of(&merged.corrected);
        self.uncorrected = Percentiles::of(&merged.uncorrected);
        self.server_errors = merged.server_errors.clone();
        self.frame_errors = merged.frame_errors.clone();
        if !merged.cross_node.is_empty() || !merged.same_node.is_empty() {
            self.by_node = Some([
                Percentiles::of(&merged.same_node),
                Percentiles::of(&merged.cross_node),
            ]);
        }
    }

    /// Rows named `names`, from the recorder's rows starting at `first`.
    pub fn rows(merged: &Recorder, first: usize, names: &[String], measured_secs: f64) -> Vec<Row> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (corrected, completed) = match merged.rows.get(first + i) {
                    Some((h, n)) => (Percentiles::of(h), *n),
                    None => (Percentiles::default(), 0),
                };
                Row {
                    name: name.clone(),
                    completed,
                    achieved_rate: completed as f64 / measured_secs.max(1e-9),
                    corrected,
                }
            })
            .collect()
    }

    /// The human report.
    pub fn render(&self) -> String {
        render_with(|out| self.render_into(out))
    }

    fn render_into(&self, out: &mut String) -> std::fmt::Result {
        let what = if self.mode == "chat" {
            "deliveries"
        } else {
            "requests"
        };
        writeln!(
            out,
            "torsion load {} → {}: {} {}, {:.1} s measured after {:.1} s warm-up",
            self.mode,
            self.target,
            self.connections,
            if self.mode == "chat" {
                "clients"
            } else {
                "connections"
            },
            self.duration_s,
            self.warmup_s
        )?;
        if let Some(keys) = &self.key_space {
            writeln!(out, "  {keys}, {} B of data", self.size)?;
        }
        if self.mode == "echo" || self.mode == "echo-udp" {
            writeln!(
                out,
                "  framing {}, {} B per request",
                self.framing, self.size
            )?;
        }
        if let Some(c) = &self.chat {
            // Chat speaks of messages (sent) and deliveries (received); the
            // measured window and the whole run are kept apart.
            let offered = self.offered_rate.unwrap_or_default();
            writeln!(
                out,
                "  {} senders; offered {offered:.0} messages/s (open loop)",
                c.senders
            )?;
            writeln!(
                out,
                "  measured   {} messages sent, {} deliveries ({:.0} deliveries/s)",
                self.sent, self.completed, self.achieved_rate
            )?;
            writeln!(
                out,
                "  whole run  {} messages sent (warm-up included); deliveries {} of {} due",
                c.messages_sent, c.deliveries_received, c.deliveries_expected
            )?;
        } else {
            match self.offered_rate {
                Some(r) => {
                    writeln!(out, "  offered   {r:>12.0} /s (open loop)")?;
                }
                None => {
                    writeln!(
                        out,
                        "  offered          max (closed loop, pipeline {}{})",
                        self.pipeline,
                        if self.pipeline_batches {
                            " in batches"
                        } else {
                            ""
                        }
                    )?;
                }
            }
            writeln!(out, "  achieved  {:>12.0} {what}/s", self.achieved_rate)?;
            writeln!(
                out,
                "  sent      {:>12}   completed {:>12}",
                self.sent, self.completed
            )?;
        }
        if let Some((share, reconnects)) = self.churn {
            writeln!(
                out,
                "  churn     {:.0}% of requests on a new connection: {reconnects} connections opened after the first",
                share * 100.0
            )?;
        }
        if let Some(s) = &self.statuses {
            writeln!(
                out,
                "  statuses  1xx {} · 2xx {} · 3xx {} · 4xx {} · 5xx {}",
                s[0], s[1], s[2], s[3], s[4]
            )?;
        }
        let e = &self.errors;
        if e.total() == 0 {
            writeln!(out, "  errors: none")?;
        } else {
            let kinds = [
                ("connect", e.connect),
                ("mismatch", e.mismatch),
                ("status", e.status),
                ("server", e.server),
                ("abandoned", e.abandoned),
                ("closed", e.closed),
                ("reset", e.reset),
                ("io", e.io),
                ("timeout", e.timeout),
                ("frame", e.frame),
                ("lost", e.lost),
                ("reordered", e.reordered),
                ("unexpected", e.unexpected),
            ];
            let named: Vec<String> = kinds
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            writeln!(out, "  errors: {} ({})", e.total(), named.join(", "))?;
            for (title, texts) in [
                ("server said", &self.server_errors),
                ("unframeable", &self.frame_errors),
            ] {
                let mut by_count: Vec<_> = texts.iter().collect();
                by_count.sort_by(|a, b| b.1.cmp(a.1));
                for (text, n) in by_count.into_iter().take(5) {
                    writeln!(out, "    {title} {n}×: {text}")?;
                }
            }
        }
        writeln!(
            out,
            "  latency (µs)        p50        p90        p99      p99.9     p99.99        max"
        )?;
        let mut rows = vec![
            ("corrected", &self.corrected),
            ("uncorrected", &self.uncorrected),
        ];
        if let Some([same, cross]) = &self.by_node {
            rows.extend([("same node", same), ("cross node", cross)]);
        }
        for (name, p) in rows {
            if p.count == 0 {
                writeln!(
                    out,
                    "  {name:<12} nothing measured (no {what} timed in the measured period)"
                )?;
                continue;
            }
            writeln!(
                out,
                "  {name:<12} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
                p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.p9999_us, p.max_us
            )?;
        }
        for (title, rows) in [("target", &self.targets), ("command", &self.commands)] {
            if rows.is_empty() {
                continue;
            }
            writeln!(out, "  by {title} (corrected, µs):")?;
            for r in rows {
                let p = &r.corrected;
                if p.count == 0 {
                    writeln!(out, "    {}: nothing measured", r.name)?;
                    continue;
                }
                writeln!(
                    out,
                    "    {}: p50 {:.1} · p99 {:.1} · p99.9 {:.1} · max {:.1} · {:.0}/s",
                    r.name, p.p50_us, p.p99_us, p.p999_us, p.max_us, r.achieved_rate
                )?;
            }
        }
        let unit = if self.chat.is_some() {
            "each delivery, from its message's"
        } else {
            "each request's"
        };
        writeln!(
            out,
            "  (corrected: from {unit} intended send time; uncorrected: from its actual send)"
        )?;
        Ok(())
    }

    /// Writes the JSON summary.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        write_json_file(path, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(samples_us: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for us in samples_us {
            h.record(us * 1000).unwrap();
        }
        h
    }

    #[test]
    fn no_samples_is_not_a_latency_of_zero() {
        let empty = Percentiles::of(&histogram(&[]));
        assert_eq!(empty.count, 0);
        assert_eq!(empty.p99_ms(), None);
        let some = Percentiles::of(&histogram(&[100; 1000]));
        let p99 = some.p99_ms().unwrap();
        assert!((0.0999..0.1001).contains(&p99), "{p99}");
    }

    #[test]
    fn a_run_that_measured_nothing_says_so_instead_of_printing_zeros() {
        let report = Report {
            mode: "chat".into(),
            target: "127.0.0.1:1".into(),
            ..Report::default()
        };
        let text = report.render();
        for name in ["corrected", "uncorrected"] {
            let row = text
                .lines()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap_or_else(|| panic!("no {name} row in:\n{text}"));
            assert!(row.contains("nothing measured"), "{row}");
            assert!(!row.contains("0.0"), "{row}");
        }
    }
}
