//! `torsion load chat`: named clients, some of them senders at a fixed total
//! rate; every receiver times each delivery from the message's intended
//! send time and checks each sender's order, loss and duplication.
//!
//! A message is one line: `m <sender> <seq> <intended_ns> <sent_ns>` (times
//! since the run's start, which every load shard shares). The chat server
//! delivers it as `<name> m …`; receivers parse it back. Every client is
//! named, so each message is due at `clients - 1` receivers.
//!
//! Several targets (nodes of one chat cluster): client `i` connects to
//! target `i mod n`, and each delivery is also recorded as same-node or
//! cross-node (sender and receiver on the same target or not).
//!
//! Each client is one future on its connection's own task
//! ([`Connector::run`]), reading lines through [`Frames`] with a
//! [`ChatCodec`] (`\r\n` lines, or with `websocket` one text message per
//! line after the handshake, `chat_wire.rs`): it registers, then (a sender) queues its messages on the
//! transport at their intended times and receives, all in one loop; the
//! lines one read brought are timed with one clock reading.

use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use torsion::client::Connector;
use torsion::codec::FrameError;
use torsion::{oneshot, Connection, Frames, ShardInfo, Transport};

use super::chat_wire::{self, ChatCodec, ChatWireError};
use super::engine::{report_final_interval, spawn_ticker, Alarm, Coordinator, Phases, Schedule};
use super::recorder::Recorder;

/// What `load chat` does.
#[derive(Debug, Clone)]
pub struct ChatLoad {
    /// The chat servers (nodes of one cluster when several): client `i`
    /// connects to `targets[i % targets.len()]`.
    pub targets: Vec<SocketAddr>,
    /// Named clients in total.
    pub clients: usize,
    /// How many of them send.
    pub senders: usize,
    /// Messages per second in total.
    pub rate: f64,
    /// Measured time.
    pub duration: Duration,
    /// Time before measuring.
    pub warmup: Duration,
    /// Connect (and register) timeout.
    pub connect_timeout: Duration,
    /// How long receivers wait for stragglers after sending stops.
    pub drain: Duration,
    /// The targets are the chat's WebSocket listeners: each client opens
    /// with the handshake and sends and receives text messages.
    pub websocket: bool,
}

impl ChatLoad {
    /// Checks the settings before anything starts.
    pub fn validate(&self) -> Result<(), String> {
        if self.targets.is_empty() {
            return Err("--target: at least one server".into());
        }
        if self.clients < 2 {
            return Err("--clients must be at least 2 (someone has to receive)".into());
        }
        if self.senders == 0 || self.senders > self.clients {
            return Err(format!(
                "--senders must be between 1 and --clients ({})",
                self.clients
            ));
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err("--rate must be a number of messages per second > 0".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be greater than zero".into());
        }
        Ok(())
    }
}

/// Counters every load shard shares: to know when every due delivery is in.
#[derive(Debug, Default)]
pub struct ChatTotals {
    /// Messages sent (all of them, warm-up included).
    pub sent: AtomicU64,
    /// Deliveries received (all of them).
    pub received: AtomicU64,
    /// Senders still sending.
    pub senders_running: AtomicU64,
}

/// The codec of a chat client: a line ends with `\r\n` or `\n` (or is one
/// WebSocket text message), and one longer than [`MAX_LINE`] is an error.
fn codec(websocket: bool) -> ChatCodec {
    if websocket {
        ChatCodec::websocket(MAX_LINE)
    } else {
        ChatCodec::lines(MAX_LINE)
    }
}

/// One chat client's share of the run.
struct Client {
    index: usize,
    load: Arc<ChatLoad>,
    rec: Rc<RefCell<Recorder>>,
    totals: Arc<ChatTotals>,
    coord: Arc<Coordinator>,
}

/// A line read while registering: `None` if the server closed first.
async fn registration_line(frames: &mut Frames<ChatCodec>) -> Result<Option<Bytes>, String> {
    match frames.next().await {
        Some(Ok(line)) => Ok(Some(line)),
        Some(Err(ChatWireError::Frame(FrameError::Truncated { .. }))) => Ok(None),
        Some(Err(e)) => Err(e.to_string()),
        None => match frames.connection().lost_reason() {
            Some(reason) if !reason.is_clean() => Err(reason.to_string()),
            _ => Ok(None),
        },
    }
}

/// Reads the greeting, gives the client's name, reads the welcome.
async fn register(frames: &mut Frames<ChatCodec>, index: usize) -> Result<(), String> {
    let expect = |line: Option<Bytes>, want: &str| -> Result<(), String> {
        match line {
            Some(l) if l == want.as_bytes() => Ok(()),
            Some(l) => Err(format!(
                "client {index}: expected {want:?}, the server said {:?}",
                String::from_utf8_lossy(&l)
            )),
            None => Err(format!(
                "client {index}: the server closed while registering"
            )),
        }
    };
    expect(registration_line(frames).await?, "What's your name?")?;
    let name = format!("load{index}");
    let mut framed = Vec::new();
    frames.codec().frame(name.as_bytes(), &mut framed);
    frames
        .connection()
        .write(&framed)
        .await
        .map_err(|e| e.to_string())?;
    expect(
        registration_line(frames).await?,
        &format!("Welcome, {name}!"),
    )
}

fn nanos_since(start: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(start).as_nanos() as u64
}

/// One load shard of the chat load: connects and registers its clients one
/// after the other, waits for the start, runs them.
///
/// Each client is one future on its connection's own task
/// ([`Connector::run`]): it registers (and reports how that went), waits for
/// the run's phases, then sends on its schedule (if it is a sender) and
/// receives.
pub async fn shard(
    info: ShardInfo,
    load: Arc<ChatLoad>,
    totals: Arc<ChatTotals>,
    coord: Arc<Coordinator>,
) -> Recorder {
    let rec = Rc::new(RefCell::new(Recorder::default()));
    let mut clients = Vec::new();
    for index in (info.id..load.clients).step_by(info.count) {
        let target = load.targets[index % load.targets.len()];
        let (registered, registration) = oneshot::channel::<Result<(), String>>();
        let (start, started) = oneshot::channel::<Phases>();
        let client = Client {
            index,
            load: load.clone(),
            rec: rec.clone(),
            totals: totals.clone(),
            coord: coord.clone(),
        };
        let run = Connector::new(target)
            .timeout(load.connect_timeout)
            .run(move |conn| client.run(conn, registered, started))
            .await;
        let task = match run {
            Ok(task) => task,
            Err(e) => {
                coord.fail(format!("cannot connect to {target}: {e}"));
                break;
            }
        };
        match registration.await {
            Ok(Ok(())) => clients.push((start, task)),
            Ok(Err(e)) => {
                coord.fail(e);
                break;
            }
            Err(_) => {
                coord.fail(format!("client {index}: registering failed"));
                break;
            }
        }
    }
    // Abandoned: dropping the senders ends the clients' futures.
    let Some(phases) = coord.arrive().await else {
        return rec.borrow().clone();
    };
    let ticker = spawn_ticker(coord.clone(), phases, rec.clone());
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(start, task)| {
            start.send(phases);
            task
        })
        .collect();
    for t in tasks {
        t.await;
    }
    report_final_interval(&coord, ticker, &rec).await;
    let r = rec.borrow().clone();
    r
}

/// What ended a client's wait.
enum Event {
    /// A message may be due.
    Send,
    /// The drain deadline passed.
    Deadline,
    /// A delivered line, bad input, or the end of the input.
    Line(Option<Result<Bytes, ChatWireError>>),
}

impl Client {
    /// The client's future: registers, waits for the phases, runs.
    async fn run(
        self,
        mut conn: Connection,
        registered: oneshot::Sender<Result<(), String>>,
        started: oneshot::Receiver<Phases>,
    ) {
        if self.load.websocket {
            let host = conn.peer_addr().to_string();
            if let Err(e) = chat_wire::handshake(&mut conn, &host).await {
                registered.send(Err(format!("client {}: {e}", self.index)));
                return;
            }
        }
        let mut frames = conn.framed(codec(self.load.websocket));
        if let Err(e) = register(&mut frames, self.index).await {
            registered.send(Err(e));
            return;
        }
        registered.send(Ok(()));
        let Ok(phases) = started.await else {
            return;
        };
        self.exchange(&mut frames, phases).await;
    }

    /// Sends on the schedule (a sender) and receives until every due
    /// delivery is in (all shards' counts) or the drain deadline passes,
    /// timing and checking each line.
    ///
    /// Per read, not per line: one clock reading (every line of a read
    /// arrived at once: the first is awaited, the rest are taken as
    /// buffered), one update of the shared count, and the deadline's timer
    /// is one for the whole run rather than one armed per line. Receiving
    /// ends on the first error; a sender still sends out its schedule.
    async fn exchange(&self, frames: &mut Frames<ChatCodec>, phases: Phases) {
        let load = &self.load;
        let transport = frames.connection().transport().clone();
        let mut schedule = (self.index < load.senders)
            .then(|| Schedule::new(phases, load.rate, self.index, load.senders));
        // The next message's alarm, once it is in the future.
        let mut alarm: Option<Alarm> = None;
        let mut message = (Vec::with_capacity(64), Vec::with_capacity(80));
        let mut receiver = Receiver {
            own_index: self.index,
            targets: load.targets.len(),
            senders: load.senders,
            next_seq: vec![0u64; load.senders],
            phases,
        };
        let mut deadline = Alarm::at(phases.end + load.drain);
        let due_per_message = (load.clients - 1) as u64;
        let mut receiving = true;
        // Sends are looked at when one may be due (the start, the alarm, a
        // resume), not after every read.
        let mut check_sends = true;
        loop {
            if let Some(s) = schedule.as_mut().filter(|_| check_sends) {
                if !self.send_due(
                    s,
                    &transport,
                    frames.codec(),
                    &mut alarm,
                    &mut message,
                    phases,
                ) {
                    schedule = None;
                    alarm = None;
                    self.totals.senders_running.fetch_sub(1, Ordering::SeqCst);
                }
            }
            check_sends = false;
            if receiving && self.all_in(due_per_message) {
                receiving = false;
            }
            let sending = schedule.is_some();
            if !receiving && !sending {
                return;
            }
            let lines = async {
                if !receiving {
                    return futures_lite::future::pending().await;
                }
                Event::Line(frames.next().await)
            };
            // The deadline and the next send: one clock reading, and only
            // when no line is waiting.
            let timers = std::future::poll_fn(|cx| {
                let now = Instant::now();
                if receiving && deadline.poll_at(now, cx).is_ready() {
                    return Poll::Ready(Event::Deadline);
                }
                // Paused: the driver polls this future again when the queue
                // drains (resume_writing), and this looks again.
                if sending && !transport.is_writing_paused() {
                    let due = match alarm.as_mut() {
                        Some(a) => a.poll_at(now, cx).is_ready(),
                        // Resumed after a pause.
                        None => true,
                    };
                    if due {
                        return Poll::Ready(Event::Send);
                    }
                }
                Poll::Pending
            });
            match futures_lite::future::or(lines, timers).await {
                Event::Send => check_sends = true,
                Event::Deadline => receiving = false,
                Event::Line(first) => {
                    receiving = self.take_lines(first, frames, &mut receiver);
                }
            }
        }
    }

    /// Sends every message that is due (none while the server is behind on
    /// reading: the queue is above its high-water mark, as a blocking write
    /// would wait; the intended times stay). Sets `alarm` for the next one;
    /// false once sending is over (the schedule's end, a stop, or a
    /// connection that takes no more).
    fn send_due(
        &self,
        schedule: &mut Schedule,
        transport: &Transport,
        codec: &ChatCodec,
        alarm: &mut Option<Alarm>,
        message: &mut (Vec<u8>, Vec<u8>),
        phases: Phases,
    ) -> bool {
        let (text, wire) = message;
        while !transport.is_writing_paused() {
            let Some((seq, intended)) = schedule.peek(&self.coord) else {
                return false;
            };
            let now = Instant::now();
            if intended > now {
                if alarm.as_ref().map(Alarm::when) != Some(intended) {
                    *alarm = Some(Alarm::at(intended));
                }
                return true;
            }
            *alarm = None;
            schedule.advance();
            text.clear();
            // Writing to memory cannot fail.
            let _ = write!(
                text,
                "m {} {seq} {} {}",
                self.index,
                nanos_since(phases.start, intended),
                nanos_since(phases.start, now)
            );
            wire.clear();
            codec.frame(text, wire);
            if transport.write(wire).is_err() {
                // The connection ended: its end is counted where it is read.
                return false;
            }
            self.totals.sent.fetch_add(1, Ordering::SeqCst);
            if intended >= phases.measure_from {
                self.rec.borrow_mut().sent += 1;
            }
        }
        true
    }

    /// Every due delivery is in: no sender is sending and every shard's
    /// receivers have all they are due.
    fn all_in(&self, due_per_message: u64) -> bool {
        self.totals.senders_running.load(Ordering::SeqCst) == 0
            && self.totals.received.load(Ordering::SeqCst)
                >= self.totals.sent.load(Ordering::SeqCst) * due_per_message
    }

    /// Checks and times `first` and every line already buffered behind it
    /// (they arrived together); false when receiving is over (bad input or
    /// the input's end, counted).
    fn take_lines(
        &self,
        first: Option<Result<Bytes, ChatWireError>>,
        frames: &mut Frames<ChatCodec>,
        receiver: &mut Receiver,
    ) -> bool {
        let arrived = Instant::now();
        let mut delivered = 0;
        let mut next = first;
        let go_on = loop {
            match next {
                Some(Ok(line)) => {
                    delivered +=
                        u64::from(receiver.line(&line, arrived, &mut self.rec.borrow_mut()));
                }
                // The input ended inside a line.
                Some(Err(ChatWireError::Frame(FrameError::Truncated { .. }))) => {
                    self.rec.borrow_mut().errors.closed += 1;
                    break false;
                }
                // A line longer than MAX_LINE.
                Some(Err(_)) => {
                    self.rec.borrow_mut().errors.io += 1;
                    break false;
                }
                None => {
                    let reason = frames.connection().lost_reason();
                    self.rec
                        .borrow_mut()
                        .errors
                        .connection_ended(reason.as_ref(), true);
                    break false;
                }
            }
            match frames.try_next() {
                Some(more) => next = Some(more),
                None => break true,
            }
        };
        if delivered > 0 {
            self.totals.received.fetch_add(delivered, Ordering::SeqCst);
        }
        go_on
    }
}

struct Parsed {
    sender: usize,
    seq: u64,
    intended_ns: u64,
    sent_ns: u64,
}

/// Parses a delivered line (without its line end): `<name> m <sender> <seq>
/// <intended_ns> <sent_ns>`. Works on the bytes as read: at 2 million
/// deliveries a second the generator cannot afford a UTF-8 check, a string
/// splitter and a `Bytes` per line (they were a fifth of its core).
fn parse(line: &[u8]) -> Option<Parsed> {
    let at = memchr::memmem::find(line, b"> m ")?;
    let mut fields = line[at + 4..].split(|&b| b == b' ');
    let mut number = || -> Option<u64> {
        let digits = fields.next()?;
        if digits.is_empty() {
            return None;
        }
        digits.iter().try_fold(0u64, |n, &d| {
            let digit = d.checked_sub(b'0').filter(|d| *d <= 9)?;
            n.checked_mul(10)?.checked_add(u64::from(digit))
        })
    };
    let p = Parsed {
        sender: usize::try_from(number()?).ok()?,
        seq: number()?,
        intended_ns: number()?,
        sent_ns: number()?,
    };
    fields.next().is_none().then_some(p)
}

/// The longest delivered line the generator accepts before it calls the
/// stream broken.
const MAX_LINE: usize = 1 << 20;

/// What one receiving client knows: who it is and what it expects next.
struct Receiver {
    own_index: usize,
    /// How many targets the clients are spread over.
    targets: usize,
    senders: usize,
    /// The next sequence number due from each sender.
    next_seq: Vec<u64>,
    phases: Phases,
}

impl Receiver {
    /// Checks and times one delivered line that arrived at `arrived`;
    /// true when it is a delivery from another sender (counted towards the
    /// deliveries due, in order or not).
    fn line(&mut self, line: &[u8], arrived: Instant, r: &mut Recorder) -> bool {
        let Some(m) = parse(line) else {
            r.errors.unexpected += 1;
            return false;
        };
        if m.sender >= self.senders || m.sender == self.own_index {
            r.errors.unexpected += 1;
            return false;
        }
        let expected = self.next_seq[m.sender];
        if m.seq < expected {
            r.errors.reordered += 1;
            return true;
        }
        // A gap (m.seq > expected) is not counted here: the skipped messages
        // may still turn up (then they count as reordered, above); what never
        // arrives is counted at the end as deliveries expected − received.
        self.next_seq[m.sender] = m.seq + 1;
        let intended = self.phases.start + Duration::from_nanos(m.intended_ns);
        let sent = self.phases.start + Duration::from_nanos(m.sent_ns);
        if intended >= self.phases.measure_from {
            let corrected = arrived.saturating_duration_since(intended);
            r.record(corrected, arrived.saturating_duration_since(sent));
            if self.targets > 1 {
                let same = m.sender % self.targets == self.own_index % self.targets;
                r.record_node(same, corrected);
                // A row per node: deliveries to this receiver's node.
                r.record_row(self.own_index % self.targets, corrected);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_delivered_line_parses_back_to_its_fields() {
        let p = parse(b"<load3> m 7 42 1000 1002").unwrap();
        assert_eq!(
            (p.sender, p.seq, p.intended_ns, p.sent_ns),
            (7, 42, 1000, 1002)
        );
        let max = format!("<a> m 0 {} 0 0", u64::MAX);
        assert_eq!(parse(max.as_bytes()).unwrap().seq, u64::MAX);
    }

    #[test]
    fn anything_else_is_refused_not_guessed() {
        for bad in [
            &b"<load3> m 7 42 1000"[..],
            b"<load3> m 7 42 1000 1002 9",
            b"<load3> m 7 42  1000 1002",
            b"<load3> m 7 -42 1000 1002",
            b"<load3> m 7 4x2 1000 1002",
            b"<load3> x 7 42 1000 1002",
            b"m 7 42 1000 1002",
            b"<a> m 0 18446744073709551616 0 0",
            b"<a> m 0 99999999999999999999 0 0",
            b"",
        ] {
            assert!(parse(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
