//! WebSocket on real sockets: torsion's server with torsion's client, with
//! a strict client nobody here wrote (Python `websockets`), and with raw
//! bytes that break the rules (the close code the RFC names comes back).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use torsion::{Server, ServerHandle};
use torsion_protocols::websocket::{
    self, apply_mask, start_websocket_server, write_header, CloseCode, Message, Opcode, WsConfig,
    WsHandler,
};
use torsion_tests::{connect, ensure_node_packages, ensure_python_module, PATIENCE};

/// An echo server on one shard: each message back as it came.
fn echo_server(config: WsConfig) -> (ServerHandle, SocketAddr) {
    let server = start_websocket_server(
        Server::builder()
            .listen_on("tcp:0:interface=127.0.0.1")
            .unwrap()
            .cores(vec![torsion::cores::allowed_cores().unwrap()[0]]),
        config,
        |_shard| {
            WsHandler::echo().with_page(|head| {
                (head.parts.uri.path() == "/").then(|| torsion_protocols::http::text("a page\n"))
            })
        },
    )
    .unwrap();
    let addr = server.local_addr();
    (server, addr)
}

fn small_limit(deflate: bool) -> WsConfig {
    WsConfig {
        max_message: 64 * 1024,
        deflate,
        ..WsConfig::default()
    }
}

#[test]
fn torsions_client_and_server_talk_with_and_without_compression() {
    for deflate in [false, true] {
        let (server, addr) = echo_server(small_limit(deflate));
        torsion::block_on(async move {
            let config = WsConfig {
                deflate: true,
                ..WsConfig::default()
            };
            let mut ws =
                websocket::connect(&format!("ws://localhost:{}/echo", addr.port()), &config)
                    .await
                    .unwrap();
            assert_eq!(ws.is_compressed(), deflate);
            let big: Vec<u8> = (0..50_000u32).map(|i| (i * 31 % 251) as u8).collect();
            let sent = [
                Message::text("hello ✓"),
                Message::Binary(big.into()),
                Message::text("again ".repeat(1000)),
            ];
            for m in &sent {
                ws.send(m.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap().unwrap(), *m);
            }
            ws.close(CloseCode::NORMAL, "bye").await.unwrap();
            assert_eq!(ws.peer_close().map(|c| c.code), Some(CloseCode::NORMAL));
        })
        .unwrap();
        server.stop().unwrap();
    }
}

/// Runs `program script URL COMPRESSED 65536` against an echo server with
/// and without `permessage-deflate`; the script checks, line by line.
fn interop_client(program: &str, script: &std::path::Path) {
    for deflate in [false, true] {
        let (server, addr) = echo_server(small_limit(deflate));
        let out = std::process::Command::new(program)
            .arg(script)
            .args([
                format!("ws://{addr}/").as_str(),
                if deflate { "1" } else { "0" },
                "65536",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{program}, deflate {deflate}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("ok   closed cleanly"), "{stdout}");
        assert!(
            stdout.contains("ok   a message over the limit refused with 1009"),
            "{stdout}"
        );
        server.stop().unwrap();
    }
}

#[test]
fn a_strict_client_nobody_here_wrote_python_websockets() {
    if !ensure_python_module("websockets", "requirements-websocket.txt") {
        return;
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/websockets_client.py");
    interop_client("python3", &script);
}

#[test]
fn another_client_nobody_here_wrote_node_ws() {
    let Some(dir) = ensure_node_packages() else {
        return;
    };
    interop_client("node", &dir.join("ws_client.js"));
}

/// A raw client: the handshake by hand, then frames by hand.
fn raw_client(addr: SocketAddr) -> TcpStream {
    let mut s = connect(addr);
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    s
}

fn frame(b0: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    let mask = masked.then_some([1, 2, 3, 4]);
    write_header(
        &mut out,
        b0 & 0x80 != 0,
        false,
        Opcode::Binary,
        payload.len(),
        mask,
    );
    out[0] = b0;
    let mut p = payload.to_vec();
    if let Some(m) = mask {
        apply_mask(&mut p, m, 0);
    }
    out.extend_from_slice(&p);
    out.to_vec()
}

/// Everything the server sends until it closes.
fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    all
}

#[test]
fn frames_that_break_the_rules_get_the_close_code_the_rfc_names() {
    let (server, addr) = echo_server(small_limit(false));
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (frame(0x81, b"not masked", false), 1002),
        (frame(0x83, b"", true), 1002),
        (frame(0x91, b"", true), 1002),
        (frame(0x89, &[0; 126], true), 1002),
        (frame(0x09, b"", true), 1002),
        (frame(0x81, b"\xce\xba\xff", true), 1007),
        (frame(0x88, &[0x03, 0xED], true), 1002),
        (frame(0x82, &vec![0; 70_000], true), 1009),
    ];
    for (wire, code) in cases {
        let mut s = raw_client(addr);
        s.write_all(&wire).unwrap();
        let reply = until_closed(&mut s);
        // One close frame from the server: 0x88, a length, the code.
        assert!(reply.len() >= 4 && reply[0] == 0x88, "{reply:?}");
        assert_eq!(u16::from_be_bytes([reply[2], reply[3]]), code, "{reply:?}");
    }
    // A clean close is answered with the same code, then the end.
    let mut s = raw_client(addr);
    s.write_all(&frame(0x88, &[0x0F, 0xA0, b'b', b'y', b'e'], true))
        .unwrap();
    let reply = until_closed(&mut s);
    assert_eq!(&reply[..4], &[0x88, 0x02, 0x0F, 0xA0]);
    server.stop().unwrap();
}

#[test]
fn pages_refusals_and_a_handshake_that_never_ends() {
    let (server, addr) = echo_server(WsConfig {
        handshake_timeout: Duration::from_millis(300),
        ..WsConfig::default()
    });
    let ask = |request: &str| {
        let mut s = connect(addr);
        s.write_all(request.as_bytes()).unwrap();
        String::from_utf8_lossy(&until_closed(&mut s)).into_owned()
    };
    let page = ask("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        page.starts_with("HTTP/1.1 200 OK\r\n") && page.ends_with("a page\n"),
        "{page}"
    );
    let other = ask("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        other.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{other}"
    );
    let v8 = ask(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    );
    assert!(
        v8.starts_with("HTTP/1.1 426 ") && v8.contains("sec-websocket-version: 13\r\n"),
        "{v8}"
    );
    let garbage = ask("\x16\x03\x01 not http\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
    // Half a request, then nothing: the server ends it (no timed
    // assertion: the read returns when the server closes).
    let mut s = connect(addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    assert!(until_closed(&mut s).is_empty());
    server.stop().unwrap();
}

#[test]
fn a_message_of_the_whole_limit_is_taken_and_a_shutdown_says_1001() {
    // The default limit (1 MiB): a message of exactly that size is read
    // whole (the listener's read buffer makes room for it).
    let server = start_websocket_server(
        Server::builder()
            .listen_on("tcp:0:interface=127.0.0.1")
            .unwrap()
            .cores(vec![torsion::cores::allowed_cores().unwrap()[0]]),
        WsConfig::default(),
        |_shard| {
            WsHandler::new(|mut ws, _head| async move {
                while let Some(Ok(m)) = ws.recv().await {
                    let n = match m {
                        Message::Binary(b) | Message::Text(b) => b.len(),
                        _ => 0,
                    };
                    if ws.send_text(format!("got {n}")).await.is_err() {
                        break;
                    }
                }
            })
        },
    )
    .unwrap();
    let addr = server.local_addr();
    let mut s = raw_client(addr);
    s.write_all(&frame(0x82, &vec![7u8; 1 << 20], true))
        .unwrap();
    let mut reply = [0u8; 2 + 11];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"\x81\x0bgot 1048576");
    // The server stops: the connection gets a close frame with 1001.
    let stopper = std::thread::spawn(move || server.stop().unwrap());
    let rest = until_closed(&mut s);
    assert!(rest.len() >= 4 && rest[0] == 0x88, "{rest:?}");
    assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), 1001);
    stopper.join().unwrap();
}
