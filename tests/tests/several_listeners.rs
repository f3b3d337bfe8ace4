//! One server, several listeners (`also_listen`): each bound on every
//! shard, one factory per shard serving each listener its own protocol
//! (`build_protocol_on`), TLS on one and plain TCP on another, and
//! endpoints that cannot be served refused at start.

use std::io::Read;
use std::net::SocketAddr;

use bytes::BytesMut;
use torsion::{Factory, Protocol, Server, ServerError, Transport};
use torsion_tests::*;

/// Echoes on listener 0; on any other, says which listener it is and
/// which shard, then closes.
struct PerListener;

struct Greeter(usize);

impl Protocol for Greeter {
    fn connection_made(&mut self, transport: &Transport) {
        let _ = transport
            .write(format!("listener {} on shard {}\n", self.0, transport.shard_id()).as_bytes());
        transport.close();
    }
}

enum Either {
    Echo(torsion_protocols::Echo),
    Greeter(Greeter),
}

impl Protocol for Either {
    fn connection_made(&mut self, t: &Transport) {
        match self {
            Either::Echo(p) => p.connection_made(t),
            Either::Greeter(p) => p.connection_made(t),
        }
    }
    fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
        match self {
            Either::Echo(p) => p.data_received(t, data),
            Either::Greeter(p) => p.data_received(t, data),
        }
    }
}

impl Factory for PerListener {
    type Protocol = Either;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Either> {
        unreachable!("a server with several listeners asks build_protocol_on")
    }

    fn build_protocol_on(&mut self, listener: usize, _peer: SocketAddr) -> Option<Either> {
        Some(match listener {
            0 => Either::Echo(torsion_protocols::Echo),
            n => Either::Greeter(Greeter(n)),
        })
    }
}

#[test]
fn each_listener_gets_its_own_protocol_from_the_same_factory() {
    let c = Certs::new("several");
    let server = Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .also_listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .also_listen_on(&c.endpoint(&c.key))
        .unwrap()
        .shards(2)
        .serve(|_| PerListener)
        .unwrap();
    let addrs = server.local_addrs().to_vec();
    assert_eq!(addrs.len(), 3);
    assert_eq!(server.local_addr(), addrs[0]);
    assert!(addrs[0].port() != addrs[1].port() && addrs[1].port() != addrs[2].port());

    let mut echo = connect(addrs[0]);
    assert_eq!(round_trip(&mut echo, b"ping\n").unwrap(), b"ping\n");
    // Plain TCP on the second listener, from both shards in time.
    let mut shards_seen = std::collections::BTreeSet::new();
    let seen_both = wait_until(|| {
        let mut s = connect(addrs[1]);
        let (got, _) = read_to_end_or_error(&mut s);
        let text = String::from_utf8(got).unwrap();
        assert!(text.starts_with("listener 1 on shard "), "{text}");
        shards_seen.insert(text.trim_end().rsplit(' ').next().unwrap().to_owned());
        shards_seen.len() == 2
    });
    assert!(
        seen_both,
        "both shards accept on the second listener: {shards_seen:?}"
    );
    // TLS on the third.
    let config = torsion::tls::client_config(Some(&c.cert), false).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, connect(addrs[2]));
    let mut text = String::new();
    let _ = tls.read_to_string(&mut text);
    assert!(text.starts_with("listener 2 on shard "), "{text}");
    drop(echo);
    server.stop().unwrap();
}

#[test]
fn endpoints_that_cannot_be_served_are_refused_at_start() {
    // A udp: listener beside a tcp: one.
    let err = Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .also_listen_on("udp:0:interface=127.0.0.1")
        .unwrap()
        .serve(|_| torsion_protocols::EchoFactory)
        .unwrap_err();
    assert!(matches!(err, ServerError::WrongEndpoint { .. }), "{err}");
    // A port in use on the second listener names that endpoint.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .also_listen_on(&format!("tcp:{port}:interface=127.0.0.1"))
        .unwrap()
        .serve(|_| torsion_protocols::EchoFactory)
        .unwrap_err();
    assert!(
        matches!(&err, ServerError::Bind { endpoint, .. } if endpoint.contains(&port.to_string())),
        "{err}"
    );
}
