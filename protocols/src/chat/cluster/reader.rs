//! The bridge's reader thread: reads the stream from where it last was,
//! hands other nodes' lines to every shard, and keeps count of what it
//! dropped as a copy or never got.
//!
//! One `XREAD BLOCK` at a time, from the id of the last entry read (taken
//! at start: entries older than the node are not delivered), then a pause
//! until the [`Pacer`]'s interval since the read began, so that at a high
//! rate one read brings many entries. After a lost connection it reads on
//! from the same id: while the stream still holds the entries (it keeps
//! them for twice the outage bound), nothing is missed. An entry is
//! checked against its sender's line numbers ([`Origins`]): a copy is
//! dropped; a gap (entries trimmed before this node read them, or lost by
//! a Redis restart) is counted in `lines_missed` and logged.
//!
//! Each entry's lines go to every shard as one bus message (one `Bytes`
//! written to every named client there), in stream order: a sender's
//! lines arrive in the order it sent them. Lines from other nodes are not
//! held back by this node's slow readers (cross-node back-pressure would
//! let one slow client stall every node): a reader that does not keep up
//! is cut at its outbound cap, as on one node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use redis::{Connection, Value};
use torsion::BusSender;

use super::config::Keys;
use super::entry::{parse_xread, Origins, Verdict};
use super::pacer::Pacer;
use super::stats::ClusterStats;
use super::writer::{connect, next_reconnect_wait, reconnect_backoff};
use crate::chat::message::ChatMessage;

/// How long one `XREAD` blocks (so the thread notices shutdown).
const BLOCK: Duration = Duration::from_millis(250);
/// Most entries one read brings.
const COUNT: usize = 1024;

/// The id of the newest entry in the stream, or `0-0` if there is none.
pub(crate) fn newest_id(con: &mut Connection, keys: &Keys) -> redis::RedisResult<String> {
    let v: Value = redis::cmd("XREVRANGE")
        .arg(&keys.stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(con)?;
    if let Value::Array(entries) = v {
        if let Some(Value::Array(pair)) = entries.into_iter().next() {
            if let Some(Value::BulkString(id)) = pair.into_iter().next() {
                return Ok(String::from_utf8_lossy(&id).into_owned());
            }
        }
    }
    Ok("0-0".to_string())
}

/// The reader thread's state.
pub(crate) struct Reader {
    pub keys: Keys,
    pub client: redis::Client,
    pub con: Option<Connection>,
    pub last_id: String,
    pub bus: BusSender<ChatMessage>,
    pub stats: Arc<ClusterStats>,
    /// Disconnected when the writer has left: time to stop.
    pub stop: Receiver<()>,
}

impl Reader {
    /// Reads until the node stops (or its shards are gone).
    pub(crate) fn run(mut self) {
        let lag = self.stats.lag.recorder();
        let mut origins = Origins::default();
        let mut pacer = Pacer::new(Instant::now());
        let mut backoff = reconnect_backoff();
        let mut down_since: Option<Instant> = None;
        self.stats.reader_up.set(1);
        while !matches!(self.stop.try_recv(), Err(TryRecvError::Disconnected)) {
            let Some(con) = self.con.as_mut() else {
                std::thread::sleep(next_reconnect_wait(&mut backoff));
                match connect(&self.client, "r", &self.keys) {
                    Ok(con) => {
                        tracing::info!(
                            away = ?down_since.take().map(|t| t.elapsed()),
                            "chat cluster: Redis is back (reader)"
                        );
                        self.con = Some(con);
                        self.stats.reader_up.set(1);
                        self.stats.reader_reconnects.add(1);
                        backoff.reset();
                    }
                    Err(e) => {
                        tracing::debug!("chat cluster: reconnecting (reader): {e}");
                    }
                }
                continue;
            };
            let began = Instant::now();
            self.stats.reads.add(1);
            let reply = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(COUNT)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.keys.stream)
                .arg(&self.last_id)
                .query::<Value>(con);
            let reply = match reply {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!("chat cluster: lost Redis (reader): {e}");
                    self.con = None;
                    self.stats.reader_up.set(0);
                    down_since.get_or_insert(Instant::now());
                    continue;
                }
            };
            let (entries, malformed) = parse_xread(reply);
            if malformed > 0 {
                tracing::error!(
                    malformed,
                    "chat cluster: stream entries not in torsion's format skipped"
                );
            }
            let now = Instant::now();
            let mut lines = 0;
            for e in entries {
                let age = e.age();
                self.last_id = e.id;
                self.stats.entries_read.add(1);
                if e.node == self.keys.me.as_bytes() {
                    continue;
                }
                match origins.judge(&e.node, e.first, e.count) {
                    Verdict::Duplicate => self.stats.duplicates.add(1),
                    Verdict::Deliver { missed } => {
                        if missed > 0 {
                            self.stats.lines_missed.add(missed);
                            tracing::error!(
                                missed,
                                from = %String::from_utf8_lossy(&e.node),
                                "chat cluster: lines from another node never arrived"
                            );
                        }
                        lag.record_at(age, now);
                        lines += e.count;
                        let count = e.count as usize;
                        let msg = ChatMessage::Remote {
                            lines: e.lines,
                            count,
                        };
                        self.stats.lines_received.add(count as u64);
                        if self.bus.broadcast_all(msg).is_err() {
                            // The shards are gone: the server has stopped.
                            self.stats.reader_up.set(0);
                            return;
                        }
                    }
                }
            }
            pacer.note(lines, now);
            let next = began + pacer.interval();
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
        lag.publish();
        self.stats.reader_up.set(0);
    }
}
