//! `torsion load echo`: open-loop (fixed rate, latency from the intended
//! send time) or closed-loop (`--rate max`, `--pipeline K`) echo load, every
//! response checked byte for byte.
//!
//! # Open loop and coordinated omission
//!
//! With `--rate R`, connection *i* of *C* sends request *k* at
//! `start + (i/C + k) · C/R` seconds — the total rate spread evenly, phases
//! staggered — whether or not earlier responses came back (the connection's
//! one future sends on schedule and takes responses as they come, and a
//! send never waits for a response). Each response is timed twice: from the
//! request's *intended* send time (the corrected histogram: a server that
//! stalls for 200 ms shows 200 ms for everything scheduled during the stall,
//! wrk2's fix for coordinated omission) and from its actual send time (the
//! uncorrected service time).
//!
//! # One future per connection
//!
//! Each connection runs on torsion's connection API: its logic is one future
//! polled on the connection's own task ([`Connector::run`]), not a writer
//! task and a reader task beside the connection's driver. Requests are
//! queued on the transport without waiting (they leave in one `sendmsg`
//! when the poll returns); responses are decoded in place from the
//! connection's input ([`Connection::read_with`]), every response of one
//! read timed with one clock reading. The closed loop queues the next
//! request as each response is taken.
//!
//! [`Connector::run`]: torsion::client::Connector::run

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use torsion::codec::{Decoder, Encoder, FrameError};
use torsion::{Connection, ShardInfo, Transport};
use torsion_protocols::codec::{IntPrefixedCodec, LineCodec, NetstringCodec, PrefixWidth};
use torsion_protocols::Framing;

use super::engine::{
    report_final_interval, sleep_until, spawn_ticker, Alarm, Coordinator, Phases, Schedule,
};
use super::http_wire::{HttpLoad, HttpResponses};
use super::payload;
use super::recorder::Recorder;
use super::resp_wire::{self, Commands, RedisLoad, Reply};
use super::target::{self, LoadTarget};
use super::ws_wire::{WsTarget, WsWire};

/// The request rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Open loop: this many requests per second in total.
    PerSecond(f64),
    /// Closed loop: as fast as responses come back.
    Max,
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Rate, String> {
        if s == "max" {
            return Ok(Rate::Max);
        }
        match s.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(Rate::PerSecond(r)),
            _ => Err(format!(
                "invalid rate \"{s}\" (expected requests per second > 0, or \"max\")"
            )),
        }
    }
}

/// What `load echo` (and `load http`, `load redis`) does.
#[derive(Debug, Clone)]
pub struct EchoLoad {
    /// The servers (connections dealt out by weight, see `target.rs`).
    pub targets: Vec<LoadTarget>,
    /// Connections in total (spread over the load shards).
    pub connections: usize,
    /// Requests per second, or closed loop.
    pub rate: Rate,
    /// Closed loop: requests in flight per connection.
    pub pipeline: usize,
    /// Measured time.
    pub duration: Duration,
    /// Time before measuring.
    pub warmup: Duration,
    /// Payload bytes per request.
    pub size: usize,
    /// How requests are framed.
    pub framing: Framing,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// How long to wait for outstanding responses after sending stops.
    pub drain: Duration,
    /// Datagrams (UDP) instead of a TCP stream.
    pub udp: bool,
    /// HTTP instead of echo (`load http`): each request is the target's
    /// request and each response is parsed and checked (`http_wire.rs`);
    /// `size` and `framing` do not apply.
    pub http: Option<HttpLoad>,
    /// RESP instead of echo (`load redis`): commands from templates, every
    /// reply framed and checked (`resp_wire.rs`).
    pub redis: Option<RedisLoad>,
    /// Echo over WebSocket (`load ws`): each target's URL, in the order
    /// of `targets` (`ws_wire.rs`).
    pub websocket: Option<Vec<WsTarget>>,
    /// Connection churn: the share of requests sent on a new connection
    /// (0: keep-alive; 1: a connection per request). See [`Conn::reconnect`].
    pub churn: f64,
    /// Closed loop: send `pipeline` requests at once and the next batch when
    /// all are answered, instead of keeping `pipeline` in flight.
    pub batches: bool,
}

impl EchoLoad {
    /// The mode's name in reports: `echo`, `echo-udp`, `http` or `redis`.
    pub fn mode(&self) -> &'static str {
        if self.http.is_some() {
            "http"
        } else if self.redis.is_some() {
            "redis"
        } else if self.udp {
            "echo-udp"
        } else if self.websocket.is_some() {
            "ws"
        } else {
            "echo"
        }
    }

    /// Whether requests carry the self-checking echo payload.
    fn echoes(&self) -> bool {
        self.http.is_none() && self.redis.is_none()
    }

    /// Checks the settings before anything starts.
    pub fn validate(&self) -> Result<(), String> {
        if self.targets.is_empty() {
            return Err("give at least one --target".into());
        }
        if self.connections < self.targets.len() {
            return Err(format!(
                "--connections {} is fewer than the {} targets: each target needs one",
                self.connections,
                self.targets.len()
            ));
        }
        if !(0.0..=1.0).contains(&self.churn) {
            return Err(format!(
                "--churn {} must be a share between 0 and 1",
                self.churn
            ));
        }
        if self.batches && self.rate != Rate::Max {
            return Err("--pipeline-batches goes with the closed loop (--rate max)".into());
        }
        if self.churn > 0.0 && self.udp {
            return Err("--churn goes with TCP (UDP has no connections)".into());
        }
        if self.udp && self.targets.len() > 1 {
            return Err("--udp loads one --target".into());
        }
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be greater than zero".into());
        }
        if self.size < payload::MIN_SIZE && self.echoes() {
            return Err(format!(
                "--size {} is too small: requests carry a sequence number, so at least {} bytes",
                self.size,
                payload::MIN_SIZE
            ));
        }
        if let Some(max) = self.framing.max_message() {
            if self.size > max {
                return Err(format!(
                    "--size {} is over the {} framing's limit of {max} bytes",
                    self.size, self.framing
                ));
            }
        }
        if !self.echoes() && (self.udp || self.framing != Framing::Raw) {
            return Err("HTTP and Redis load run over TCP, without --framing".into());
        }
        if self.udp && self.targets.iter().any(|t| t.tls.is_some()) {
            return Err("--tls and --udp do not go together (no DTLS)".into());
        }
        if self.udp {
            if self.framing != Framing::Raw {
                return Err("--udp sends raw datagrams: --framing does not apply".into());
            }
            if self.rate == Rate::Max {
                return Err(
                    "--udp is open loop: give --rate (UDP has no flow control to close the loop)"
                        .into(),
                );
            }
            if self.size > 65_507 {
                return Err(format!(
                    "--size {} is over the UDP payload limit of 65507 bytes",
                    self.size
                ));
            }
        }
        if let Rate::PerSecond(r) = self.rate {
            if r < self.connections as f64 / 3600.0 {
                return Err(format!(
                    "--rate {r} is too low for {} connections (each would wait over an hour)",
                    self.connections
                ));
            }
        }
        Ok(())
    }
}

/// Frames requests and unframes responses in the chosen framing.
enum Wire {
    Raw {
        size: usize,
    },
    Codec(Box<dyn CodecBoth>),
    /// HTTP: the request's bytes (the connection's target's); a response
    /// decodes to its status.
    Http {
        request: bytes::Bytes,
        responses: HttpResponses,
    },
    /// RESP: the connection's command source; a reply decodes to
    /// [`Reply`].
    Resp(Box<Commands>),
    /// WebSocket echo: the handshake, then masked binary messages.
    Ws(Box<WsWire>),
}

/// A response taken off the input.
enum Decoded {
    /// An echo frame, to compare with what was sent.
    Frame(bytes::Bytes),
    /// An HTTP response's status.
    Status(u16),
    /// A RESP reply.
    Reply(Reply),
}

trait CodecBoth {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<bytes::Bytes>, String>;
    fn encode(&self, payload: &[u8], dst: &mut BytesMut) -> Result<(), String>;
}

impl<C: Decoder<Item = bytes::Bytes, Error = FrameError> + Encoder> CodecBoth for C {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<bytes::Bytes>, String> {
        Decoder::decode(self, buf).map_err(|e| e.to_string())
    }
    fn encode(&self, payload: &[u8], dst: &mut BytesMut) -> Result<(), String> {
        Encoder::encode(self, payload, dst).map_err(|e| e.to_string())
    }
}

impl Wire {
    /// Connection `index`'s wire, to target `target`.
    fn for_load(load: &EchoLoad, index: usize, target: usize) -> Wire {
        if let Some(http) = &load.http {
            return Wire::Http {
                request: http.requests[target].clone(),
                responses: HttpResponses::new(http),
            };
        }
        if let Some(redis) = &load.redis {
            return Wire::Resp(Box::new(Commands::new(redis, index)));
        }
        if let Some(urls) = &load.websocket {
            return Wire::Ws(Box::new(WsWire::new(&urls[target], load.size + 64)));
        }
        Wire::new(load.framing, load.size)
    }

    fn new(framing: Framing, size: usize) -> Wire {
        let limit = size + 64;
        match framing {
            Framing::Raw => Wire::Raw { size },
            Framing::Line => Wire::Codec(Box::new(LineCodec::new().max_length(limit))),
            Framing::Netstring => Wire::Codec(Box::new(NetstringCodec::new().max_length(limit))),
            Framing::Int8 => Wire::Codec(Box::new(IntPrefixedCodec::new(PrefixWidth::U8))),
            Framing::Int16 => Wire::Codec(Box::new(
                IntPrefixedCodec::new(PrefixWidth::U16).max_length(limit),
            )),
            Framing::Int32 => Wire::Codec(Box::new(
                IntPrefixedCodec::new(PrefixWidth::U32).max_length(limit),
            )),
        }
    }

    fn encode(&self, payload: &[u8], dst: &mut BytesMut) {
        match self {
            Wire::Http { request, .. } => dst.extend_from_slice(request),
            Wire::Resp(_) => unreachable!("RESP requests are built by Conn::send"),
            Wire::Raw { .. } => dst.extend_from_slice(payload),
            Wire::Ws(w) => w.encode(payload, dst),
            Wire::Codec(c) => c
                .encode(payload, dst)
                .expect("validated size fits the framing"),
        }
    }

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, String> {
        match self {
            Wire::Raw { size } => {
                Ok((buf.len() >= *size).then(|| Decoded::Frame(buf.split_to(*size).freeze())))
            }
            Wire::Codec(c) => Ok(c.decode(buf)?.map(Decoded::Frame)),
            Wire::Ws(w) => Ok(w.decode(buf)?.map(Decoded::Frame)),
            Wire::Http { responses, .. } => Ok(responses.decode(buf)?.map(Decoded::Status)),
            Wire::Resp(_) => Ok(resp_wire::decode_reply(buf)?.map(Decoded::Reply)),
        }
    }
}

/// A request sent and not answered yet.
struct InFlight {
    seq: u64,
    intended: Instant,
    sent: Instant,
    /// Redis: which command template (its latency row).
    command: usize,
}

/// What the shard and one connection's future share.
#[derive(Default)]
struct Shared {
    /// Requests sent and not answered yet, oldest first: what is left here
    /// when the shard's run ends counts as timed out.
    inflight: RefCell<VecDeque<InFlight>>,
    /// The connection's transport, once its future started: the shard
    /// aborts the connection at its deadline.
    transport: RefCell<Option<Transport>>,
    /// The shard's deadline passed and its unanswered requests were
    /// counted: the connection's end counts nothing more.
    over: Cell<bool>,
}

/// One load shard: connect its share of connections, wait for the start,
/// run them, return what it measured.
///
/// Each connection's logic is one future run on the connection's own task
/// ([`Connector::run`](torsion::client::Connector::run)): it sends on
/// schedule and reads responses, and what it writes in one turn leaves in
/// one `sendmsg`. It waits for the run's phases on a one-shot channel.
pub async fn shard(info: ShardInfo, load: Arc<EchoLoad>, coord: Arc<Coordinator>) -> Recorder {
    let rec = Rc::new(RefCell::new(Recorder::default()));
    let weights: Vec<u32> = load.targets.iter().map(|t| t.weight).collect();
    let assignment = target::assign(&weights, load.connections);
    let mut conns = Vec::new();
    for index in (info.id..load.connections).step_by(info.count) {
        let target = assignment[index];
        let shared = Rc::new(Shared::default());
        let (start, started) = torsion::oneshot::channel::<Phases>();
        let (l, r, c, s) = (load.clone(), rec.clone(), coord.clone(), shared.clone());
        let run = load.targets[target]
            .connector(load.connect_timeout)
            .run(move |conn| connection(conn, (index, target), l, r, c, s, started))
            .await;
        match run {
            Ok(task) => conns.push((shared, start, task)),
            Err(e) => {
                let label = &load.targets[target].label;
                coord.fail(format!("cannot connect to {label}: {e}"));
                break;
            }
        }
    }
    // Abandoned: dropping the senders ends the connections' futures.
    let Some(phases) = coord.arrive().await else {
        return take(rec);
    };
    let ticker = spawn_ticker(coord.clone(), phases, rec.clone());
    let mut shared = Vec::with_capacity(conns.len());
    let mut tasks = Vec::with_capacity(conns.len());
    for (s, start, task) in conns {
        start.send(phases);
        shared.push(s);
        tasks.push(task);
    }
    // One deadline for the whole shard (no timer per read): what is still
    // unanswered when the drain ends counts as timed out.
    let all_done = async {
        for t in tasks {
            t.await;
        }
    };
    futures_lite::future::or(all_done, sleep_until(phases.end + load.drain)).await;
    let unanswered: usize = shared.iter().map(|s| s.inflight.borrow().len()).sum();
    rec.borrow_mut().errors.timeout += unanswered as u64;
    for s in &shared {
        s.over.set(true);
        if let Some(t) = s.transport.borrow().as_ref().filter(|t| !t.is_closing()) {
            t.abort();
        }
    }
    report_final_interval(&coord, ticker, &rec).await;
    take(rec)
}

fn take(rec: Rc<RefCell<Recorder>>) -> Recorder {
    rec.borrow().clone()
}

/// Checks a response against what request `seq` sent.
fn verify(frame: &[u8], conn: usize, seq: u64, size: usize) -> bool {
    payload::matches(frame, conn as u32, seq, size)
}

/// One connection's future: waits for the run's phases, then runs the
/// open or the closed loop.
async fn connection(
    mut conn: Connection,
    (index, target): (usize, usize),
    load: Arc<EchoLoad>,
    rec: Rc<RefCell<Recorder>>,
    coord: Arc<Coordinator>,
    shared: Rc<Shared>,
    started: torsion::oneshot::Receiver<Phases>,
) {
    let transport = conn.transport().clone();
    *shared.transport.borrow_mut() = Some(transport.clone());
    let Ok(phases) = started.await else {
        return;
    };
    let load_churn = load.churn;
    let mut c = Conn {
        index,
        target,
        wire: Wire::for_load(&load, index, target),
        load,
        phases,
        rec,
        coord,
        shared,
        transport,
        scratch: Vec::new(),
        payloads: VecDeque::new(),
        spare: Vec::new(),
        frame: BytesMut::new(),
        next_seq: 0,
        closed_loop: false,
        writer_done: false,
        churn_every: (load_churn > 0.0).then(|| (1.0 / load_churn).round().max(1.0) as u64),
        sent_here: 0,
        reconnect_from: None,
    };
    match c.load.rate {
        Rate::PerSecond(r) => c.open_loop(&mut conn, r).await,
        Rate::Max => c.closed_loop(&mut conn).await,
    }
}

/// One load connection's state, owned by its future.
struct Conn {
    index: usize,
    /// Which of the load's targets (its latency row).
    target: usize,
    load: Arc<EchoLoad>,
    phases: Phases,
    rec: Rc<RefCell<Recorder>>,
    coord: Arc<Coordinator>,
    shared: Rc<Shared>,
    /// Where requests are queued (sent when the future's poll returns).
    transport: Transport,
    /// Frames requests, unframes responses.
    wire: Wire,
    /// Open loop: a request's payload (a response is checked against the
    /// payload generated again from its sequence number).
    scratch: Vec<u8>,
    /// Closed loop: the payloads of the requests in flight, oldest first
    /// (at most `pipeline`), and emptied ones for reuse: no allocation per
    /// request once the pipeline is full.
    payloads: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    /// A framed request.
    frame: BytesMut,
    /// Closed loop: the next request's sequence number.
    next_seq: u64,
    /// Closed loop: each response sends the next request.
    closed_loop: bool,
    /// No more requests will be sent.
    writer_done: bool,
    /// Churn: a new connection after this many requests on one (counted
    /// as they are sent, so the count does not depend on how many are in
    /// flight when one is answered).
    churn_every: Option<u64>,
    /// Requests sent on the current connection.
    sent_here: u64,
    /// Churn is due: sending stopped at this time, and the connection is
    /// replaced once its last response is in (unless no request is left to
    /// send on it).
    reconnect_from: Option<Instant>,
}

/// What ended a wait in the open loop.
enum Event {
    /// A request may be due.
    Send,
    /// Responses were taken (`Some(Ok)`), the input is bad (`Some(Err)`,
    /// counted), or it ended (`None`).
    Read(Option<Result<(), ()>>),
}

impl Conn {
    /// Open loop: sends on the schedule's intended times, whether or not
    /// the responses keep up, and takes responses as they come; ends once
    /// the schedule is over and every request is answered, or when the
    /// connection ends (the shard's deadline ends it too).
    async fn open_loop(&mut self, conn: &mut Connection, rate: f64) {
        let mut schedule = Schedule::new(self.phases, rate, self.index, self.load.connections);
        // The next send's alarm, once it is in the future.
        let mut alarm: Option<Alarm> = None;
        // To see from the send side whether the peer is behind.
        let mut probe = self.transport.clone();
        // Sends are looked at when one may be due (the start, the alarm, a
        // resume), not after every read.
        let mut check_sends = true;
        loop {
            // Send every request that is due; none while the peer is behind
            // on reading (above the high-water mark: the kernel's buffer is
            // full), as a blocking write would wait. Their intended times
            // stay, so the wait shows in the corrected latency.
            while check_sends
                && !self.writer_done
                && self.reconnect_from.is_none()
                && !probe.is_writing_paused()
            {
                let Some((seq, intended)) = schedule.peek(&self.coord) else {
                    self.writer_done = true;
                    break;
                };
                let now = Instant::now();
                if intended > now {
                    if alarm.as_ref().map(Alarm::when) != Some(intended) {
                        alarm = Some(Alarm::at(intended));
                    }
                    break;
                }
                alarm = None;
                schedule.advance();
                if !self.send(seq, intended, now) {
                    self.writer_done = true;
                }
            }
            check_sends = false;
            if self.writer_done && self.shared.inflight.borrow().is_empty() {
                return;
            }
            if self.reconnect_from.is_some() && self.shared.inflight.borrow().is_empty() {
                // Not after the last request: the run is over.
                if schedule.peek(&self.coord).is_none() {
                    return;
                }
                if !self.reconnect(conn).await {
                    return;
                }
                probe = self.transport.clone();
                check_sends = true;
                continue;
            }
            let writer_done = self.writer_done || self.reconnect_from.is_some();
            let responses = async {
                Event::Read(
                    conn.read_with(|buf, _at_end| self.take_responses(buf))
                        .await,
                )
            };
            let send_due = std::future::poll_fn(|cx| {
                // Paused: the driver polls this future again when the queue
                // drains (resume_writing), and this looks again.
                if writer_done || probe.is_writing_paused() {
                    return Poll::Pending;
                }
                match alarm.as_mut() {
                    Some(a) => a.poll_at(Instant::now(), cx).map(|()| Event::Send),
                    // Resumed after a pause.
                    None => Poll::Ready(Event::Send),
                }
            });
            match futures_lite::future::or(responses, send_due).await {
                Event::Send => check_sends = true,
                Event::Read(Some(Ok(()))) => {}
                // A response that cannot be framed (counted with its cause)
                // or the connection ended early (counted by why): the run
                // goes on over a new connection.
                Event::Read(end @ (Some(Err(())) | None)) => {
                    if !self.recover(conn, end.is_none()).await {
                        return;
                    }
                    probe = self.transport.clone();
                    alarm = None;
                    check_sends = true;
                }
            }
        }
    }

    /// Closed loop: keeps `pipeline` requests in flight, sending the next
    /// one as each response arrives, until the run ends.
    async fn closed_loop(&mut self, conn: &mut Connection) {
        self.closed_loop = true;
        sleep_until(self.phases.start).await;
        for _ in 0..self.load.pipeline {
            if !self.refill(Instant::now()) {
                self.writer_done = true;
                break;
            }
        }
        loop {
            if self.writer_done && self.shared.inflight.borrow().is_empty() {
                return;
            }
            if let Some(from) = self
                .reconnect_from
                .filter(|_| self.shared.inflight.borrow().is_empty())
            {
                // Not after the last request: the run is over.
                if Instant::now() >= self.phases.end || self.coord.stopping() {
                    return;
                }
                if !self.reconnect(conn).await {
                    return;
                }
                // The pipeline again, timed from when sending stopped: the
                // new connection's cost shows in these requests' latency.
                for _ in 0..self.load.pipeline {
                    if !self.refill_at(from, Instant::now()) {
                        self.writer_done = true;
                        break;
                    }
                }
                continue;
            }
            match conn
                .read_with(|buf, _at_end| self.take_responses(buf))
                .await
            {
                Some(Ok(())) => {}
                end @ (Some(Err(())) | None) => {
                    if !self.recover(conn, end.is_none()).await {
                        return;
                    }
                    let now = Instant::now();
                    for _ in 0..self.load.pipeline {
                        if !self.refill(now) {
                            self.writer_done = true;
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Frames request `seq` and queues it on the transport (it leaves when
    /// the future's poll returns); false if the connection takes no more.
    fn send(&mut self, seq: u64, intended: Instant, now: Instant) -> bool {
        let mut command = 0;
        let queued = match &mut self.wire {
            Wire::Http { request, .. } => self.transport.write_shared(request).is_ok(),
            Wire::Resp(commands) => {
                let redis = self.load.redis.as_ref().expect("a RESP wire has its load");
                let (which, key) = commands.next(&redis.ratio);
                command = which;
                self.frame.clear();
                redis.templates[which].encode(key, &redis.data, &mut self.frame);
                self.transport.write(&self.frame).is_ok()
            }
            wire => {
                // Closed loop: the payload is kept until its response comes
                // back (compared with it, not generated again).
                let mut payload = if self.closed_loop {
                    self.spare.pop().unwrap_or_default()
                } else {
                    std::mem::take(&mut self.scratch)
                };
                payload::fill(&mut payload, self.index as u32, seq, self.load.size);
                let bytes: &[u8] = if let Wire::Raw { .. } = wire {
                    &payload
                } else {
                    self.frame.clear();
                    wire.encode(&payload, &mut self.frame);
                    &self.frame
                };
                let queued = self.transport.write(bytes).is_ok();
                if self.closed_loop {
                    self.payloads.push_back(payload);
                } else {
                    self.scratch = payload;
                }
                queued
            }
        };
        self.shared.inflight.borrow_mut().push_back(InFlight {
            seq,
            intended,
            sent: now,
            command,
        });
        if intended >= self.phases.measure_from {
            self.rec.borrow_mut().sent += 1;
        }
        self.sent_here += 1;
        if self
            .churn_every
            .is_some_and(|every| self.sent_here >= every)
            && self.reconnect_from.is_none()
        {
            self.reconnect_from = Some(now);
        }
        queued
    }

    /// Whether a response answers request `req`: an echo frame must be the
    /// payload it sent; an HTTP status or a RESP reply always answers (its
    /// latency counts), and, for a request of the measured period (as the
    /// completions: statuses add up to them), is counted by class and as
    /// an error when `--accept` does not list the status or the reply is
    /// `-ERR`.
    fn answers(&mut self, decoded: &Decoded, req: &InFlight) -> bool {
        let measured = req.intended >= self.phases.measure_from;
        let seq = req.seq;
        let frame = match decoded {
            Decoded::Frame(frame) => &frame[..],
            Decoded::Status(status) => {
                let accepted = self
                    .load
                    .http
                    .as_ref()
                    .is_some_and(|h| h.accept.accepts(*status));
                if measured {
                    self.rec.borrow_mut().status(*status, accepted);
                }
                return true;
            }
            Decoded::Reply(Reply::Ok) => return true,
            Decoded::Reply(Reply::Error(text)) => {
                if measured {
                    self.rec.borrow_mut().server_error(text);
                }
                return true;
            }
        };
        self.answers_echo(frame, seq)
    }

    /// Whether `frame` is the payload request `seq` sent, echoed.
    fn answers_echo(&mut self, frame: &[u8], seq: u64) -> bool {
        match self.payloads.pop_front() {
            Some(sent) => {
                let right = frame == &sent[..];
                self.spare.push(sent);
                right
            }
            None => verify(frame, self.index, seq, self.load.size),
        }
    }

    /// Closed loop: sends the next request if the run goes on; false when
    /// it is over.
    fn refill(&mut self, now: Instant) -> bool {
        self.refill_at(now, now)
    }

    /// Closed loop: sends the next request, intended at `intended`, if the
    /// run goes on; false when it is over.
    fn refill_at(&mut self, intended: Instant, now: Instant) -> bool {
        if now >= self.phases.end || self.coord.stopping() {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.send(seq, intended, now)
    }

    /// After a response that could not be framed (counted where it was
    /// found) or an early end of the connection's input (`input_ended`:
    /// counted here, by why it ended): forgets the
    /// requests still in flight on it (their cause is counted; they do not
    /// also count as timed out), and goes on over a new connection while
    /// the run lasts. False when the load is over for this connection.
    async fn recover(&mut self, conn: &mut Connection, input_ended: bool) -> bool {
        if input_ended {
            self.ended(conn);
        }
        // Requests of the measured period still waiting on this connection
        // will never be answered: counted, not left to look like timeouts.
        let abandoned = self
            .shared
            .inflight
            .borrow_mut()
            .drain(..)
            .filter(|req| req.intended >= self.phases.measure_from)
            .count();
        self.rec.borrow_mut().errors.abandoned += abandoned as u64;
        self.spare.append(&mut self.payloads.drain(..).collect());
        if self.shared.over.get()
            || self.writer_done
            || self.coord.stopping()
            || Instant::now() >= self.phases.end
        {
            return false;
        }
        // The old connection's framing state goes with it.
        match &mut self.wire {
            Wire::Http { responses, .. } => responses.reset(),
            Wire::Codec(_) => self.wire = Wire::new(self.load.framing, self.load.size),
            // `reconnect` gives a WebSocket wire its new handshake.
            Wire::Ws(_) | Wire::Raw { .. } | Wire::Resp(_) => {}
        }
        self.reconnect(conn).await
    }

    /// Churn: closes the connection (its responses are all in) and opens a
    /// new one to the same target, which the loops go on with. The time
    /// from when sending stopped to the new connection's first responses
    /// shows in the corrected latency (the open loop's requests keep their
    /// intended times; the closed loop's are intended when sending
    /// stopped). False when no new connection could be made (counted).
    async fn reconnect(&mut self, conn: &mut Connection) -> bool {
        self.reconnect_from = None;
        self.sent_here = 0;
        self.transport.close();
        let target = &self.load.targets[self.target];
        match target.connector(self.load.connect_timeout).connect().await {
            Ok(fresh) => {
                *conn = fresh;
                self.transport = conn.transport().clone();
                *self.shared.transport.borrow_mut() = Some(self.transport.clone());
                match &mut self.wire {
                    Wire::Http { responses, .. } => responses.reset(),
                    // A new connection opens with its own handshake.
                    Wire::Ws(_) => self.wire = Wire::for_load(&self.load, self.index, self.target),
                    _ => {}
                }
                self.rec.borrow_mut().reconnects += 1;
                true
            }
            Err(e) => {
                tracing::debug!(target = %target.label, "churn: cannot reconnect: {e}");
                self.rec.borrow_mut().errors.connect += 1;
                false
            }
        }
    }

    /// Takes every whole response off the input, checking and timing each
    /// (one clock reading for all of them: they arrived together); in closed
    /// loop each sends the next request. `Ok(None)` when there is no whole
    /// response yet; `Err` (counted) for input that cannot be framed or a
    /// response to nothing.
    fn take_responses(&mut self, buf: &mut BytesMut) -> Result<Option<()>, ()> {
        let mut arrived = None;
        loop {
            // Raw echo is checked in place (no frame split off the input);
            // a framing's response is decoded first. One clock reading for
            // every response of this read.
            let (now, req, right) = match &mut self.wire {
                Wire::Raw { size } => {
                    let size = *size;
                    if buf.len() < size {
                        return Ok(arrived.map(|_| ()));
                    }
                    let now = *arrived.get_or_insert_with(Instant::now);
                    let req = self.answered()?;
                    let right = self.answers_echo(&buf[..size], req.seq);
                    buf.advance(size);
                    (now, req, right)
                }
                wire => {
                    let frame = match wire.decode(buf) {
                        Ok(Some(f)) => f,
                        Ok(None) => return Ok(arrived.map(|_| ())),
                        Err(cause) => {
                            // The oldest request's answer: counted here, not
                            // again as abandoned with the connection.
                            self.shared.inflight.borrow_mut().pop_front();
                            self.rec.borrow_mut().frame_error(&cause);
                            return Err(());
                        }
                    };
                    let now = *arrived.get_or_insert_with(Instant::now);
                    let req = self.answered()?;
                    let right = self.answers(&frame, &req);
                    (now, req, right)
                }
            };
            {
                let mut r = self.rec.borrow_mut();
                if !right {
                    r.errors.mismatch += 1;
                } else if req.intended >= self.phases.measure_from {
                    r.record(now - req.intended, now - req.sent);
                    // Rows only where the report has them: several
                    // targets, Redis commands.
                    if self.load.targets.len() > 1 {
                        r.record_row(self.target, now - req.intended);
                    }
                    if self.load.redis.is_some() {
                        r.record_row(self.load.targets.len() + req.command, now - req.intended);
                    }
                }
            }
            if self.closed_loop && !self.writer_done && self.reconnect_from.is_none() {
                // A window keeps `pipeline` in flight (one request per
                // response); batches send `pipeline` once all are answered
                // (redis-benchmark's -P).
                let due = match self.load.batches {
                    false => 1,
                    true if self.shared.inflight.borrow().is_empty() => self.load.pipeline,
                    true => 0,
                };
                for _ in 0..due {
                    if !self.refill(now) {
                        self.writer_done = true;
                        break;
                    }
                }
            }
        }
    }

    /// The request a response answers (the oldest in flight); a response to
    /// nothing is counted as a mismatch and ends the connection's load.
    fn answered(&self) -> Result<InFlight, ()> {
        match self.shared.inflight.borrow_mut().pop_front() {
            Some(req) => Ok(req),
            None => {
                self.rec.borrow_mut().errors.mismatch += 1;
                Err(())
            }
        }
    }

    /// The input ended before the load was done: counted by why (see
    /// [`ErrorCounts::connection_ended`](super::recorder::ErrorCounts::connection_ended)),
    /// unless the shard's deadline ended it.
    fn ended(&self, conn: &Connection) {
        if self.shared.over.get() {
            return;
        }
        let unanswered = !self.shared.inflight.borrow().is_empty();
        self.rec
            .borrow_mut()
            .errors
            .connection_ended(conn.lost_reason().as_ref(), unanswered);
    }
}
