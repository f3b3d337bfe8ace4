//! The runtime on real sockets (127.0.0.1, port 0): shards, listeners,
//! Protocol/Factory/Transport semantics, flow control, isolation, shutdown.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use torsion::{
    DisconnectReason, FlowLimits, FnFactory, Protocol, Server, ServerBuilder, ServerHandle,
    Transport,
};
use torsion_protocols::EchoFactory;
use torsion_tests::*;

fn echo_server(shards: Option<usize>) -> ServerHandle {
    let mut b = Server::builder().listen_on(LOOPBACK).unwrap();
    if let Some(n) = shards {
        b = b.shards(n);
    }
    b.serve(|_| EchoFactory).unwrap()
}

type OnTransport = Option<Box<dyn FnMut(&Transport)>>;
type OnData = Option<Box<dyn FnMut(&Transport, &mut BytesMut)>>;

/// A protocol assembled from closures, reporting its lifecycle.
#[derive(Default)]
struct Scripted {
    on_made: OnTransport,
    on_data: OnData,
    on_eof: OnTransport,
    on_shutdown: OnTransport,
    events: Option<Sender<Event>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Made(usize),
    Eof,
    PauseWriting,
    ResumeWriting,
    Lost(DisconnectReason),
}

impl Scripted {
    fn report(&self, e: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }
}

impl Protocol for Scripted {
    fn connection_made(&mut self, t: &Transport) {
        self.report(Event::Made(t.shard_id()));
        if let Some(f) = &mut self.on_made {
            f(t)
        }
    }
    fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
        match &mut self.on_data {
            Some(f) => f(t, data),
            None => data.clear(),
        }
    }
    fn eof_received(&mut self, t: &Transport, _data: &mut BytesMut) {
        self.report(Event::Eof);
        match &mut self.on_eof {
            Some(f) => f(t),
            None => t.close(),
        }
    }
    fn pause_writing(&mut self, _t: &Transport) {
        self.report(Event::PauseWriting);
    }
    fn resume_writing(&mut self, _t: &Transport) {
        self.report(Event::ResumeWriting);
    }
    fn shutdown_requested(&mut self, t: &Transport) {
        match &mut self.on_shutdown {
            Some(f) => f(t),
            None => t.close(),
        }
    }
    fn connection_lost(&mut self, reason: &DisconnectReason) {
        self.report(Event::Lost(reason.clone()));
    }
}

fn one_shard() -> ServerBuilder {
    Server::builder().listen_on(LOOPBACK).unwrap().shards(1)
}

/// A server whose connections each run `make(peer)`, reporting to `rec`.
fn scripted_server<M>(builder: ServerBuilder, rec: &Recorder<Event>, make: M) -> ServerHandle
where
    M: Fn(SocketAddr) -> Scripted + Clone + Send + Sync + 'static,
{
    let tx = rec.sender();
    builder
        .serve(move |_| {
            let (tx, make) = (tx.clone(), make.clone());
            FnFactory(move |peer| {
                let mut s = make(peer);
                s.events = Some(tx.clone());
                Some(s)
            })
        })
        .unwrap()
}

fn lost_reasons(events: &[Event]) -> Vec<DisconnectReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Lost(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn echo_round_trips_through_every_shard() {
    let server = echo_server(None);
    let shards = server.shard_count();
    let mut conns = 0u64;
    // The kernel hashes connections over the shards' listeners: keep
    // connecting until every shard has served some (bounded).
    while server.stats().iter().any(|s| s.served() == 0) {
        assert!(
            conns < 2000,
            "some shard never got a connection: {:?}",
            server.stats()
        );
        let mut c = connect(server.local_addr());
        for size in [1usize, 100, 4096, 70_000] {
            let payload = pattern(conns * 10 + size as u64, size);
            assert_eq!(round_trip(&mut c, &payload).unwrap(), payload);
        }
        conns += 1;
    }
    // A shard counts a write when it sees the write's completion, which
    // may come after the client already read the bytes: the counters are
    // exact once the shards have stopped, so compare them then.
    let counters = server.stats_reader();
    server.stop().unwrap();
    let stats = counters.snapshot();
    assert_eq!(stats.len(), shards);
    for s in &stats {
        assert!(s.served() > 0);
        assert!(s.bytes_in > 0 && s.bytes_out > 0);
    }
    let total = counters.total();
    assert_eq!(
        total.bytes_in, total.bytes_out,
        "echo writes back every byte"
    );
}

/// A shard that sleeps through single wake-ups (`Clock::coalesce_wakeups_for`,
/// as the chat room does while its flush window is open) still reads
/// everything that arrived meanwhile, from every connection, in order.
#[test]
fn a_shard_that_coalesces_wake_ups_still_reads_and_answers_everything() {
    let rec = Recorder::default();
    let server = scripted_server(one_shard(), &rec, |_| Scripted {
        on_data: Some(Box::new(|t, data| {
            t.clock().coalesce_wakeups_for(Duration::from_millis(2));
            let _ = t.write_bytes(data.split().freeze());
        })),
        ..Default::default()
    });
    let mut clients: Vec<_> = (0..3).map(|_| connect(server.local_addr())).collect();
    for round in 0..40u64 {
        let payloads: Vec<Vec<u8>> = (0..clients.len() as u64)
            .map(|i| pattern(round * 10 + i, 1 + (round as usize * 997) % 20_000))
            .collect();
        // Every client's bytes arrive while the shard may be sleeping
        // through them; then each reads its own back.
        for (c, p) in clients.iter_mut().zip(&payloads) {
            c.write_all(p).unwrap();
        }
        for (c, p) in clients.iter_mut().zip(&payloads) {
            let mut back = vec![0u8; p.len()];
            c.read_exact(&mut back).unwrap();
            assert_eq!(&back, p, "round {round}");
        }
    }
    server.stop().unwrap();
}

fn listening_sockets_on_port(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let want = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 3 && cols[1].ends_with(&want) && cols[3] == "0A"
        })
        .count()
}

fn thread_affinity(tid: u64) -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let rc = libc::sched_getaffinity(
            tid as libc::pid_t,
            std::mem::size_of::<libc::cpu_set_t>(),
            &mut set,
        );
        assert_eq!(rc, 0, "sched_getaffinity({tid})");
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

#[test]
fn shard_threads_carry_the_builders_name() {
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(1)
        .thread_name("my\0app")
        .serve(|_shard| EchoFactory)
        .unwrap();
    let tid = server.stats()[0].thread_id;
    let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
    assert_eq!(
        comm.trim_end(),
        "myapp-0",
        "the NUL is dropped, not a panic"
    );
    server.stop().unwrap();
}

#[test]
fn every_shard_listens_on_one_port_from_its_own_pinned_thread() {
    let server = echo_server(None);
    let n = server.shard_count();
    assert_eq!(listening_sockets_on_port(server.local_addr().port()), n);
    let stats = server.stats();
    let mut cores: Vec<usize> = stats.iter().map(|s| s.core).collect();
    for s in &stats {
        assert_ne!(s.thread_id, 0);
        assert_eq!(
            thread_affinity(s.thread_id),
            vec![s.core],
            "shard {}",
            s.shard_id
        );
    }
    cores.sort();
    cores.dedup();
    assert_eq!(cores.len(), n, "each shard on a distinct core");
    for (i, info) in server.shards().iter().enumerate() {
        assert_eq!((info.id, info.count), (i, n));
    }
    let port = server.local_addr().port();
    server.stop().unwrap();
    assert_eq!(
        listening_sockets_on_port(port),
        0,
        "listeners closed by stop"
    );
}

#[test]
fn impossible_core_plans_are_errors_not_panics() {
    let err = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(4096)
        .serve(|_| EchoFactory)
        .unwrap_err();
    assert!(err.to_string().contains("4096 shards asked for"), "{err}");
    let err = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .cores(vec![100_000])
        .serve(|_| EchoFactory)
        .unwrap_err();
    assert!(
        err.to_string().contains("core 100000 is not allowed"),
        "{err}"
    );
    let err = Server::builder().serve(|_| EchoFactory).unwrap_err();
    assert!(matches!(err, torsion::ServerError::NoEndpoint));
}

#[test]
fn a_taken_port_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = Server::builder()
        .listen_on(&format!("tcp:{port}:interface=127.0.0.1"))
        .unwrap()
        .serve(|_| EchoFactory)
        .unwrap_err();
    assert!(matches!(err, torsion::ServerError::Bind { .. }), "{err}");
}

#[test]
fn build_protocol_returning_none_refuses_the_connection() {
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(1)
        .serve(|_| FnFactory(|_peer| None::<torsion_protocols::Echo>))
        .unwrap();
    let mut c = connect(server.local_addr());
    let _ = c.write_all(b"anyone there?");
    let (data, _err) = read_to_end_or_error(&mut c);
    assert!(data.is_empty(), "a refused connection gets nothing back");
    assert!(wait_until(|| server.total_stats().refused == 1));
    let total = server.total_stats();
    assert_eq!(total.open_connections, 0);
    assert_eq!(
        total.closed_total(),
        0,
        "refused connections never had a protocol"
    );
    server.stop().unwrap();
}

#[test]
fn a_panicking_protocol_closes_only_its_own_connection() {
    let rec = Recorder::default();
    let server = scripted_server(one_shard(), &rec, |_peer| Scripted {
        on_data: Some(Box::new(|t: &Transport, data: &mut BytesMut| {
            if data.starts_with(b"panic") {
                panic!("deliberate panic in data_received");
            }
            t.write_bytes(data.split().freeze()).unwrap();
        })),
        ..Scripted::default()
    });
    let mut healthy: Vec<_> = (0..3).map(|_| connect(server.local_addr())).collect();
    let mut victim = connect(server.local_addr());
    for c in &mut healthy {
        assert_eq!(round_trip(c, b"before").unwrap(), b"before");
    }
    victim.write_all(b"panic now").unwrap();
    let (data, _) = read_to_end_or_error(&mut victim);
    assert!(data.is_empty());
    assert!(wait_until(|| server.total_stats().panics == 1));
    for (i, c) in healthy.iter_mut().enumerate() {
        let msg = format!("after {i}");
        assert_eq!(round_trip(c, msg.as_bytes()).unwrap(), msg.as_bytes());
    }
    // And the shard still accepts new connections.
    let mut late = connect(server.local_addr());
    assert_eq!(round_trip(&mut late, b"late").unwrap(), b"late");

    // The victim is counted closed when its shard finishes closing it,
    // which the client's EOF does not wait for.
    assert!(wait_until(|| {
        let total = server.total_stats();
        total.open_connections == 5 - 1 && total.closed_by(&DisconnectReason::Panic) == 1
    }));
    drop(healthy);
    drop(late);
    server.stop().unwrap();
    let reasons = lost_reasons(&rec.drain());
    assert_eq!(
        reasons.len(),
        5,
        "connection_lost exactly once per connection"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == DisconnectReason::Panic)
            .count(),
        1
    );
}

#[test]
fn eight_mib_to_a_slow_reader_arrives_intact() {
    let server = echo_server(Some(1));
    let payload = pattern(8, 8 * 1024 * 1024);
    let mut c = connect(server.local_addr());
    let mut writer = c.try_clone().unwrap();
    let to_send = payload.clone();
    let send = std::thread::spawn(move || {
        for chunk in to_send.chunks(256 * 1024) {
            writer.write_all(chunk).unwrap();
        }
    });
    let mut got = Vec::with_capacity(payload.len());
    let mut buf = vec![0u8; 16 * 1024];
    let mut reads = 0u64;
    while got.len() < payload.len() {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "early EOF after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
        reads += 1;
        if reads.is_multiple_of(16) {
            // Read slowly, so the server's queue must back up.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    send.join().unwrap();
    assert!(got == payload, "echoed bytes differ");
    let total = server.total_stats();
    assert_eq!(total.closed_by(&DisconnectReason::SlowConsumer), 0);
    assert_eq!(total.bytes_in, payload.len() as u64);
    server.stop().unwrap();
}

#[test]
fn a_client_that_never_reads_is_cut_at_the_hard_cap() {
    let rec = Recorder::default();
    let tx = rec.sender();
    let limits = FlowLimits::default().with_hard_cap(1024 * 1024);
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(1)
        .limits(limits)
        .serve(move |_| {
            let tx = tx.clone();
            FnFactory(move |_peer| {
                Some(Scripted {
                    events: Some(tx.clone()),
                    // A firehose that ignores pause_writing: 64 KiB per
                    // millisecond until the transport refuses.
                    on_made: Some(Box::new(|t: &Transport| {
                        let chunk = Bytes::from(vec![b'z'; 64 * 1024]);
                        let t2 = t.clone();
                        let lc = t
                            .clock()
                            .looping_call(Duration::from_millis(1), move || {
                                let _ = t2.write_bytes(chunk.clone());
                            })
                            .unwrap();
                        // Stop the loop once the connection is gone (this
                        // watcher itself runs until the test server stops).
                        let t3 = t.clone();
                        let _watcher = t
                            .clock()
                            .looping_call(Duration::from_millis(5), move || {
                                if t3.is_closed() {
                                    lc.stop();
                                }
                            })
                            .unwrap();
                    })),
                    ..Scripted::default()
                })
            })
        })
        .unwrap();
    let c = connect(server.local_addr());
    let mut seen = Vec::new();
    while !seen.iter().any(|e| matches!(e, Event::Lost(_))) {
        seen.push(rec.next().expect("the firehose connection must end"));
    }
    assert!(seen.contains(&Event::PauseWriting), "{seen:?}");
    assert_eq!(lost_reasons(&seen), vec![DisconnectReason::SlowConsumer]);
    assert!(wait_until(|| server
        .total_stats()
        .closed_by(&DisconnectReason::SlowConsumer)
        == 1));
    drop(c);
    server.stop().unwrap();
}

#[test]
fn close_flushes_everything_queued() {
    let rec = Recorder::default();
    let tx = rec.sender();
    let body = pattern(3, 3 * 1024 * 1024);
    let sent = Bytes::from(body.clone());
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(1)
        .serve(move |_| {
            let (tx, sent) = (tx.clone(), sent.clone());
            FnFactory(move |_peer| {
                let sent = sent.clone();
                Some(Scripted {
                    events: Some(tx.clone()),
                    on_made: Some(Box::new(move |t: &Transport| {
                        t.write_bytes(sent.clone()).unwrap();
                        t.write(b"THE END").unwrap();
                        t.close();
                        assert_eq!(t.write(b"too late"), Err(torsion::WriteError::Closed));
                    })),
                    ..Scripted::default()
                })
            })
        })
        .unwrap();
    let mut c = connect(server.local_addr());
    let (data, err) = read_to_end_or_error(&mut c);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(data.len(), body.len() + 7);
    assert!(data[..body.len()] == body[..] && &data[body.len()..] == b"THE END");
    drop(c);
    // 3 MiB written at once passes the high-water mark on the spot: the
    // pause and its resume come before the end, however fast the flush.
    let events = rec.take(4);
    assert!(matches!(
        events[..],
        [
            Event::Made(_),
            Event::PauseWriting,
            Event::ResumeWriting,
            Event::Lost(DisconnectReason::Closed)
        ]
    ));
    server.stop().unwrap();
}

#[test]
fn abort_discards_what_is_queued() {
    let rec = Recorder::default();
    let server = scripted_server(one_shard(), &rec, |_peer| Scripted {
        on_made: Some(Box::new(|t: &Transport| {
            t.write(&vec![b'q'; 1024 * 1024]).unwrap();
            t.abort();
            assert!(t.is_closing());
        })),
        ..Scripted::default()
    });
    let mut c = connect(server.local_addr());
    let (data, err) = read_to_end_or_error(&mut c);
    assert!(data.is_empty(), "aborted output must not be sent");
    assert_eq!(
        err.map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionReset),
        "an abort is a reset"
    );
    let events = rec.take(2);
    assert_eq!(lost_reasons(&events), vec![DisconnectReason::Aborted]);
    server.stop().unwrap();
}

#[test]
fn a_half_close_reaches_the_protocol_and_writes_still_arrive() {
    let rec = Recorder::default();
    let server = scripted_server(one_shard(), &rec, |_peer| Scripted {
        on_data: Some(Box::new(|t: &Transport, d: &mut BytesMut| {
            t.write_bytes(d.split().freeze()).unwrap();
        })),
        on_eof: Some(Box::new(|t: &Transport| {
            t.write(b"|goodbye after your EOF").unwrap();
            t.close();
        })),
        ..Scripted::default()
    });
    let mut c = connect(server.local_addr());
    let body = pattern(9, 200_000);
    c.write_all(&body).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let (data, err) = read_to_end_or_error(&mut c);
    assert!(err.is_none(), "{err:?}");
    let mut want = body.clone();
    want.extend_from_slice(b"|goodbye after your EOF");
    assert!(
        data == want,
        "got {} bytes, want {}",
        data.len(),
        want.len()
    );
    // The echo may pass the high-water mark (pause and resume notices in
    // between, as many as the kernel's pace decides): wait for the end.
    let events = rec.take_until(1, |e| matches!(e, Event::Lost(_)));
    let order: Vec<_> = events
        .iter()
        .filter(|e| !matches!(e, Event::PauseWriting | Event::ResumeWriting))
        .collect();
    assert!(
        matches!(
            order[..],
            [
                Event::Made(_),
                Event::Eof,
                Event::Lost(DisconnectReason::Closed)
            ]
        ),
        "{events:?}"
    );
    server.stop().unwrap();
}

/// Data and the peer's FIN arriving together (a short read, then end of
/// stream with no new readiness edge) must still reach the protocol as data,
/// then EOF: the read path may not wait for another readiness event after a
/// short read once the peer has shut its side (our glommio's multishot poll
/// reports that with `POLLRDHUP`). Many connections, so some land in the
/// same readiness event and some do not.
#[test]
fn a_small_write_followed_at_once_by_eof_is_read_then_ends() {
    let rec = Recorder::default();
    let server = scripted_server(one_shard(), &rec, |_peer| Scripted {
        on_data: Some(Box::new(|t: &Transport, d: &mut BytesMut| {
            t.write_bytes(d.split().freeze()).unwrap();
        })),
        on_eof: Some(Box::new(|t: &Transport| {
            t.write(b"|eof").unwrap();
            t.close();
        })),
        ..Scripted::default()
    });
    for i in 0..200u32 {
        let mut c = connect(server.local_addr());
        let body = format!("hello {i}");
        c.write_all(body.as_bytes()).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let (data, err) = read_to_end_or_error(&mut c);
        assert!(err.is_none(), "connection {i}: {err:?}");
        assert_eq!(data, format!("{body}|eof").into_bytes(), "connection {i}");
    }
    server.stop().unwrap();
}

#[test]
fn a_peer_reset_mid_write_ends_the_connection_once() {
    let rec = Recorder::default();
    let server = scripted_server(one_shard(), &rec, |_peer| Scripted {
        on_made: Some(Box::new(|t: &Transport| {
            // 3 MiB: more than loopback buffers take at once.
            t.write_bytes(Bytes::from(vec![7u8; 3 * 1024 * 1024]))
                .unwrap();
        })),
        ..Scripted::default()
    });
    for _ in 0..10 {
        let mut c = connect(server.local_addr());
        let mut first = [0u8; 1000];
        c.read_exact(&mut first).unwrap();
        // Reset: SO_LINGER 0, then close with unread data.
        let sock = socket2::SockRef::from(&c);
        sock.set_linger(Some(Duration::ZERO)).unwrap();
        drop(c);
    }
    // Each connection reports Made and Lost, and between them PauseWriting
    // and ResumeWriting as many times as the kernel's pace decides: wait
    // for the ten ends, whatever else came.
    let events = rec.take_until(10, |e| matches!(e, Event::Lost(_)));
    let reasons = lost_reasons(&events);
    assert_eq!(reasons.len(), 10, "{events:?}");
    assert!(
        reasons.iter().all(|r| *r == DisconnectReason::Reset),
        "{reasons:?}"
    );
    assert!(wait_until(|| server.total_stats().open_connections == 0));
    let total = server.total_stats();
    assert_eq!(total.closed_by(&DisconnectReason::Reset), 10);
    assert_eq!(total.panics, 0);
    let later = rec.drain();
    assert!(
        !later.iter().any(|e| matches!(e, Event::Lost(_))),
        "no second connection_lost: {later:?}"
    );
    server.stop().unwrap();
}

#[test]
fn shutdown_drains_then_aborts_stragglers_and_tells_every_protocol() {
    let rec = Recorder::default();
    let tx = rec.sender();
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .drain_timeout(Duration::from_millis(300))
        .serve(move |_| {
            let tx = tx.clone();
            FnFactory(move |peer: SocketAddr| {
                // Odd client ports say goodbye and close; even ones ignore
                // the shutdown and must be aborted at the deadline.
                let stubborn = peer.port().is_multiple_of(2);
                Some(Scripted {
                    events: Some(tx.clone()),
                    on_shutdown: Some(Box::new(move |t: &Transport| {
                        if !stubborn {
                            t.write(b"server stopping\n").unwrap();
                            t.close();
                        }
                    })),
                    ..Scripted::default()
                })
            })
        })
        .unwrap();
    let mut clients: Vec<_> = (0..20).map(|_| connect(server.local_addr())).collect();
    assert!(wait_until(|| server.total_stats().open_connections == 20));
    let addr = server.local_addr();
    let started = std::time::Instant::now();
    server.stop().unwrap();
    assert!(started.elapsed() < PATIENCE);
    let events = rec.drain();
    let reasons = lost_reasons(&events);
    assert_eq!(reasons.len(), 20, "every protocol saw connection_lost");
    assert!(
        reasons.iter().all(|r| *r == DisconnectReason::Shutdown),
        "{reasons:?}"
    );
    for c in &mut clients {
        let port = c.local_addr().unwrap().port();
        let (data, _) = read_to_end_or_error(c);
        if port % 2 == 1 {
            assert_eq!(data, b"server stopping\n");
        }
    }
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no listener after shutdown"
    );
}

#[test]
fn timers_run_on_the_connections_shard_and_can_be_cancelled() {
    let rec = Recorder::default();
    let tx = rec.sender();
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .serve(move |_| {
            let tx = tx.clone();
            FnFactory(move |_peer| {
                let tx = tx.clone();
                Some(Scripted {
                    on_made: Some(Box::new(move |t: &Transport| {
                        let clock = t.clock();
                        let cancelled = clock.call_later(Duration::from_millis(1), || {
                            panic!("a cancelled call must not run")
                        });
                        cancelled.cancel();
                        let (t2, tx2) = (t.clone(), tx.clone());
                        clock.call_later(Duration::from_millis(20), move || {
                            let here = torsion::ShardInfo::current().unwrap().id;
                            let _ = tx2.send((here, t2.shard_id()));
                            t2.write(b"timer fired").unwrap();
                            t2.close();
                        });
                    })),
                    ..Scripted::default()
                })
            })
        })
        .unwrap();
    for _ in 0..6 {
        let mut c = connect(server.local_addr());
        let (data, _) = read_to_end_or_error(&mut c);
        assert_eq!(data, b"timer fired");
        let (ran_on, owner) = rec.next().unwrap();
        assert_eq!(ran_on, owner);
    }
    assert_eq!(server.total_stats().panics, 0);
    server.stop().unwrap();
}

#[test]
fn spawned_tasks_write_through_the_transport() {
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(1)
        .serve(|_| {
            FnFactory(|_peer| {
                Some(Scripted {
                    on_data: Some(Box::new(|t: &Transport, d: &mut BytesMut| {
                        // Deferred work: reply from an async task, later.
                        let (t, msg) = (t.clone(), d.split().freeze());
                        torsion::spawn_local(async move {
                            t.clock().sleep(Duration::from_millis(5)).await;
                            let _ = t.write(b"deferred:");
                            let _ = t.write_bytes(msg);
                        })
                        .detach();
                    })),
                    ..Scripted::default()
                })
            })
        })
        .unwrap();
    let mut c = connect(server.local_addr());
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 13];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"deferred:ping");
    server.stop().unwrap();
}

/// The server's end of every accepted connection is close-on-exec from the
/// accept itself (accept4 / io_uring accept with SOCK_CLOEXEC), so a child
/// process cannot inherit it. Found among this process's descriptors by
/// its addresses.
#[test]
fn accepted_sockets_are_close_on_exec() {
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(2)
        .serve(|_| EchoFactory)
        .unwrap();
    let mut clients: Vec<std::net::TcpStream> =
        (0..20).map(|_| connect(server.local_addr())).collect();
    for c in &mut clients {
        assert_eq!(round_trip(c, b"hi").unwrap(), b"hi");
    }
    let peers: Vec<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    let mut found = 0;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(fd) = entry.unwrap().file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // SAFETY: the descriptor is only borrowed for the two getters, and
        // getsockname/getpeername on a non-socket just fail.
        let sock = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&sock);
        let (Ok(local), Ok(peer)) = (sock.local_addr(), sock.peer_addr()) else {
            continue;
        };
        if local.as_socket() == Some(server.local_addr())
            && peer.as_socket().is_some_and(|p| peers.contains(&p))
        {
            // SAFETY: F_GETFD reads the descriptor's flags.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            assert_ne!(
                flags & libc::FD_CLOEXEC,
                0,
                "fd {fd} is inherited by children"
            );
            found += 1;
        }
    }
    assert_eq!(found, clients.len(), "every accepted socket was checked");
    server.stop().unwrap();
}
