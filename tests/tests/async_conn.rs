//! Async connections on real sockets: a connection's logic as a loop over
//! its frames (`serve_fn`), clients that `connect` and await, back-pressure
//! without callbacks, panics contained, and a drain that lets work in
//! flight finish.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use bytes::Bytes;
use torsion::client::connect_addr;
use torsion::{DisconnectReason, FnFactory, Protocol, Server, Transport};
use torsion_protocols::codec::LineCodec;
use torsion_tests::*;

fn line_client(
    addr: std::net::SocketAddr,
) -> (std::net::TcpStream, BufReader<std::net::TcpStream>) {
    let c = connect(addr);
    let r = BufReader::new(c.try_clone().unwrap());
    (c, r)
}

fn read_line(r: &mut BufReader<std::net::TcpStream>) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l
}

#[test]
fn a_line_service_written_as_a_loop_answers_in_order_on_every_shard() {
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .serve_fn(|conn| async move {
            let mut lines = conn.framed(LineCodec::lf_or_crlf());
            while let Some(line) = lines.next().await {
                let Ok(line) = line else { break };
                let reply = format!("{} bytes", line.len());
                if lines.send(reply.as_bytes()).await.is_err() {
                    break;
                }
            }
        })
        .unwrap();
    let (mut c, mut r) = line_client(server.local_addr());
    // Pipelined, split anywhere, \n and \r\n mixed.
    c.write_all(b"a\nbb\r\nc").unwrap();
    c.write_all(b"cc\n").unwrap();
    assert_eq!(read_line(&mut r), "1 bytes\r\n");
    assert_eq!(read_line(&mut r), "2 bytes\r\n");
    assert_eq!(read_line(&mut r), "3 bytes\r\n");
    // EOF ends the loop; the connection closes after flushing.
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "");
    drop(c);
    assert!(wait_until(|| server.total_stats().open_connections == 0));
    let total = server.total_stats();
    assert_eq!(total.closed_by(&DisconnectReason::Closed), 1, "{total:?}");
    server.stop().unwrap();
}

#[test]
fn a_client_connects_asks_and_awaits_the_answer() {
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(1)
        .serve_fn(|mut conn| async move {
            while let Some(bytes) = conn.read().await {
                if conn.write_bytes(bytes).await.is_err() {
                    break;
                }
            }
        })
        .unwrap();
    let addr = server.local_addr();
    let answer = torsion::block_on(async move {
        let conn = connect_addr(addr, Duration::from_secs(5)).await.unwrap();
        let mut lines = conn.framed(LineCodec::new());
        lines.send(b"ping").await.unwrap();
        let first = lines.next().await.unwrap().unwrap();
        lines.send(b"pong").await.unwrap();
        let second = lines.next().await.unwrap().unwrap();
        (first, second)
    })
    .unwrap();
    assert_eq!(answer, (Bytes::from("ping"), Bytes::from("pong")));
    server.stop().unwrap();
}

#[test]
fn a_refused_connection_is_an_error_not_a_panic() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = torsion::block_on(async move {
        connect_addr(closed, Duration::from_secs(5))
            .await
            .unwrap_err()
    })
    .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn a_write_waits_while_the_peer_is_behind_and_nothing_is_lost() {
    // 8 MiB in 64 KiB pieces to a client that reads slowly: the server's
    // queue stays bounded (the write waits at the high-water mark instead of
    // queueing everything, which the 4 MiB hard cap would cut).
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(1)
        .serve_fn(|conn| async move {
            let piece = Bytes::from(vec![7u8; 64 * 1024]);
            for _ in 0..128 {
                assert!(conn.transport().buffered_len() <= 64 * 1024 + piece.len());
                if conn.write_bytes(piece.clone()).await.is_err() {
                    return;
                }
            }
        })
        .unwrap();
    let mut c = connect(server.local_addr());
    let mut total = 0;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == 7));
        total += n;
        if total % (1024 * 1024) < n {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(total, 8 * 1024 * 1024);
    assert!(wait_until(|| server.total_stats().open_connections == 0));
    let t = server.total_stats();
    assert_eq!(t.closed_by(&DisconnectReason::SlowConsumer), 0);
    assert_eq!(t.panics, 0);
    server.stop().unwrap();
}

#[test]
fn a_panicking_future_ends_only_its_connection() {
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(1)
        .serve_fn(|conn| async move {
            let mut lines = conn.framed(LineCodec::lf_or_crlf());
            while let Some(Ok(line)) = lines.next().await {
                if &line[..] == b"panic" {
                    panic!("deliberate panic in a connection's future");
                }
                let _ = lines.send(&line).await;
            }
        })
        .unwrap();
    let (mut healthy, mut healthy_r) = line_client(server.local_addr());
    let (mut victim, mut victim_r) = line_client(server.local_addr());
    healthy.write_all(b"one\n").unwrap();
    assert_eq!(read_line(&mut healthy_r), "one\r\n");
    victim.write_all(b"panic\n").unwrap();
    let mut rest = String::new();
    let _ = victim_r.read_to_string(&mut rest);
    assert_eq!(rest, "");
    assert!(wait_until(|| {
        let t = server.total_stats();
        t.panics == 1 && t.closed_by(&DisconnectReason::Panic) == 1
    }));
    healthy.write_all(b"two\n").unwrap();
    assert_eq!(read_line(&mut healthy_r), "two\r\n");
    drop(victim);
    server.stop().unwrap();
}

#[test]
fn code_after_the_loop_runs_when_the_peer_resets() {
    let rec: Recorder<&'static str> = Recorder::default();
    let tx = rec.sender();
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(1)
        .serve_fn(move |mut conn| {
            let tx = tx.clone();
            async move {
                let _ = conn.write(b"hi").await;
                while conn.read().await.is_some() {}
                // Runs even though the connection is gone: e.g. a release.
                let _ = tx.send("after the loop");
                // Waiting still works after the end.
                conn.clock().sleep(Duration::from_millis(1)).await;
                let _ = tx.send("after a sleep");
            }
        })
        .unwrap();
    let mut c = connect(server.local_addr());
    // Once the server has the connection (its greeting came), reset it.
    let mut hi = [0u8; 2];
    c.read_exact(&mut hi).unwrap();
    socket2::SockRef::from(&c)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c);
    assert_eq!(rec.next(), Some("after the loop"));
    assert_eq!(rec.next(), Some("after a sleep"));
    server.stop().unwrap();
}

/// A callback protocol with a slow handler: the answer comes 300 ms after
/// the request, from a timer, with the work marked in flight.
struct SlowCallback;
impl Protocol for SlowCallback {
    fn data_received(&mut self, t: &Transport, data: &mut bytes::BytesMut) {
        data.clear();
        let busy = t.in_flight();
        let t2 = t.clone();
        t.clock().call_later(Duration::from_millis(300), move || {
            let _ = t2.write(b"slow answer\r\n");
            drop(busy);
        });
    }
}

fn stop_while_a_request_is_served(server: torsion::ServerHandle) {
    let (mut c, mut r) = line_client(server.local_addr());
    c.write_all(b"question\n").unwrap();
    // The request is being served (the handler has it) when the stop comes.
    assert!(wait_until(|| server.total_stats().bytes_in >= 9));
    let stopping = std::thread::spawn(move || server.stop());
    assert_eq!(read_line(&mut r), "slow answer\r\n");
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "then a clean close");
    stopping.join().unwrap().unwrap();
}

#[test]
fn a_drain_lets_a_slow_callback_handler_answer() {
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .drain_timeout(Duration::from_secs(20))
        .serve(|_| FnFactory(|_peer| Some(SlowCallback)))
        .unwrap();
    stop_while_a_request_is_served(server);
}

#[test]
fn a_drain_lets_a_slow_async_handler_answer() {
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .drain_timeout(Duration::from_secs(20))
        .serve_fn(|conn| async move {
            let mut lines = conn.framed(LineCodec::lf_or_crlf());
            while let Some(Ok(_question)) = lines.next().await {
                lines
                    .connection()
                    .clock()
                    .sleep(Duration::from_millis(300))
                    .await;
                let _ = lines.send(b"slow answer").await;
            }
        })
        .unwrap();
    stop_while_a_request_is_served(server);
}

#[test]
fn a_client_runs_its_logic_on_the_connection_task_over_tls() {
    let certs = Certs::new("async-client");
    let server = Server::builder()
        .listen_on(&certs.endpoint(&certs.key))
        .unwrap()
        .shards(1)
        .serve_fn(|mut conn| async move {
            while let Some(bytes) = conn.read().await {
                if conn.write_bytes(bytes).await.is_err() {
                    break;
                }
            }
        })
        .unwrap();
    let addr = server.local_addr();
    let ca = certs.cert.clone();
    let echoed = torsion::block_on(async move {
        let config = torsion::tls::client_config(Some(&ca), false).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let connector = torsion::client::Connector::new(addr)
            .timeout(Duration::from_secs(10))
            .tls(config, name);
        let task = connector
            .run(|conn| async move {
                let mut lines = conn.framed(LineCodec::new());
                let mut got = Vec::new();
                for i in 0..100u32 {
                    lines.send(format!("line {i}").as_bytes()).await.unwrap();
                    got.push(lines.next().await.unwrap().unwrap());
                }
                got
            })
            .await
            .unwrap();
        task.await
    })
    .unwrap()
    .expect("the connection's future finished");
    assert_eq!(echoed.len(), 100);
    assert_eq!(echoed[99], Bytes::from("line 99"));
    server.stop().unwrap();
}

#[test]
fn a_tls_client_that_does_not_trust_the_server_says_why() {
    let certs = Certs::new("async-distrust");
    let server = Server::builder()
        .listen_on(&certs.endpoint(&certs.key))
        .unwrap()
        .shards(1)
        .serve_fn(|_conn| async {})
        .unwrap();
    let addr = server.local_addr();
    let err = torsion::block_on(async move {
        // Trusts nothing: the platform has no roots here, and no CA given.
        let config = torsion::tls::client_config(None, false).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        torsion::client::Connector::new(addr)
            .tls(config, name)
            .connect()
            .await
            .unwrap_err()
    })
    .unwrap();
    let text = err.to_string();
    assert!(text.starts_with("TLS handshake failed: "), "{text}");
    assert!(
        text.contains("issuer") || text.contains("certificate"),
        "{text}"
    );
    server.stop().unwrap();
}

#[test]
fn a_client_reading_a_fast_server_gets_every_byte_and_its_input_stays_bounded() {
    // The server writes far more than the read buffer limit as fast as
    // loopback goes; the client reads with `read_with`, taking a little at a
    // time. Reading must pause while the client's task has input to take,
    // not buffer until the limit closes the connection (ReadBufferFull).
    const TOTAL: usize = 16 << 20;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let writer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let data = pattern(11, TOTAL);
        s.write_all(&data).unwrap();
    });
    let (got, most_buffered) = torsion::block_on(async move {
        let mut conn = connect_addr(addr, PATIENCE).await.unwrap();
        let (mut got, mut most) = (Vec::with_capacity(TOTAL), 0);
        loop {
            most = most.max(conn.buffered_input());
            let piece = conn
                .read_with(|buf, _| {
                    let n = buf.len().min(4096);
                    Ok::<_, ()>((n > 0).then(|| buf.split_to(n).freeze()))
                })
                .await;
            match piece {
                Some(Ok(piece)) => got.extend_from_slice(&piece),
                _ => break,
            }
        }
        assert_ne!(conn.lost_reason(), Some(DisconnectReason::ReadBufferFull));
        (got, most)
    })
    .unwrap();
    writer.join().unwrap();
    assert_eq!(got.len(), TOTAL);
    assert!(got == pattern(11, TOTAL), "bytes changed on the way");
    assert!(most_buffered <= 1 << 20, "{most_buffered} bytes buffered");
}

#[test]
fn a_peer_that_answers_and_closes_is_seen_to_close_every_time() {
    // Thousands of short connections: the peer answers and closes at once;
    // the client reads the answer, then must see the end of input (a lost
    // wake-up would leave it waiting for ever: the timeout here says so).
    const CONNECTIONS: usize = 3_000;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(CONNECTIONS) {
            let Ok(mut s) = stream else { continue };
            let mut request = [0u8; 64];
            let _ = s.read(&mut request);
            let _ = s.write_all(b"answer");
        }
    });
    let stuck = torsion::block_on(async move {
        let clock = torsion::Clock::real();
        let mut stuck = Vec::new();
        for i in 0..CONNECTIONS {
            let mut conn = connect_addr(addr, PATIENCE).await.unwrap();
            conn.write(b"request").await.unwrap();
            let read_all = async {
                let mut got = Vec::new();
                while let Some(piece) = conn.read().await {
                    got.extend_from_slice(&piece);
                }
                got
            };
            let timed = futures_lite::future::or(async { Some(read_all.await) }, async {
                clock.sleep(PATIENCE).await;
                None
            });
            match timed.await {
                Some(got) => assert_eq!(got, b"answer", "connection {i}"),
                None => stuck.push(i),
            }
            if stuck.len() > 2 {
                break;
            }
        }
        stuck
    })
    .unwrap();
    assert!(
        stuck.is_empty(),
        "connections that never saw the end: {stuck:?}"
    );
}
