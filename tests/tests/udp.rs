//! UDP datagram protocols on real sockets: echo through every shard, size
//! limits, ICMP errors, panics contained.

use std::net::{SocketAddr, UdpSocket};
use torsion::{DatagramError, DatagramProtocol, DatagramTransport, Server, ServerHandle};
use torsion_protocols::DatagramEcho;
use torsion_tests::*;

fn udp_server<P: DatagramProtocol>(make: fn() -> P) -> ServerHandle {
    Server::builder()
        .listen_on("udp:0:interface=127.0.0.1")
        .unwrap()
        .serve_datagram(move |_| make())
        .unwrap()
}

fn client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

fn ask(s: &UdpSocket, to: SocketAddr, msg: &[u8]) -> Vec<u8> {
    s.send_to(msg, to).unwrap();
    let mut buf = vec![0u8; 70_000];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(from, to);
    buf.truncate(n);
    buf
}

#[test]
fn datagrams_echo_through_every_shard_at_every_size() {
    let server = udp_server(|| DatagramEcho);
    let addr = server.local_addr();
    let mut clients = 0;
    while server.stats().iter().any(|s| s.bytes_in == 0) {
        assert!(
            clients < 500,
            "some shard never got a datagram: {:?}",
            server.stats()
        );
        let c = client();
        for size in [0usize, 1, 1400, 9000] {
            let msg = pattern(size as u64 + clients, size);
            assert_eq!(ask(&c, addr, &msg), msg);
        }
        clients += 1;
    }
    // The largest UDP payload arrives whole: never truncated.
    let c = client();
    let big = pattern(7, torsion::MAX_DATAGRAM_V4);
    assert_eq!(ask(&c, addr, &big), big);
    server.stop().unwrap();
}

/// Replies with what happened to its own attempts: `big` tries an
/// oversized datagram; `probe:PORT` sends to a closed port and reports the
/// ICMP error that comes back; `panic` panics.
#[derive(Default)]
struct Prober {
    last_sender: Option<SocketAddr>,
}

impl DatagramProtocol for Prober {
    fn datagram_received(&mut self, t: &DatagramTransport, data: &[u8], from: SocketAddr) {
        self.last_sender = Some(from);
        let text = std::str::from_utf8(data).unwrap_or("");
        if text == "big" {
            let reply = match t.write_to(&vec![0u8; 70_000], from) {
                Err(DatagramError::TooLarge { len, max }) => format!("too large: {len} > {max}"),
                other => format!("unexpected: {other:?}"),
            };
            t.write_to(reply.as_bytes(), from).unwrap();
        } else if let Some(port) = text.strip_prefix("probe:") {
            let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            t.write_to(b"anyone?", to).unwrap();
        } else if text == "panic" {
            panic!("deliberate panic in datagram_received");
        } else {
            t.write_to(data, from).unwrap();
        }
    }

    fn error_received(&mut self, t: &DatagramTransport, error: &std::io::Error) {
        if let Some(to) = self.last_sender {
            let _ = t.write_to(format!("error: {:?}", error.kind()).as_bytes(), to);
        }
    }
}

#[test]
fn oversized_writes_icmp_errors_and_panics_are_handled() {
    let server = Server::builder()
        .listen_on("udp:0:interface=127.0.0.1")
        .unwrap()
        .shards(1)
        .serve_datagram(|_| Prober::default())
        .unwrap();
    let addr = server.local_addr();
    let c = client();
    assert_eq!(ask(&c, addr, b"big"), b"too large: 70000 > 65507");

    let closed_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reply = ask(&c, addr, format!("probe:{closed_port}").as_bytes());
    assert_eq!(
        reply, b"error: ConnectionRefused",
        "Twisted's connectionRefused"
    );

    c.send_to(b"panic", addr).unwrap();
    assert!(wait_until(|| server.total_stats().panics == 1));
    assert_eq!(ask(&c, addr, b"still here"), b"still here");
    server.stop().unwrap();
}

#[test]
fn stream_and_datagram_endpoints_are_not_mixed_up() {
    let err = Server::builder()
        .listen_on("udp:0:interface=127.0.0.1")
        .unwrap()
        .serve(|_| torsion::FnFactory(|_| Some(torsion_protocols::Echo)))
        .unwrap_err();
    assert!(err.to_string().contains("datagram protocol"), "{err}");
    let err = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .serve_datagram(|_| DatagramEcho)
        .unwrap_err();
    assert!(err.to_string().contains("udp: endpoint"), "{err}");
}

/// A second UDP server on a port one already uses is refused: SO_REUSEPORT
/// must not let it take a share of the datagrams.
#[test]
fn a_second_server_on_a_used_udp_port_is_refused() {
    let first = udp_server(|| DatagramEcho);
    let endpoint = format!("udp:{}:interface=127.0.0.1", first.local_addr().port());
    for shards in [1, 2] {
        let err = Server::builder()
            .listen_on(&endpoint)
            .unwrap()
            .shards(shards)
            .serve_datagram(|_| DatagramEcho)
            .unwrap_err();
        match &err {
            torsion::ServerError::Bind { source, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse, "{err}")
            }
            other => panic!("{other}"),
        }
    }
    let c = client();
    for i in 0..20u8 {
        assert_eq!(ask(&c, first.local_addr(), &[i]), [i]);
    }
    first.stop().unwrap();
}
