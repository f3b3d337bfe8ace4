//! The bridge's writer thread: everything a node says to Redis — its
//! lines, batched into stream entries; name claims and releases; `/who`;
//! the lease renewal — over one connection, one pipeline per round.
//!
//! # A round
//!
//! The writer sleeps while it has nothing to do (blocked on its channel
//! until a request or the next renewal). With lines waiting it sleeps
//! until the [`Pacer`]'s interval since the last round has passed — not
//! on the channel, so the shards' sends do not wake it per line — then
//! takes everything queued and sends one pipeline: at most one `XADD`
//! (the oldest waiting batch: entries reach the stream in line order even
//! when a reply is lost), the renewal when due, and every claim, release
//! and `/who` in the order the shards sent them. While a backlog is
//! waiting, rounds follow each other without a pause.
//!
//! # When Redis is away
//!
//! A failed round (or a refused `XADD`: Redis out of memory, say) marks
//! the link down; reconnecting is tried every 100 ms
//! at first, backing off to once a second. Meanwhile: lines queue (in
//! batches of at most 256 KiB), and those queued longer than the outage
//! bound, or past 64 MiB in all, are dropped — counted in
//! `lines_dropped` and logged, never silently; claims are refused
//! (`Unavailable`) at once, since uniqueness across nodes cannot be
//! checked; `/who` answers with this node's names only, marked
//! incomplete; releases wait and go first when the link is back. A batch
//! whose `XADD` was sent but not answered is sent again (its line numbers
//! let readers drop the copy). A claim sent but not answered is refused
//! and its name released at reconnect (it may have been granted).
//!
//! # The lease
//!
//! Every quarter lease the writer renews its node key with `SET … PX
//! lease GET`. An empty answer after the first means the key had expired
//! (an outage longer than the lease, or Redis restarted empty): the
//! writer claims all its names again with [`REASSERT`], and a name another
//! node took meanwhile is revoked from its client (told so, and nameless
//! again). At shutdown the node key is deleted: its names are free at
//! once.
//!
//! # Time
//!
//! Every decision here (batch age, the outage bound, the renewal, the
//! back-off) reads the time from the writer's [`Now`]: the wall clock in
//! service, a hand-moved one in the unit tests (`writer/tests.rs`), which
//! drive a writer cut off from Redis without a server.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the writer's state, the run loop, lines into batches, the link's set-up |
//! | `round.rs` | one pipeline and its answers; the lease; the last round at shutdown |
//! | `outage.rs` | what happens while Redis is away, and reconnecting |
//! | `tests.rs` | the writer cut off from Redis on a hand-moved clock |

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{RecvTimeoutError, Sender, TryRecvError};
use redis::{Connection, ConnectionLike, Value};
use torsion::client::Backoff;
use torsion::BusSender;

use super::config::{ClusterConfig, Keys};
use super::entry::{unix_micros, Batch};
use super::link::{ClaimAnswer, OtherNodes, Request, Requests, WhoAnswer};
use super::pacer::Pacer;
use super::scripts::{CLAIM, REASSERT, RELEASE, WHO};
use super::stats::ClusterStats;
use crate::chat::message::{ChatMessage, ClaimOutcome};
use crate::chat::names::owner_shard;

/// The largest batch: one stream entry.
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// The most lines kept waiting while Redis is away, in bytes.
const MAX_BACKLOG_BYTES: usize = 64 * 1024 * 1024;
/// How long a command may take before the link counts as down.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// First and longest wait between reconnection attempts.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

/// The waits between attempts to reach Redis again, for the writer and the
/// reader alike: torsion's [`Backoff`] doubling from 100 ms to 1 s, with
/// Twisted's jitter so that a cluster's nodes do not all come back at once.
pub(crate) fn reconnect_backoff() -> Backoff {
    let mut backoff = Backoff::new(RECONNECT_FIRST / 2, RECONNECT_MAX);
    backoff.factor = 2.0;
    backoff
}

/// The wait before the next attempt to reach Redis: `backoff`'s next delay
/// (it has no retry limit, so there always is one).
pub(crate) fn next_reconnect_wait(backoff: &mut Backoff) -> Duration {
    backoff.next_delay().unwrap_or(RECONNECT_MAX)
}

/// How long shutdown may spend sending what is left.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(2);

/// The scripts' SHA1s on the connected server.
#[derive(Debug, Default, Clone)]
struct Shas {
    claim: String,
    release: String,
    reassert: String,
    who: String,
}

/// Connects to Redis, names the connection and loads the scripts.
pub(crate) fn connect(
    client: &redis::Client,
    role: &str,
    keys: &Keys,
) -> redis::RedisResult<Connection> {
    let mut con = client.get_connection_with_timeout(COMMAND_TIMEOUT)?;
    con.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    con.set_write_timeout(Some(COMMAND_TIMEOUT))?;
    // Client names: what `CLIENT LIST` shows; letters and punctuation only.
    let name: String = format!("torsion-{role}-{}", keys.me)
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .query::<()>(&mut con)?;
    Ok(con)
}

fn load_scripts(con: &mut Connection) -> redis::RedisResult<Shas> {
    let mut load = |src: &str| -> redis::RedisResult<String> {
        redis::cmd("SCRIPT").arg("LOAD").arg(src).query(con)
    };
    Ok(Shas {
        claim: load(CLAIM)?,
        release: load(RELEASE)?,
        reassert: load(REASSERT)?,
        who: load(WHO)?,
    })
}

/// What the writer shares with the shards and the reader.
pub(crate) struct WriterEnds {
    /// What shards send.
    pub requests: Requests,
    /// Answers to shards.
    pub bus: BusSender<ChatMessage>,
    /// The node's counters.
    pub stats: Arc<ClusterStats>,
    /// Dropped when the writer has left: the reader stops then.
    pub stop: Sender<()>,
}

/// Where the writer reads the time (the wall clock in service).
pub(crate) type Now = Box<dyn Fn() -> Instant + Send>;

/// The writer thread's state.
pub(crate) struct Writer {
    now: Now,
    config: ClusterConfig,
    keys: Keys,
    client: redis::Client,
    con: Option<Connection>,
    shas: Shas,
    requests: Requests,
    bus: BusSender<ChatMessage>,
    stats: Arc<ClusterStats>,
    stop: Sender<()>,
    /// Lines not yet in a batch, and when the first of them came.
    open: Vec<u8>,
    open_count: u64,
    open_since: Instant,
    /// Batches waiting for their `XADD`, oldest first, with the time their
    /// first line was queued.
    pending: VecDeque<(Batch, Instant)>,
    /// Bytes and lines in `pending`.
    pending_bytes: usize,
    pending_lines: u64,
    next_line: u64,
    /// Claims, releases and `/who`s waiting for the next round.
    controls: VecDeque<Request>,
    /// Names this node holds in Redis.
    held: HashSet<String>,
    /// Names to release first thing after reconnecting.
    to_release: Vec<String>,
    pacer: Pacer,
    last_round: Instant,
    next_renew: Instant,
    renewed_once: bool,
    next_connect: Instant,
    backoff: Backoff,
    /// The newest entry id's milliseconds (Redis's clock), for trimming.
    last_entry_ms: Option<u64>,
    /// When this outage began (for the log), if the link is down.
    down_since: Option<Instant>,
    /// Redis answered this round's `XADD` with an error.
    refused: bool,
}

mod outage;
mod round;
#[cfg(test)]
mod tests;

impl Writer {
    /// A writer on an established connection.
    pub(crate) fn new(
        config: ClusterConfig,
        keys: Keys,
        client: redis::Client,
        mut con: Connection,
        ends: WriterEnds,
    ) -> redis::RedisResult<Writer> {
        let shas = load_scripts(&mut con)?;
        ends.stats.writer_up.set(1);
        Ok(Writer::with_link(
            config,
            keys,
            client,
            Some(con),
            shas,
            ends,
            Box::new(Instant::now),
        ))
    }

    /// A writer with `con` as its link (`None`: cut off from Redis, trying
    /// again from now), reading the time from `now`.
    fn with_link(
        config: ClusterConfig,
        keys: Keys,
        client: redis::Client,
        con: Option<Connection>,
        shas: Shas,
        ends: WriterEnds,
        now: Now,
    ) -> Writer {
        let WriterEnds {
            requests,
            bus,
            stats,
            stop,
        } = ends;
        let started = now();
        Writer {
            now,
            config,
            keys,
            client,
            con,
            shas,
            requests,
            bus,
            stats,
            stop,
            open: Vec::new(),
            open_count: 0,
            open_since: started,
            pending: VecDeque::new(),
            pending_bytes: 0,
            pending_lines: 0,
            next_line: 0,
            controls: VecDeque::new(),
            held: HashSet::new(),
            to_release: Vec::new(),
            pacer: Pacer::new(started),
            last_round: started,
            next_renew: started,
            renewed_once: false,
            next_connect: started,
            backoff: reconnect_backoff(),
            last_entry_ms: None,
            down_since: None,
            refused: false,
        }
    }

    /// The time, from the writer's clock.
    fn now(&self) -> Instant {
        (self.now)()
    }

    fn renew_every(&self) -> Duration {
        self.config.lease / 4
    }

    /// Runs until every shard's link is gone, then leaves the cluster.
    pub(crate) fn run(mut self) {
        let mut closing = false;
        while !closing {
            let now = self.now();
            let lines_waiting = self.open_count > 0 || !self.pending.is_empty();
            let up = self.con.is_some();
            if lines_waiting && up {
                let backlog = self.pending.len() > 1;
                let due = if backlog || !self.controls.is_empty() {
                    now
                } else {
                    self.last_round + self.pacer.interval()
                };
                if due > now {
                    std::thread::sleep(due - now);
                }
            } else {
                let deadline = if up {
                    self.next_renew
                } else {
                    self.next_connect
                };
                match self.requests.recv_deadline(deadline) {
                    Ok(r) => self.take(r),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => closing = true,
                }
            }
            loop {
                match self.requests.try_recv() {
                    Ok(r) => self.take(r),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closing = true;
                        break;
                    }
                }
            }
            if self.con.is_none() && self.now() >= self.next_connect {
                self.reconnect();
            }
            if self.con.is_some() {
                let now = self.now();
                let lines_due = (self.open_count > 0 || !self.pending.is_empty())
                    && (now >= self.last_round + self.pacer.interval()
                        || self.pending.len() > 1
                        || closing);
                if lines_due
                    || !self.controls.is_empty()
                    || !self.to_release.is_empty()
                    || now >= self.next_renew
                {
                    self.round();
                }
            } else {
                self.while_down();
            }
        }
        self.leave();
    }

    /// Takes one request from a shard.
    fn take(&mut self, r: Request) {
        match r {
            Request::Line(line) => self.queue_line(&line),
            other => self.controls.push_back(other),
        }
    }

    fn queue_line(&mut self, line: &Bytes) {
        let now = self.now();
        if self.open_count == 0 {
            self.open_since = now;
        }
        self.open.extend_from_slice(line);
        self.open_count += 1;
        self.pacer.note(1, now);
        if self.open.len() >= MAX_BATCH_BYTES {
            self.seal();
        }
        self.stats.backlog.set(self.backlog_lines());
    }

    fn backlog_lines(&self) -> u64 {
        self.open_count + self.pending_lines
    }

    /// Makes the open lines a numbered batch.
    fn seal(&mut self) {
        if self.open_count == 0 {
            return;
        }
        let batch = Batch {
            first: self.next_line,
            count: self.open_count,
            lines: std::mem::take(&mut self.open),
        };
        self.next_line += self.open_count;
        self.open_count = 0;
        self.pending_bytes += batch.lines.len();
        self.pending_lines += batch.count;
        self.pending.push_back((batch, self.open_since));
    }

    /// Takes the oldest waiting batch off the queue.
    fn pop_pending(&mut self) -> Option<Batch> {
        let (batch, _) = self.pending.pop_front()?;
        self.pending_bytes -= batch.lines.len();
        self.pending_lines -= batch.count;
        Some(batch)
    }

    /// Sends a message to a shard (the server may be stopping: then there
    /// is nobody to tell).
    fn tell(&self, shard: usize, msg: ChatMessage) {
        let _ = self.bus.send_to(shard, msg);
    }
}
