//! The writer cut off from Redis, on a hand-moved clock: batching, the
//! outage bound, refused claims, releases kept for later, the back-off.
//! No Redis server: the link is down throughout (reconnecting goes to a
//! port on 127.0.0.1 that nothing listens on).

use std::sync::Arc;

use torsion::counters::ShardCounter;

use crossbeam_channel::Receiver;

use super::*;
use crate::chat::cluster::stats::ClusterSnapshot;

/// A writer whose link is down, its clock, and the ends it was given.
struct CutOff {
    writer: Writer,
    /// Nanoseconds the clock has been moved on from its start.
    moved: Arc<ShardCounter>,
    _requests: Sender<Request>,
    _stopped: Receiver<()>,
}

impl CutOff {
    fn new(outage: Duration) -> CutOff {
        let start = Instant::now();
        let moved = Arc::new(ShardCounter::default());
        let read = moved.clone();
        let now: Now = Box::new(move || start + Duration::from_nanos(read.get()));
        let (request_tx, request_rx) = crossbeam_channel::unbounded();
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let bus = torsion::Bus::<ChatMessage>::new(1).expect("a bus of one shard");
        let ends = WriterEnds {
            requests: request_rx,
            bus: bus.sender(),
            stats: Arc::new(ClusterStats::default()),
            stop: stop_tx,
        };
        let mut config = ClusterConfig::new(format!("redis://127.0.0.1:{}/", closed_port()));
        config.outage = outage;
        let client = redis::Client::open(config.url.as_str()).expect("a Redis URL");
        let shas = Shas {
            claim: String::new(),
            release: String::new(),
            reassert: String::new(),
            who: String::new(),
        };
        let writer = Writer::with_link(
            config,
            Keys::new("test-node", 1),
            client,
            None,
            shas,
            ends,
            now,
        );
        CutOff {
            writer,
            moved,
            _requests: request_tx,
            _stopped: stop_rx,
        }
    }

    fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).expect("a test-sized step");
        self.moved.add(nanos);
    }

    fn stats(&self) -> ClusterSnapshot {
        self.writer.stats.snapshot()
    }
}

/// A port on 127.0.0.1 that was free a moment ago and is closed now.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn line(n: usize) -> Bytes {
    Bytes::from(format!("<ann> line {n}\r\n"))
}

#[test]
fn lines_wait_through_an_outage_and_go_only_past_its_bound() {
    let mut w = CutOff::new(Duration::from_secs(10));
    for n in 0..5 {
        w.writer.take(Request::Line(line(n)));
    }
    // What the run loop does after taking requests while the link is down.
    w.writer.while_down();
    w.advance(Duration::from_secs(4));
    for n in 5..8 {
        w.writer.take(Request::Line(line(n)));
    }
    w.advance(Duration::from_millis(5_999));
    w.writer.while_down();
    assert_eq!(
        w.stats().lines_dropped,
        0,
        "nothing is older than the bound yet"
    );
    assert_eq!(w.stats().backlog, 8);

    // The first five lines are now 10 s and 1 ms old: they go, counted;
    // the three queued later stay.
    w.advance(Duration::from_millis(2));
    w.writer.while_down();
    let stats = w.stats();
    assert_eq!(stats.lines_dropped, 5);
    assert_eq!(stats.backlog, 3);
    assert_eq!(w.writer.pending.len(), 1);
    let (batch, _) = &w.writer.pending[0];
    assert_eq!((batch.first, batch.count), (5, 3), "line numbers run on");
}

#[test]
fn a_batch_is_sealed_at_its_size_limit() {
    let mut w = CutOff::new(Duration::from_secs(10));
    let big = Bytes::from(vec![b'x'; MAX_BATCH_BYTES / 4]);
    for _ in 0..9 {
        w.writer.take(Request::Line(big.clone()));
    }
    // Four lines fill a batch; the ninth is still open.
    assert_eq!(w.writer.pending.len(), 2);
    assert_eq!(w.writer.open_count, 1);
    assert_eq!(w.stats().backlog, 9);
}

#[test]
fn claims_are_refused_and_releases_kept_while_cut_off() {
    let mut w = CutOff::new(Duration::from_secs(10));
    let (claim_tx, claim_rx) = torsion::oneshot::channel();
    let (who_tx, who_rx) = torsion::oneshot::channel();
    w.writer.held.insert("bob".to_string());
    w.writer.take(Request::Claim {
        name: "ann".to_string(),
        answer: claim_tx,
    });
    w.writer.take(Request::Release {
        name: "bob".to_string(),
    });
    w.writer.take(Request::Who(who_tx));
    w.writer.while_down();

    let (claim, who) = torsion::block_on(async move { (claim_rx.await, who_rx.await) })
        .expect("an executor for the answers");
    assert_eq!(claim.ok(), Some(ClaimOutcome::Unavailable));
    let who = who.expect("an answer to /who");
    assert!(!who.reachable);
    assert!(who.names.is_empty());
    assert_eq!(
        w.writer.to_release,
        ["bob"],
        "released first when the link is back"
    );
    assert!(!w.writer.held.contains("bob"));
    assert_eq!(w.stats().claims_unavailable, 1);
}

#[test]
fn reconnecting_backs_off_from_a_tenth_of_a_second_to_one() {
    let mut w = CutOff::new(Duration::from_secs(10));
    let mut waits = Vec::new();
    for _ in 0..8 {
        let now = w.writer.now();
        w.writer.reconnect();
        assert!(w.writer.con.is_none(), "nothing listens there");
        waits.push(w.writer.next_connect - now);
        w.advance(w.writer.next_connect - now);
    }
    // Doubling from 100 ms with Twisted's jitter (σ = 12%), capped at 1 s.
    let expected = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
    for (wait, ms) in waits.iter().zip(expected) {
        let ms = Duration::from_millis(ms);
        assert!(
            *wait >= ms.mul_f64(0.5) && *wait <= ms.mul_f64(1.5).min(RECONNECT_MAX),
            "waits {waits:?}"
        );
    }
    assert!(waits[3] > waits[0], "it backs off: {waits:?}");

    // A link lost again starts from the first wait.
    w.writer.link_lost(&redis::RedisError::from((
        redis::ErrorKind::IoError,
        "test",
    )));
    let again = w.writer.next_connect - w.writer.now();
    assert!(again <= Duration::from_millis(150), "{again:?}");
}
