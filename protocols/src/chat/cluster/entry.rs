//! One stream entry: a batch of one node's lines, numbered so readers can
//! drop what they already have and count what they never got.
//!
//! An entry's fields: `n` the sending node's key (`<node id>/<epoch>`),
//! `s` the number of its first line (each node numbers its lines from 0
//! when it starts), `c` how many lines, `t` when the batch left (µs since
//! the Unix epoch, the sender's clock), `l` the lines themselves, each
//! ending in `\r\n`, ready to write to clients as they are.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::Value;

/// A batch of this node's lines, numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    /// The number of the first line.
    pub first: u64,
    /// How many lines.
    pub count: u64,
    /// The lines, concatenated.
    pub lines: Vec<u8>,
}

/// Microseconds since the Unix epoch now.
pub(crate) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A stream entry as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The entry's stream id (`<ms>-<seq>`).
    pub id: String,
    pub node: Vec<u8>,
    pub first: u64,
    pub count: u64,
    pub sent_micros: u64,
    pub lines: Bytes,
}

impl Entry {
    /// How long ago (by this node's clock) the batch left its node.
    pub fn age(&self) -> Duration {
        Duration::from_micros(unix_micros().saturating_sub(self.sent_micros))
    }
}

fn text(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn number(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Parses one entry (`[id, [field, value, …]]`); `None` if it is not one
/// of ours (a malformed entry is skipped by the reader, and counted).
fn parse_entry(v: Value) -> Option<Entry> {
    let Value::Array(mut pair) = v else {
        return None;
    };
    if pair.len() != 2 {
        return None;
    }
    let fields = pair.pop()?;
    let id = String::from_utf8(text(&pair.pop()?)?.to_vec()).ok()?;
    let Value::Array(fields) = fields else {
        return None;
    };
    let (mut node, mut first, mut count, mut sent, mut lines) = (None, None, None, None, None);
    let mut it = fields.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match text(&k)? {
            b"n" => node = text(&v).map(<[u8]>::to_vec),
            b"s" => first = text(&v).and_then(number),
            b"c" => count = text(&v).and_then(number),
            b"t" => sent = text(&v).and_then(number),
            b"l" => {
                lines = match v {
                    Value::BulkString(b) => Some(Bytes::from(b)),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    Some(Entry {
        id,
        node: node?,
        first: first?,
        count: count?,
        sent_micros: sent?,
        lines: lines?,
    })
}

/// The entries of an `XREAD` reply for one stream (`nil` on timeout, else
/// `[[key, [entry…]]]`), in stream order, and how many were malformed.
pub(crate) fn parse_xread(v: Value) -> (Vec<Entry>, usize) {
    let mut out = Vec::new();
    let mut malformed = 0;
    let streams = match v {
        Value::Array(s) => s,
        Value::Map(m) => m
            .into_iter()
            .map(|(k, v)| Value::Array(vec![k, v]))
            .collect(),
        _ => return (out, 0),
    };
    for stream in streams {
        let Value::Array(mut kv) = stream else {
            continue;
        };
        let Some(Value::Array(entries)) = kv.pop() else {
            continue;
        };
        for e in entries {
            match parse_entry(e) {
                Some(e) => out.push(e),
                None => malformed += 1,
            }
        }
    }
    (out, malformed)
}

/// What to do with an entry from another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Deliver it; `missed` lines before it never arrived.
    Deliver { missed: u64 },
    /// Already delivered (a retried write): drop it.
    Duplicate,
}

/// The next line number due from each sending node (by node key, which
/// changes when a node restarts).
#[derive(Debug, Default)]
pub(crate) struct Origins {
    next: HashMap<Vec<u8>, u64>,
}

impl Origins {
    /// Judges an entry of `count` lines from `node` starting at `first`.
    /// The first entry seen from a node sets its numbering: lines it sent
    /// before this node started reading are not counted as missed.
    pub fn judge(&mut self, node: &[u8], first: u64, count: u64) -> Verdict {
        let end = first.saturating_add(count);
        match self.next.get_mut(node) {
            None => {
                self.next.insert(node.to_vec(), end);
                Verdict::Deliver { missed: 0 }
            }
            Some(next) if end <= *next => Verdict::Duplicate,
            Some(next) => {
                let missed = first.saturating_sub(*next);
                *next = end;
                Verdict::Deliver { missed }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[(&str, &str)]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(
                fields
                    .iter()
                    .flat_map(|(k, v)| [bulk(k), bulk(v)])
                    .collect(),
            ),
        ])
    }

    #[test]
    fn an_xread_reply_parses_to_its_entries_and_counts_the_strange_ones() {
        let good = [
            ("n", "a/1"),
            ("s", "5"),
            ("c", "2"),
            ("t", "99"),
            ("l", "<x> 1\r\n<x> 2\r\n"),
        ];
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("torsion:chat:lines"),
            Value::Array(vec![
                entry("1-0", &good),
                entry("2-0", &[("n", "a/1"), ("s", "x")]),
                bulk("junk"),
                entry("3-0", &good),
            ]),
        ])]);
        let (entries, malformed) = parse_xread(reply);
        assert_eq!(malformed, 2);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "1-0");
        assert_eq!(entries[0].node, b"a/1");
        assert_eq!((entries[0].first, entries[0].count), (5, 2));
        assert_eq!(entries[0].sent_micros, 99);
        assert_eq!(&entries[0].lines[..], b"<x> 1\r\n<x> 2\r\n");
        assert_eq!(entries[1].id, "3-0");
        assert_eq!(parse_xread(Value::Nil), (vec![], 0));
    }

    #[test]
    fn duplicates_are_dropped_and_gaps_counted_per_sender() {
        let mut o = Origins::default();
        assert_eq!(o.judge(b"a", 10, 3), Verdict::Deliver { missed: 0 });
        assert_eq!(o.judge(b"a", 13, 1), Verdict::Deliver { missed: 0 });
        assert_eq!(o.judge(b"a", 10, 3), Verdict::Duplicate, "a retried write");
        assert_eq!(o.judge(b"a", 13, 1), Verdict::Duplicate);
        assert_eq!(o.judge(b"b", 0, 1), Verdict::Deliver { missed: 0 });
        assert_eq!(o.judge(b"a", 20, 2), Verdict::Deliver { missed: 6 });
        assert_eq!(o.judge(b"b", 1, 1), Verdict::Deliver { missed: 0 });
        assert_eq!(
            o.judge(b"a/restarted", 0, 1),
            Verdict::Deliver { missed: 0 }
        );
    }
}
