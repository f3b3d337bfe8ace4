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
use glommio::net::TcpStream;
use torsion::ShardInfo;
use torsion_protocols::codec::{Decoder, Encoder, IntPrefixedCodec, LineCodec, NetstringCodec, PrefixWidth};
use torsion_protocols::Framing;

use super::engine::{spawn_ticker, Coordinator, Phases};
use super::io::{read_some, sleep_until, write_all};
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
        if self.size < payload::MIN_SIZE {
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
    Raw { size: usize },
    Codec(Box<dyn CodecBoth>),
}

trait CodecBoth {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<bytes::Bytes>, String>;
    fn encode(&self, payload: &[u8], dst: &mut BytesMut) -> Result<(), String>;
}

impl<C: Decoder + Encoder> CodecBoth for C {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<bytes::Bytes>, String> {
        Decoder::decode(self, buf).map_err(|e| e.to_string())
    }
    fn encode(&self, payload: &[u8], dst: &mut BytesMut) -> Result<(), String> {
        Encoder::encode(self, payload, dst).map_err(|e| e.to_string())
    }
}

impl Wire {
    fn new(framing: Framing, size: usize) -> Wire {
        let limit = size + 64;
        match framing {
            Framing::Raw => Wire::Raw { size },
            Framing::Line => Wire::Codec(Box::new(LineCodec::new().max_length(limit))),
            Framing::Netstring => Wire::Codec(Box::new(NetstringCodec::new().max_length(limit))),
            Framing::Int8 => Wire::Codec(Box::new(IntPrefixedCodec::new(PrefixWidth::U8))),
            Framing::Int16 => Wire::Codec(Box::new(IntPrefixedCodec::new(PrefixWidth::U16).max_length(limit))),
            Framing::Int32 => Wire::Codec(Box::new(IntPrefixedCodec::new(PrefixWidth::U32).max_length(limit))),
        }
    }

    fn encode(&self, payload: &[u8], dst: &mut BytesMut) {
        match self {
            Wire::Raw { .. } => dst.extend_from_slice(payload),
            Wire::Codec(c) => c.encode(payload, dst).expect("validated size fits the framing"),
        }
    }

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<bytes::Bytes>, String> {
        match self {
            Wire::Raw { size } => Ok((buf.len() >= *size).then(|| buf.split_to(*size).freeze())),
            Wire::Codec(c) => c.decode(buf),
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
        match TcpStream::connect_timeout(load.target, load.connect_timeout).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                conns.push((i, s));
            }
            Err(e) => {
                coord.fail(format!("cannot connect to {}: {e}", load.target));
                break;
            }
        }
    }
    let Some(phases) = coord.arrive().await else {
        return take(rec);
    };
    spawn_ticker(coord.clone(), phases, rec.clone());
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(i, stream)| {
            let (load, rec, coord) = (load.clone(), rec.clone(), coord.clone());
            glommio::spawn_local(async move {
                match load.rate {
                    Rate::PerSecond(r) => open_loop(i, stream, &load, r, phases, &rec, &coord).await,
                    Rate::Max => closed_loop(i, stream, &load, phases, &rec, &coord).await,
                }
            })
        })
        .collect();
    for t in tasks {
        t.await;
    }
    take(rec)
}

fn take(rec: Rc<RefCell<Recorder>>) -> Recorder {
    rec.borrow().clone()
}

fn request(wire: &Wire, conn: usize, seq: u64, size: usize, scratch: &mut Vec<u8>, out: &mut BytesMut) {
    out.clear();
    payload::fill(scratch, conn as u32, seq, size);
    wire.encode(scratch, out);
}

/// Checks a response against what request `seq` sent.
fn verify(frame: &[u8], conn: usize, seq: u64, size: usize, scratch: &mut Vec<u8>) -> bool {
    payload::fill(scratch, conn as u32, seq, size);
    frame == &scratch[..]
}

async fn open_loop(
    conn: usize,
    stream: TcpStream,
    load: &EchoLoad,
    rate: f64,
    phases: Phases,
    rec: &Rc<RefCell<Recorder>>,
    coord: &Arc<Coordinator>,
) {
    let stream = Rc::new(RefCell::new(stream));
    let inflight: Rc<RefCell<VecDeque<InFlight>>> = Rc::default();
    let writer_done = Rc::new(Cell::new(false));
    let interval = Duration::from_secs_f64(load.connections as f64 / rate);
    let first = phases.start + interval.mul_f64(conn as f64 / load.connections as f64);

    let writer = {
        let (stream, inflight, done, rec) = (stream.clone(), inflight.clone(), writer_done.clone(), rec.clone());
        let wire = Wire::new(load.framing, load.size);
        let size = load.size;
        let coord = coord.clone();
        glommio::spawn_local(async move {
            let mut scratch = Vec::new();
            let mut out = BytesMut::new();
            let mut seq = 0u64;
            loop {
                let intended = first + interval.mul_f64(seq as f64);
                if intended >= phases.end || coord.stopping() {
                    break;
                }
                sleep_until(intended).await;
                request(&wire, conn, seq, size, &mut scratch, &mut out);
                inflight.borrow_mut().push_back(InFlight {
                    seq,
                    intended,
                    sent: Instant::now(),
                });
                if intended >= phases.measure_from {
                    rec.borrow_mut().sent += 1;
                }
                if let Err(e) = write_all(&stream, &out).await {
                    rec.borrow_mut().errors.io_error(&e);
                    break;
                }
                seq += 1;
            }
            done.set(true);
        })
    };

    read_responses(conn, &stream, load, phases, rec, &inflight, &writer_done, coord, None).await;
    let _ = writer.cancel().await;
    let unanswered = inflight.borrow().len() as u64;
    rec.borrow_mut().errors.timeout += unanswered;
}

/// Reads and checks responses until every request is answered (after the
/// writer is done), the drain deadline passes, or the connection fails. In
/// closed loop, `refill` sends the next request after each response.
#[allow(clippy::too_many_arguments)]
async fn read_responses(
    conn: usize,
    stream: &Rc<RefCell<TcpStream>>,
    load: &EchoLoad,
    phases: Phases,
    rec: &Rc<RefCell<Recorder>>,
    inflight: &Rc<RefCell<VecDeque<InFlight>>>,
    writer_done: &Rc<Cell<bool>>,
    coord: &Coordinator,
    mut refill: Option<&mut Refill>,
) {
    let mut wire = Wire::new(load.framing, load.size);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut scratch = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let deadline = phases.end + load.drain;
    loop {
        if writer_done.get() && inflight.borrow().is_empty() {
            return;
        }
        if coord.stopping() && refill.is_some() {
            return;
        }
        let read = futures_lite::future::or(
            async { Some(read_some(stream, &mut chunk).await) },
            async {
                sleep_until(deadline).await;
                None
            },
        )
        .await;
        let n = match read {
            None => return,
            Some(Ok(0)) => {
                if !inflight.borrow().is_empty() {
                    rec.borrow_mut().errors.closed += 1;
                }
                return;
            }
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                rec.borrow_mut().errors.io_error(&e);
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
                    rec.borrow_mut().errors.frame += 1;
                    return;
                }
            };
            let Some(req) = inflight.borrow_mut().pop_front() else {
                rec.borrow_mut().errors.mismatch += 1;
                return;
            };
            let mut r = rec.borrow_mut();
            if !verify(&frame, conn, req.seq, load.size, &mut scratch) {
                r.errors.mismatch += 1;
            } else if req.intended >= phases.measure_from {
                r.record(now - req.intended, now - req.sent);
            }
            drop(r);
            if let Some(refill) = refill.as_deref_mut() {
                if !refill.next(now, phases, coord) {
                    writer_done.set(true);
                }
            }
        }
        if let Some(refill) = refill.as_deref_mut() {
            if let Err(e) = refill.flush(stream).await {
                rec.borrow_mut().errors.io_error(&e);
                return;
            }
        }
    }
}

/// Closed loop: queues the next request after each response.
struct Refill {
    conn: usize,
    seq: u64,
    size: usize,
    wire: Wire,
    scratch: Vec<u8>,
    frame: BytesMut,
    out: BytesMut,
    inflight: Rc<RefCell<VecDeque<InFlight>>>,
    rec: Rc<RefCell<Recorder>>,
}

impl Refill {
    /// Queues request `seq` if the run goes on; false when it is over.
    fn next(&mut self, now: Instant, phases: Phases, coord: &Coordinator) -> bool {
        if now >= phases.end || coord.stopping() {
            return false;
        }
        request(&self.wire, self.conn, self.seq, self.size, &mut self.scratch, &mut self.frame);
        self.out.extend_from_slice(&self.frame);
        self.inflight.borrow_mut().push_back(InFlight {
            seq: self.seq,
            intended: now,
            sent: now,
        });
        if now >= phases.measure_from {
            self.rec.borrow_mut().sent += 1;
        }
        self.seq += 1;
        true
    }

    async fn flush(&mut self, stream: &RefCell<TcpStream>) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = self.out.split();
        write_all(stream, &out).await
    }
}

async fn closed_loop(
    conn: usize,
    stream: TcpStream,
    load: &EchoLoad,
    phases: Phases,
    rec: &Rc<RefCell<Recorder>>,
    coord: &Coordinator,
) {
    let stream = Rc::new(RefCell::new(stream));
    let inflight: Rc<RefCell<VecDeque<InFlight>>> = Rc::default();
    let done = Rc::new(Cell::new(false));
    sleep_until(phases.start).await;
    let mut refill = Refill {
        conn,
        seq: 0,
        size: load.size,
        wire: Wire::new(load.framing, load.size),
        scratch: Vec::new(),
        frame: BytesMut::new(),
        out: BytesMut::new(),
        inflight: inflight.clone(),
        rec: rec.clone(),
    };
    for _ in 0..load.pipeline {
        refill.next(Instant::now(), phases, coord);
    }
    if let Err(e) = refill.flush(&stream).await {
        rec.borrow_mut().errors.io_error(&e);
        return;
    }
    read_responses(conn, &stream, load, phases, rec, &inflight, &done, coord, Some(&mut refill)).await;
    let unanswered = inflight.borrow().len() as u64;
    rec.borrow_mut().errors.timeout += unanswered;
}
