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

/// What one command of a round was for.
enum Op {
    Xadd,
    Renew,
    Claim { name: String, answer: ClaimAnswer },
    Release(String),
    Who(WhoAnswer),
    DropKey,
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

    /// One pipeline: the oldest batch, the renewal if due, every control.
    fn round(&mut self) {
        self.seal();
        self.last_round = self.now();
        let mut pipe = redis::pipe();
        let mut ops = Vec::new();
        for name in std::mem::take(&mut self.to_release) {
            self.release(&mut pipe, &mut ops, name);
        }
        if let Some((batch, _)) = self.pending.front() {
            let cmd = pipe.cmd("XADD").arg(&self.keys.stream);
            if let Some(ms) = self.last_entry_ms {
                let keep = self.config.retention().as_millis() as u64;
                cmd.arg("MINID").arg("~").arg(ms.saturating_sub(keep));
            }
            cmd.arg("*")
                .arg("n")
                .arg(&self.keys.me)
                .arg("s")
                .arg(batch.first)
                .arg("c")
                .arg(batch.count)
                .arg("t")
                .arg(unix_micros())
                .arg("l")
                .arg(&batch.lines[..]);
            ops.push(Op::Xadd);
        }
        if self.last_round >= self.next_renew {
            pipe.cmd("SET")
                .arg(&self.keys.alive)
                .arg(1)
                .arg("PX")
                .arg(self.config.lease.as_millis() as u64)
                .arg("GET");
            ops.push(Op::Renew);
            self.next_renew = self.last_round + self.renew_every();
        }
        while let Some(c) = self.controls.pop_front() {
            match c {
                Request::Claim { name, answer } => {
                    pipe.cmd("EVALSHA")
                        .arg(&self.shas.claim)
                        .arg(1)
                        .arg(&self.keys.names)
                        .arg(&name)
                        .arg(&self.keys.me)
                        .arg(&self.keys.node_prefix);
                    self.stats.claims.add(1);
                    ops.push(Op::Claim { name, answer });
                }
                Request::Release { name } => {
                    self.held.remove(&name);
                    self.release(&mut pipe, &mut ops, name);
                }
                Request::Who(answer) => {
                    pipe.cmd("EVALSHA")
                        .arg(&self.shas.who)
                        .arg(1)
                        .arg(&self.keys.names)
                        .arg(&self.keys.me)
                        .arg(&self.keys.node_prefix);
                    ops.push(Op::Who(answer));
                }
                Request::Line(_) => unreachable!("lines are batched, not controls"),
            }
        }
        self.send(pipe, ops);
    }

    /// Adds the release of `name` (if this node holds it) to a round.
    fn release(&self, pipe: &mut redis::Pipeline, ops: &mut Vec<Op>, name: String) {
        pipe.cmd("EVALSHA")
            .arg(&self.shas.release)
            .arg(1)
            .arg(&self.keys.names)
            .arg(&name)
            .arg(&self.keys.me);
        ops.push(Op::Release(name));
    }

    /// Sends a pipeline and acts on each answer; a lost connection fails
    /// what had no answer.
    fn send(&mut self, pipe: redis::Pipeline, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let Some(con) = self.con.as_mut() else {
            return self.fail_ops(ops);
        };
        self.stats.writer_commands.add(ops.len() as u64);
        match con.req_packed_commands(&pipe.get_packed_pipeline(), 0, ops.len()) {
            Ok(values) => {
                for (op, v) in ops.into_iter().zip(values) {
                    self.answered(op, v);
                }
                if std::mem::take(&mut self.refused) {
                    let e = redis::RedisError::from((
                        redis::ErrorKind::ResponseError,
                        "Redis refused XADD",
                    ));
                    self.link_lost(&e);
                }
            }
            Err(e) => {
                self.link_lost(&e);
                self.fail_ops(ops);
            }
        }
    }

    fn answered(&mut self, op: Op, v: Value) {
        if let Value::ServerError(e) = &v {
            tracing::error!("chat cluster: Redis refused a command: {e:?}");
        }
        match op {
            Op::Xadd => {
                if let Value::BulkString(id) = &v {
                    self.last_entry_ms = std::str::from_utf8(id)
                        .ok()
                        .and_then(|id| id.split('-').next()?.parse().ok());
                    if let Some(batch) = self.pop_pending() {
                        self.stats.lines_sent.add(batch.count);
                        self.stats.entries_written.add(1);
                    }
                    self.stats.backlog.set(self.backlog_lines());
                } else {
                    // Refused (out of memory, say): an outage like any
                    // other — the batch stays first, the link is dropped and
                    // retried with back-off, and the outage bound applies.
                    self.refused = true;
                }
            }
            Op::Renew => {
                let lapsed = matches!(v, Value::Nil) && self.renewed_once;
                self.renewed_once = true;
                if lapsed {
                    self.lease_lapsed();
                }
            }
            Op::Claim { name, answer } => {
                let outcome = match v {
                    Value::Int(1) => {
                        self.held.insert(name);
                        ClaimOutcome::Granted
                    }
                    Value::Int(_) => ClaimOutcome::Taken,
                    _ => ClaimOutcome::Unavailable,
                };
                self.stats.names_held.set(self.held.len() as u64);
                answer.send(outcome);
            }
            Op::Release(_) | Op::DropKey => {
                self.stats.names_held.set(self.held.len() as u64);
            }
            Op::Who(answer) => {
                let (names, reachable) = match v {
                    Value::Array(names) => {
                        let mut out = Vec::new();
                        for n in names {
                            if let Value::BulkString(n) = n {
                                if !out.is_empty() {
                                    out.push(b' ');
                                }
                                out.extend_from_slice(&n);
                            }
                        }
                        (Bytes::from(out), true)
                    }
                    _ => (Bytes::new(), false),
                };
                answer.send(OtherNodes { names, reachable });
            }
        }
    }

    /// The node's key had expired: claim every held name again; revoke the
    /// ones another node took.
    fn lease_lapsed(&mut self) {
        self.stats.lease_lapses.add(1);
        tracing::warn!(
            node = %self.keys.me,
            names = self.held.len(),
            "chat cluster: this node's lease had lapsed; claiming its names again"
        );
        if self.held.is_empty() {
            return;
        }
        let Some(con) = self.con.as_mut() else { return };
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.shas.reassert)
            .arg(1)
            .arg(&self.keys.names)
            .arg(&self.keys.me)
            .arg(&self.keys.node_prefix);
        for name in &self.held {
            cmd.arg(name);
        }
        self.stats.writer_commands.add(1);
        match cmd.query::<Vec<String>>(con) {
            Ok(lost) => {
                let shards = self.bus.shard_count();
                for name in lost {
                    tracing::warn!(
                        name,
                        "chat cluster: another node took this name during the outage"
                    );
                    self.held.remove(&name);
                    self.stats.names_lost.add(1);
                    self.tell(owner_shard(&name, shards), ChatMessage::NameLost { name });
                }
                self.stats.names_held.set(self.held.len() as u64);
            }
            Err(e) => {
                // Tried again at the next renewal (which will find the key).
                self.renewed_once = false;
                self.link_lost(&e);
            }
        }
    }

    /// Answers what a failed round left unanswered.
    fn fail_ops(&mut self, ops: Vec<Op>) {
        for op in ops {
            match op {
                // Still first in line: sent again after reconnecting.
                Op::Xadd | Op::Renew | Op::DropKey => {}
                Op::Claim { name, answer } => {
                    // It may have been granted: give it back when we can.
                    self.to_release.push(name);
                    self.refuse_claim(answer);
                }
                Op::Release(name) => self.to_release.push(name),
                Op::Who(answer) => self.who_unreachable(answer),
            }
        }
    }

    /// Answers a claim `Unavailable`: Redis cannot be asked.
    fn refuse_claim(&self, answer: ClaimAnswer) {
        self.stats.claims_unavailable.add(1);
        answer.send(ClaimOutcome::Unavailable);
    }

    /// Answers a `/who` with no other node's names, marked incomplete.
    fn who_unreachable(&self, answer: WhoAnswer) {
        answer.send(OtherNodes {
            names: Bytes::new(),
            reachable: false,
        });
    }

    /// While the link is down: refuse claims, answer `/who` with nothing,
    /// keep releases for later, drop lines past the outage bound.
    fn while_down(&mut self) {
        while let Some(c) = self.controls.pop_front() {
            match c {
                Request::Claim { answer, .. } => self.refuse_claim(answer),
                Request::Release { name } => {
                    self.held.remove(&name);
                    self.to_release.push(name);
                }
                Request::Who(answer) => self.who_unreachable(answer),
                Request::Line(_) => unreachable!("lines are batched, not controls"),
            }
        }
        self.drop_expired();
    }

    /// Drops the lines queued longer than the outage bound (or past the
    /// backlog's size), counted and logged.
    fn drop_expired(&mut self) {
        self.seal();
        let now = self.now();
        let mut dropped = 0;
        while let Some((batch, since)) = self.pending.front() {
            let too_old = now.saturating_duration_since(*since) > self.config.outage;
            if !too_old && self.pending_bytes <= MAX_BACKLOG_BYTES {
                break;
            }
            dropped += batch.count;
            self.pop_pending();
        }
        if dropped > 0 {
            self.stats.lines_dropped.add(dropped);
            tracing::error!(
                dropped,
                outage = ?self.config.outage,
                "chat cluster: Redis unreachable past the outage bound; lines for other nodes dropped"
            );
        }
        self.stats.backlog.set(self.backlog_lines());
    }

    fn link_lost(&mut self, e: &redis::RedisError) {
        if self.con.take().is_some() {
            tracing::warn!(node = %self.keys.me, "chat cluster: lost Redis (writer): {e}");
            self.down_since = Some(self.now());
        }
        self.stats.writer_up.set(0);
        // A link that keeps coming back only to fail again is an outage
        // too: the bound applies however it fails.
        self.drop_expired();
        self.backoff.reset();
        self.next_connect = self.now() + self.next_wait();
    }

    fn reconnect(&mut self) {
        let attempt = connect(&self.client, "w", &self.keys).and_then(|mut con| {
            let shas = load_scripts(&mut con)?;
            Ok((con, shas))
        });
        match attempt {
            Ok((con, shas)) => {
                let away = self
                    .down_since
                    .take()
                    .map(|t| self.now().saturating_duration_since(t));
                tracing::info!(node = %self.keys.me, ?away, "chat cluster: Redis is back (writer)");
                self.con = Some(con);
                self.shas = shas;
                self.stats.writer_up.set(1);
                self.stats.writer_reconnects.add(1);
                // Renew (and notice a lapse) in the first round.
                self.next_renew = self.now();
            }
            Err(e) => {
                tracing::debug!("chat cluster: reconnecting (writer): {e}");
                self.next_connect = self.now() + self.next_wait();
            }
        }
    }

    /// The wait before the next attempt to reach Redis (the back-off never
    /// gives up: it has no retry limit).
    fn next_wait(&mut self) -> Duration {
        self.backoff.next_delay().unwrap_or(RECONNECT_MAX)
    }

    /// Sends a message to a shard (the server may be stopping: then there
    /// is nobody to tell).
    fn tell(&self, shard: usize, msg: ChatMessage) {
        let _ = self.bus.send_to(shard, msg);
    }

    /// Every shard is gone: send what is left (within a budget), then
    /// delete the node key so its names are free at once.
    fn leave(mut self) {
        let deadline = self.now() + SHUTDOWN_BUDGET;
        self.seal();
        while self.con.is_some()
            && (!self.pending.is_empty()
                || !self.controls.is_empty()
                || !self.to_release.is_empty())
            && self.now() < deadline
        {
            self.round();
        }
        if !self.pending.is_empty() {
            let lost = self.backlog_lines();
            self.stats.lines_dropped.add(lost);
            tracing::error!(
                lost,
                "chat cluster: stopping with lines other nodes never got"
            );
        }
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&self.keys.alive);
        self.send(pipe, vec![Op::DropKey]);
        drop(self.stop);
        self.stats.writer_up.set(0);
    }
}

#[cfg(test)]
#[path = "writer/tests.rs"]
mod tests;
