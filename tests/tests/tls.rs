//! TLS on real sockets: any protocol over rustls unchanged, certificates
//! made at run time (rcgen), bad files and mismatched keys refused at
//! start-up, failed and stalled handshakes counted and closed, and a client
//! no one here wrote (Python's `ssl` module).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use torsion::{Server, ServerError, ServerHandle};
use torsion_protocols::EchoFactory;
use torsion_tests::*;

/// A TLS echo server with the default handshake timeout (10 s: a debug
/// build's handshake on a busy machine is never cut short).
fn tls_echo(c: &Certs) -> ServerHandle {
    tls_echo_with_handshake_timeout(c, torsion::tls::DEFAULT_HANDSHAKE_TIMEOUT)
}

fn tls_echo_with_handshake_timeout(c: &Certs, timeout: Duration) -> ServerHandle {
    Server::builder()
        .listen_on(&c.endpoint(&c.key))
        .unwrap()
        .tls_handshake_timeout(timeout)
        .serve(|_| EchoFactory)
        .unwrap()
}

fn client(
    c: &Certs,
    server: &ServerHandle,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let config = torsion::tls::client_config(Some(&c.cert), false).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    rustls::StreamOwned::new(conn, connect(server.local_addr()))
}

#[test]
fn echo_runs_over_tls_unchanged() {
    let c = Certs::new("echo");
    let server = tls_echo(&c);
    for i in 0..10u64 {
        let mut s = client(&c, &server);
        for size in [1usize, 1000, 100_000] {
            let msg = pattern(i * 7 + size as u64, size);
            s.write_all(&msg).unwrap();
            let mut back = vec![0u8; size];
            s.read_exact(&mut back).unwrap();
            assert!(back == msg, "echo over TLS, {size} bytes");
        }
        s.conn.send_close_notify();
        let _ = s.flush();
    }
    assert!(wait_until(|| server.total_stats().open_connections == 0));
    let total = server.total_stats();
    assert_eq!(total.tls_failures, 0);
    assert!(total.served() >= 10);
    server.stop().unwrap();
}

#[test]
fn bad_certificate_files_are_start_up_errors() {
    let c = Certs::new("bad");
    let missing = c.dir.join("missing.pem");
    let err = Server::builder()
        .listen_on(&format!(
            "tls:0:interface=127.0.0.1:certKey={}:privateKey={}",
            missing.display(),
            c.key.display()
        ))
        .unwrap()
        .serve(|_| EchoFactory)
        .unwrap_err();
    assert!(matches!(err, ServerError::Tls(_)), "{err}");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let err = Server::builder()
        .listen_on(&c.endpoint(&c.other_key))
        .unwrap()
        .serve(|_| EchoFactory)
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid certificate/key pair"),
        "{err}"
    );

    std::fs::write(c.dir.join("empty.pem"), "not a pem file\n").unwrap();
    let err = Server::builder()
        .listen_on(&format!(
            "tls:0:interface=127.0.0.1:certKey={}:privateKey={}",
            c.dir.join("empty.pem").display(),
            c.key.display()
        ))
        .unwrap()
        .serve(|_| EchoFactory)
        .unwrap_err();
    assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
}

#[test]
fn failed_and_stalled_handshakes_are_counted_and_closed() {
    let c = Certs::new("fail");
    // Short, so the stalled handshake is cut soon (the test waits for it
    // to be), yet long enough for a debug build's handshake on a busy
    // machine (the last client's).
    let server = tls_echo_with_handshake_timeout(&c, Duration::from_secs(2));
    // Plain text to a TLS port: the handshake fails.
    let mut plain = connect(server.local_addr());
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let (_, _) = read_to_end_or_error(&mut plain);
    // Nothing at all: the handshake times out.
    let mut silent = connect(server.local_addr());
    let (data, _) = read_to_end_or_error(&mut silent);
    assert!(data.is_empty());
    assert!(wait_until(|| server.total_stats().tls_failures == 2));
    // And the server still serves.
    let mut s = client(&c, &server);
    s.write_all(b"ok?").unwrap();
    let mut back = [0u8; 3];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ok?");
    assert_eq!(server.total_stats().panics, 0);
    server.stop().unwrap();
}

#[test]
fn pythons_ssl_module_talks_to_the_tls_echo_server() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        return eprintln!("skipping: no python3");
    }
    let c = Certs::new("python");
    let server = tls_echo(&c);
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"hello from python ssl")
        got = b""
        while len(got) < 21:
            got += s.recv(100)
        print(s.version(), got.decode())
"#;
    let stdout = run_ok(std::process::Command::new("python3").args([
        "-c",
        script,
        "127.0.0.1",
        &server.local_addr().port().to_string(),
        &c.cert.display().to_string(),
    ]));
    assert!(stdout.contains("hello from python ssl"), "{stdout}");
    assert!(stdout.starts_with("TLSv1."), "{stdout}");
    server.stop().unwrap();
}

/// A second TLS server on a port one already listens on is refused.
#[test]
fn a_second_tls_server_on_a_listening_port_is_refused() {
    let c = Certs::new("twice");
    let first = tls_echo(&c);
    let endpoint = format!(
        "tls:{}:interface=127.0.0.1:certKey={}:privateKey={}",
        first.local_addr().port(),
        c.cert.display(),
        c.key.display()
    );
    for shards in [1, 2] {
        let err = Server::builder()
            .listen_on(&endpoint)
            .unwrap()
            .shards(shards)
            .serve(|_| EchoFactory)
            .unwrap_err();
        match &err {
            ServerError::Bind { source, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse, "{err}")
            }
            other => panic!("{other}"),
        }
    }
    first.stop().unwrap();
}
