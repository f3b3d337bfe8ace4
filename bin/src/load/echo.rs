//! `torsion load echo`: open-loop (fixed rate, latency from the intended
//! send time) or closed-loop (`--rate max`, `--pipeline K`) echo load, every
//! response checked byte for byte.
//!
//! # Open loop and coordinated omission
//!
//! With `--rate R`, connection *i* of *C* sends request *k* at
//! `start + (i/C + k) · C/R` seconds — the total rate spread evenly, phases
//! staggered — whether or not earlier responses came back (a writer task and
//! a reader task share the socket). Each response is timed twice: from the
//! request's *intended* send time (the corrected histogram: a server that
//! stalls for 200 ms shows 200 ms for everything scheduled during the stall,
//! wrk2's fix for coordinated omission) and from its actual send time (the
//! uncorrected service time).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use torsion::ShardInfo;
use torsion_protocols::codec::{
    Decoder, Encoder, FrameError, IntPrefixedCodec, LineCodec, NetstringCodec, PrefixWidth,
};
use torsion_protocols::Framing;

use super::engine::{report_final_interval, spawn_ticker, Coordinator, Phases, Schedule};
use super::http_wire::{HttpResponses, HttpTarget};
use super::io::{read_some, sleep_until, write_all, ClientStream, TlsClient};
use super::payload;
use super::recorder::Recorder;

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

/// What `load echo` does.
#[derive(Debug, Clone)]
pub struct EchoLoad {
    /// The server.
    pub target: SocketAddr,
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
    /// TLS over the TCP connections.
    pub tls: Option<TlsClient>,
    /// HTTP instead of echo (`load http`): each request is a `GET` of this
    /// target and each response is parsed and checked (`http_wire.rs`);
    /// `size` and `framing` do not apply.
    pub http: Option<HttpTarget>,
}

impl EchoLoad {
    /// Checks the settings before anything starts.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be greater than zero".into());
        }
        if self.size < payload::MIN_SIZE && self.http.is_none() {
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
        if self.http.is_some() && (self.udp || self.framing != Framing::Raw) {
            return Err("HTTP load runs over TCP, without --framing".into());
        }
        if self.udp && self.tls.is_some() {
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

/// What an HTTP response with a 2xx status decodes to.
const HTTP_2XX: &[u8] = b"2xx";
/// What an HTTP response with any other status decodes to.
const HTTP_OTHER: &[u8] = b"not 2xx";

/// Frames requests and unframes responses in the chosen framing.
enum Wire {
    Raw {
        size: usize,
    },
    Codec(Box<dyn CodecBoth>),
    /// HTTP: the request's bytes; a response decodes to [`HTTP_2XX`] or
    /// [`HTTP_OTHER`] (static: no allocation per response) for
    /// [`Wire::answers`] to check.
    Http {
        request: bytes::Bytes,
        responses: HttpResponses,
    },
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
    fn for_load(load: &EchoLoad) -> Wire {
        match &load.http {
            Some(target) => Wire::Http {
                request: target.request(),
                responses: HttpResponses::default(),
            },
            None => Wire::new(load.framing, load.size),
        }
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
            Wire::Raw { .. } => dst.extend_from_slice(payload),
            Wire::Codec(c) => c
                .encode(payload, dst)
                .expect("validated size fits the framing"),
        }
    }

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<bytes::Bytes>, String> {
        match self {
            Wire::Raw { size } => Ok((buf.len() >= *size).then(|| buf.split_to(*size).freeze())),
            Wire::Codec(c) => c.decode(buf),
            Wire::Http { responses, .. } => Ok(responses.decode(buf)?.map(|status| {
                bytes::Bytes::from_static(if (200..300).contains(&status) {
                    HTTP_2XX
                } else {
                    HTTP_OTHER
                })
            })),
        }
    }

    /// Whether `frame` is the right answer to request `seq` of connection
    /// `conn`: the echoed payload, or for HTTP a 2xx status.
    fn answers(
        &self,
        frame: &[u8],
        conn: usize,
        seq: u64,
        size: usize,
        scratch: &mut Vec<u8>,
    ) -> bool {
        match self {
            Wire::Http { .. } => frame == HTTP_2XX,
            _ => verify(frame, conn, seq, size, scratch),
        }
    }
}

struct InFlight {
    seq: u64,
    intended: Instant,
    sent: Instant,
}

/// One load shard: connect its share of connections, wait for the start,
/// run them, return what it measured.
pub async fn shard(info: ShardInfo, load: Arc<EchoLoad>, coord: Arc<Coordinator>) -> Recorder {
    let rec = Rc::new(RefCell::new(Recorder::default()));
    let mut conns = Vec::new();
    for i in (info.id..load.connections).step_by(info.count) {
        match ClientStream::connect(load.target, load.connect_timeout, load.tls.as_ref()).await {
            Ok(s) => conns.push((i, s)),
            Err(e) => {
                coord.fail(format!("cannot connect to {}: {e}", load.target));
                break;
            }
        }
    }
    let Some(phases) = coord.arrive().await else {
        return take(rec);
    };
    let ticker = spawn_ticker(coord.clone(), phases, rec.clone());
    let mut queues = Vec::new();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(i, stream)| {
            let inflight: Queue = Rc::default();
            queues.push(inflight.clone());
            let c = Rc::new(Conn {
                index: i,
                load: load.clone(),
                phases,
                rec: rec.clone(),
                coord: coord.clone(),
                inflight,
                stream: Rc::new(RefCell::new(stream)),
                writer_done: Rc::new(Cell::new(false)),
            });
            glommio::spawn_local(async move {
                match c.load.rate {
                    Rate::PerSecond(r) => open_loop(c, r).await,
                    Rate::Max => closed_loop(c).await,
                }
            })
        })
        .collect();
    // One deadline for the whole shard (no timer per read): what is still
    // unanswered when the drain ends counts as timed out.
    let all_done = async {
        for t in tasks {
            t.await;
        }
    };
    futures_lite::future::or(all_done, sleep_until(phases.end + load.drain)).await;
    let unanswered: usize = queues.iter().map(|q| q.borrow().len()).sum();
    rec.borrow_mut().errors.timeout += unanswered as u64;
    report_final_interval(&coord, ticker, &rec).await;
    take(rec)
}

type Queue = Rc<RefCell<VecDeque<InFlight>>>;

fn take(rec: Rc<RefCell<Recorder>>) -> Recorder {
    rec.borrow().clone()
}

fn request(
    wire: &Wire,
    conn: usize,
    seq: u64,
    size: usize,
    scratch: &mut Vec<u8>,
    out: &mut BytesMut,
) {
    out.clear();
    payload::fill(scratch, conn as u32, seq, size);
    wire.encode(scratch, out);
}

/// Checks a response against what request `seq` sent.
fn verify(frame: &[u8], conn: usize, seq: u64, size: usize, scratch: &mut Vec<u8>) -> bool {
    payload::fill(scratch, conn as u32, seq, size);
    frame == &scratch[..]
}

/// One load connection's shared state.
struct Conn {
    index: usize,
    load: Arc<EchoLoad>,
    phases: Phases,
    rec: Rc<RefCell<Recorder>>,
    coord: Arc<Coordinator>,
    inflight: Queue,
    stream: Rc<RefCell<ClientStream>>,
    /// No more requests will be sent.
    writer_done: Rc<Cell<bool>>,
}

async fn open_loop(c: Rc<Conn>, rate: f64) {
    let mut schedule = Schedule::new(c.phases, rate, c.index, c.load.connections);
    let writer = {
        let c = c.clone();
        glommio::spawn_local(async move {
            let wire = Wire::for_load(&c.load);
            let mut scratch = Vec::new();
            let mut out = BytesMut::new();
            while let Some((seq, intended)) = schedule.next(&c.coord).await {
                request(&wire, c.index, seq, c.load.size, &mut scratch, &mut out);
                c.inflight.borrow_mut().push_back(InFlight {
                    seq,
                    intended,
                    sent: Instant::now(),
                });
                if intended >= c.phases.measure_from {
                    c.rec.borrow_mut().sent += 1;
                }
                if let Err(e) = write_all(&c.stream, &out).await {
                    c.rec.borrow_mut().errors.io_error(&e);
                    break;
                }
            }
            c.writer_done.set(true);
        })
    };
    read_responses(&c, None).await;
    let _ = writer.cancel().await;
}

/// Reads and checks responses until every request is answered (after the
/// writer is done) or the connection fails; the shard's deadline cancels
/// what is still waiting. In closed loop, `refill` sends the next request
/// after each response.
async fn read_responses(c: &Conn, mut refill: Option<&mut Refill>) {
    let mut wire = Wire::for_load(&c.load);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut scratch = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if c.writer_done.get() && c.inflight.borrow().is_empty() {
            return;
        }
        let n = match read_some(&c.stream, &mut chunk).await {
            Ok(0) => {
                if !c.inflight.borrow().is_empty() {
                    c.rec.borrow_mut().errors.closed += 1;
                }
                return;
            }
            Ok(n) => n,
            Err(e) => {
                c.rec.borrow_mut().errors.io_error(&e);
                return;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        let now = Instant::now();
        loop {
            let frame = match wire.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    c.rec.borrow_mut().errors.frame += 1;
                    return;
                }
            };
            let Some(req) = c.inflight.borrow_mut().pop_front() else {
                c.rec.borrow_mut().errors.mismatch += 1;
                return;
            };
            let mut r = c.rec.borrow_mut();
            if !wire.answers(&frame, c.index, req.seq, c.load.size, &mut scratch) {
                r.errors.mismatch += 1;
            } else if req.intended >= c.phases.measure_from {
                r.record(now - req.intended, now - req.sent);
            }
            drop(r);
            if let Some(refill) = refill.as_deref_mut() {
                if !refill.next(c, now) {
                    c.writer_done.set(true);
                }
            }
        }
        if let Some(refill) = refill.as_deref_mut() {
            if let Err(e) = refill.flush(&c.stream).await {
                c.rec.borrow_mut().errors.io_error(&e);
                return;
            }
            // Let the shard's other connections run before reading again:
            // by then the reply is often there, and the read succeeds at
            // once instead of failing and arming a poll.
            futures_lite::future::yield_now().await;
        }
    }
}

/// Closed loop: queues the next request after each response.
struct Refill {
    seq: u64,
    wire: Wire,
    scratch: Vec<u8>,
    frame: BytesMut,
    out: BytesMut,
}

impl Refill {
    /// Queues the next request if the run goes on; false when it is over.
    fn next(&mut self, c: &Conn, now: Instant) -> bool {
        if now >= c.phases.end || c.coord.stopping() {
            return false;
        }
        request(
            &self.wire,
            c.index,
            self.seq,
            c.load.size,
            &mut self.scratch,
            &mut self.frame,
        );
        self.out.extend_from_slice(&self.frame);
        c.inflight.borrow_mut().push_back(InFlight {
            seq: self.seq,
            intended: now,
            sent: now,
        });
        if now >= c.phases.measure_from {
            c.rec.borrow_mut().sent += 1;
        }
        self.seq += 1;
        true
    }

    async fn flush(&mut self, stream: &RefCell<ClientStream>) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = self.out.split();
        write_all(stream, &out).await
    }
}

async fn closed_loop(c: Rc<Conn>) {
    sleep_until(c.phases.start).await;
    let mut refill = Refill {
        seq: 0,
        wire: Wire::for_load(&c.load),
        scratch: Vec::new(),
        frame: BytesMut::new(),
        out: BytesMut::new(),
    };
    for _ in 0..c.load.pipeline {
        refill.next(&c, Instant::now());
    }
    if let Err(e) = refill.flush(&c.stream).await {
        c.rec.borrow_mut().errors.io_error(&e);
        return;
    }
    read_responses(&c, Some(&mut refill)).await;
}
