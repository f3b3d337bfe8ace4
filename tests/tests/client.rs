//! TCP clients on real sockets: connect_tcp with the Protocol trait, errors,
//! and a reconnecting client against a server that goes away and comes back.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use torsion::client::{connect_tcp, Backoff, ReconnectingClient};
use torsion::{DisconnectReason, Protocol, Transport};
use torsion_tests::*;

/// Says hello, collects the echo, closes after 5 bytes.
struct Hello(Rc<RefCell<Vec<u8>>>, Rc<RefCell<Option<DisconnectReason>>>);

impl Protocol for Hello {
    fn connection_made(&mut self, t: &Transport) {
        t.write(b"hello").unwrap();
    }
    fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
        self.0.borrow_mut().extend_from_slice(&data.split());
        if self.0.borrow().len() >= 5 {
            t.close();
        }
    }
    fn connection_lost(&mut self, reason: &DisconnectReason) {
        *self.1.borrow_mut() = Some(reason.clone());
    }
}

fn any_core() -> Vec<usize> {
    vec![torsion::cores::allowed_cores().unwrap()[0]]
}

#[test]
fn connect_tcp_runs_a_protocol_and_reports_refusals() {
    let server = one_shard_echo(LOOPBACK);
    let addr = server.local_addr();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let results = torsion::run_on_cores(&any_core(), move |_| async move {
        let got = Rc::new(RefCell::new(Vec::new()));
        let lost = Rc::new(RefCell::new(None));
        let t = connect_tcp(
            addr,
            Duration::from_secs(5),
            Hello(got.clone(), lost.clone()),
        )
        .await
        .unwrap();
        assert_eq!(t.peer_addr(), addr);
        let deadline = Instant::now() + PATIENCE;
        while lost.borrow().is_none() && Instant::now() < deadline {
            torsion::Clock::real().sleep(Duration::from_millis(5)).await;
        }
        // The same, from a client endpoint string (Twisted's clientFromString).
        let endpoint =
            torsion::ClientEndpoint::parse(&format!("tcp:127.0.0.1:{}:timeout=5", closed.port()))
                .unwrap();
        let refused = torsion::client::connect_endpoint(&endpoint, torsion_protocols::Echo)
            .await
            .unwrap_err()
            .kind();
        let got = got.borrow().clone();
        let lost = lost.borrow().clone();
        (got, lost, refused)
    })
    .unwrap();
    let (got, lost, refused) = results.into_iter().next().unwrap();
    assert_eq!(got, b"hello");
    assert_eq!(lost, Some(DisconnectReason::Closed));
    assert_eq!(refused, std::io::ErrorKind::ConnectionRefused);
    server.stop().unwrap();
}

#[test]
fn a_reconnecting_client_comes_back_when_the_server_does() {
    let first = one_shard_echo(LOOPBACK);
    let addr = first.local_addr();
    let (to_main, from_pool) = mpsc::channel::<&'static str>();
    let pool = std::thread::spawn(move || {
        torsion::run_on_cores(&any_core(), move |_| {
            let to_main = to_main.clone();
            async move {
                let mut backoff =
                    Backoff::new(Duration::from_millis(20), Duration::from_millis(200));
                backoff.jitter = 0.0;
                let client =
                    ReconnectingClient::start(addr, Duration::from_secs(2), backoff, || {
                        torsion_protocols::Echo
                    });
                let clock = torsion::Clock::real();
                let deadline = Instant::now() + PATIENCE;
                while client.connections() < 1 && Instant::now() < deadline {
                    clock.sleep(Duration::from_millis(5)).await;
                }
                to_main.send("connected").unwrap();
                // The server goes away: the client notices and keeps trying.
                while (client.is_connected() || client.attempts() < 3) && Instant::now() < deadline
                {
                    clock.sleep(Duration::from_millis(5)).await;
                }
                // Attempts are counted when they start: the one under way
                // now may be the one that reaches the returned server.
                let attempts_while_away = client.attempts();
                to_main.send("retrying").unwrap();
                while client.connections() < 2 && Instant::now() < deadline {
                    clock.sleep(Duration::from_millis(5)).await;
                }
                let reconnected = client.connections() >= 2 && client.is_connected();
                client.stop_trying();
                let attempts = client.attempts();
                clock.sleep(Duration::from_millis(300)).await;
                (
                    reconnected,
                    attempts_while_away,
                    attempts,
                    client.attempts(),
                )
            }
        })
    });
    assert_eq!(from_pool.recv_timeout(PATIENCE), Ok("connected"));
    first.stop().unwrap();
    assert_eq!(from_pool.recv_timeout(PATIENCE), Ok("retrying"));
    let second = one_shard_echo(&format!("tcp:{}:interface=127.0.0.1", addr.port()));
    let results = pool.join().unwrap().unwrap();
    let (reconnected, attempts_while_away, attempts, attempts_later) = results[0];
    assert!(reconnected, "connected again to the returned server");
    // One attempt made the first connection; at least two more were begun
    // while the server was away and the client was not connected.
    assert!(
        attempts_while_away >= 3,
        "retried while the server was away: {attempts_while_away} attempts"
    );
    assert!(attempts >= attempts_while_away);
    assert_eq!(attempts, attempts_later, "no attempts after stop_trying");
    second.stop().unwrap();
}

/// Connects to `endpoint` on a pinned executor of its own, sends `hello`,
/// and returns what came back (or the connect error's text).
fn hello_over(endpoint: &str) -> Result<Vec<u8>, String> {
    let endpoint = torsion::ClientEndpoint::parse(endpoint).map_err(|e| e.to_string())?;
    torsion::block_on(async move {
        let mut conn = torsion::client::connect(&endpoint)
            .await
            .map_err(|e| e.to_string())?;
        conn.write(b"hello").await.map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        while got.len() < 5 {
            match conn.read().await {
                Some(bytes) => got.extend_from_slice(&bytes),
                None => break,
            }
        }
        Ok(got)
    })
    .map_err(|e| e.to_string())?
}

#[test]
fn client_endpoints_take_host_names_and_tls() {
    // A name: localhost, resolved off the shard (from /etc/hosts).
    let plain = one_shard_echo(LOOPBACK);
    let port = plain.local_addr().port();
    assert_eq!(
        hello_over(&format!("tcp:localhost:{port}:timeout=10")).unwrap(),
        b"hello"
    );
    assert_eq!(
        hello_over(&format!("tcp:host=localhost:port={port}")).unwrap(),
        b"hello"
    );
    plain.stop().unwrap();

    // tls: the certificate checked against the name, the CA given.
    let certs = Certs::new("client-endpoint");
    let server = one_shard_echo(&certs.endpoint(&certs.key));
    let port = server.local_addr().port();
    let ca = certs.cert.display().to_string();
    assert_eq!(
        hello_over(&format!("tls:localhost:{port}:caCerts={ca}:timeout=10")).unwrap(),
        b"hello"
    );
    // Another CA: refused, saying why.
    let other = Certs::new("client-endpoint-other");
    let err = hello_over(&format!(
        "tls:localhost:{port}:caCerts={}:timeout=10",
        other.cert.display()
    ))
    .unwrap_err();
    // (Both throwaway certificates have rcgen's subject: the issuer is found
    // by name and its signature does not verify.)
    assert!(
        err.contains("the server's certificate was refused")
            && (err.contains("not signed") || err.contains("signature does not verify")),
        "{err}"
    );
    // The wrong name: refused, saying why.
    let err = hello_over(&format!(
        "tls:localhost:{port}:caCerts={ca}:serverName=other.example:timeout=10"
    ))
    .unwrap_err();
    assert!(err.contains("not valid for the name"), "{err}");
    // The platform's roots do not hold a throwaway certificate.
    let err = hello_over(&format!("tls:localhost:{port}:timeout=10")).unwrap_err();
    assert!(
        err.contains("not signed by a certificate you trust"),
        "{err}"
    );
    server.stop().unwrap();
}
