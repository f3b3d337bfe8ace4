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

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use glommio::net::TcpStream;
use torsion::ShardInfo;
use torsion_protocols::codec::{Decoder, LineCodec};

use super::engine::{report_final_interval, spawn_ticker, Coordinator, Phases, Schedule};
use super::io::{read_some, sleep_until, write_all};
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

struct Client {
    index: usize,
    stream: Rc<RefCell<TcpStream>>,
    /// Bytes read past the registration reply.
    leftover: BytesMut,
}

async fn read_line(
    stream: &RefCell<TcpStream>,
    codec: &mut LineCodec,
    buf: &mut BytesMut,
) -> std::io::Result<Option<bytes::Bytes>> {
    let mut chunk = [0u8; 4096];
    loop {
        match codec.decode(buf) {
            Ok(Some(line)) => return Ok(Some(line)),
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        let n = read_some(stream, &mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn register(load: &ChatLoad, index: usize) -> Result<Client, String> {
    let target = load.targets[index % load.targets.len()];
    let stream = TcpStream::connect_timeout(target, load.connect_timeout)
        .await
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let stream = Rc::new(RefCell::new(stream));
    let mut codec = LineCodec::lf_or_crlf().max_length(1 << 20);
    let mut buf = BytesMut::new();
    let expect = |line: Option<bytes::Bytes>, want: &str| -> Result<(), String> {
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
    let greeting = read_line(&stream, &mut codec, &mut buf)
        .await
        .map_err(|e| e.to_string())?;
    expect(greeting, "What's your name?")?;
    let name = format!("load{index}");
    write_all(&stream, format!("{name}\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let welcome = read_line(&stream, &mut codec, &mut buf)
        .await
        .map_err(|e| e.to_string())?;
    expect(welcome, &format!("Welcome, {name}!"))?;
    Ok(Client {
        index,
        stream,
        leftover: buf,
    })
}

fn nanos_since(start: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(start).as_nanos() as u64
}

/// One load shard of the chat load.
pub async fn shard(
    info: ShardInfo,
    load: Arc<ChatLoad>,
    totals: Arc<ChatTotals>,
    coord: Arc<Coordinator>,
) -> Recorder {
    let rec = Rc::new(RefCell::new(Recorder::default()));
    let mut clients = Vec::new();
    for index in (info.id..load.clients).step_by(info.count) {
        match register(&load, index).await {
            Ok(c) => clients.push(c),
            Err(e) => {
                coord.fail(e);
                break;
            }
        }
    }
    let Some(phases) = coord.arrive().await else {
        return rec.borrow().clone();
    };
    let ticker = spawn_ticker(coord.clone(), phases, rec.clone());
    let mut tasks = Vec::new();
    for c in clients {
        if c.index < load.senders {
            let (load, rec, totals, coord, stream) = (
                load.clone(),
                rec.clone(),
                totals.clone(),
                coord.clone(),
                c.stream.clone(),
            );
            let sender = c.index;
            tasks.push(glommio::spawn_local(async move {
                send_messages(sender, &stream, &load, phases, &rec, &totals, &coord).await;
            }));
        }
        let (load, rec, totals) = (load.clone(), rec.clone(), totals.clone());
        tasks.push(glommio::spawn_local(async move {
            receive_messages(c, &load, phases, &rec, &totals).await;
        }));
    }
    for t in tasks {
        t.await;
    }
    report_final_interval(&coord, ticker, &rec).await;
    let r = rec.borrow().clone();
    r
}

async fn send_messages(
    sender: usize,
    stream: &RefCell<TcpStream>,
    load: &ChatLoad,
    phases: Phases,
    rec: &RefCell<Recorder>,
    totals: &ChatTotals,
    coord: &Coordinator,
) {
    let mut schedule = Schedule::new(phases, load.rate, sender, load.senders);
    while let Some((seq, intended)) = schedule.next(coord).await {
        let sent = Instant::now();
        let line = format!(
            "m {sender} {seq} {} {}\r\n",
            nanos_since(phases.start, intended),
            nanos_since(phases.start, sent)
        );
        if let Err(e) = write_all(stream, line.as_bytes()).await {
            rec.borrow_mut().errors.io_error(&e);
            break;
        }
        totals.sent.fetch_add(1, Ordering::SeqCst);
        if intended >= phases.measure_from {
            rec.borrow_mut().sent += 1;
        }
    }
    totals.senders_running.fetch_sub(1, Ordering::SeqCst);
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

/// One receiving client: reads until every due delivery is in (all shards'
/// counts) or the drain deadline passes, timing and checking each line.
///
/// Per read, not per line: one clock reading (every line of a read arrived
/// at once), one update of the shared count, and the deadline's timer is
/// one for the whole run rather than one armed per line.
async fn receive_messages(
    client: Client,
    load: &ChatLoad,
    phases: Phases,
    rec: &RefCell<Recorder>,
    totals: &ChatTotals,
) {
    let mut receiver = Receiver {
        own_index: client.index,
        targets: load.targets.len(),
        senders: load.senders,
        next_seq: vec![0u64; load.senders],
        phases,
    };
    let mut buf = client.leftover;
    let mut chunk = vec![0u8; 16 * 1024];
    let mut deadline = std::pin::pin!(sleep_until(phases.end + load.drain));
    let due_per_message = (load.clients - 1) as u64;
    let mut arrived = Instant::now();
    loop {
        let mut lines = 0;
        let mut delivered = 0;
        while let Some(end) = memchr::memchr(b'\n', &buf[lines..]) {
            let line = &buf[lines..lines + end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            delivered += u64::from(receiver.line(line, arrived, &mut rec.borrow_mut()));
            lines += end + 1;
        }
        let _ = buf.split_to(lines);
        if delivered > 0 {
            totals.received.fetch_add(delivered, Ordering::SeqCst);
        }
        if buf.len() > MAX_LINE {
            let e = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a delivered line is longer than {MAX_LINE} bytes"),
            );
            rec.borrow_mut().errors.io_error(&e);
            break;
        }
        let all_in = totals.senders_running.load(Ordering::SeqCst) == 0
            && totals.received.load(Ordering::SeqCst)
                >= totals.sent.load(Ordering::SeqCst) * due_per_message;
        if all_in {
            break;
        }
        let read = futures_lite::future::or(
            async { Some(read_some(&client.stream, &mut chunk).await) },
            async {
                deadline.as_mut().await;
                None
            },
        )
        .await;
        match read {
            None => break,
            Some(Ok(0)) => {
                rec.borrow_mut().errors.closed += 1;
                break;
            }
            Some(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Some(Err(e)) => {
                rec.borrow_mut().errors.io_error(&e);
                break;
            }
        }
        arrived = Instant::now();
    }
}

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
