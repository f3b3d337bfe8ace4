//! HTTP/1.1 on real sockets, against clients nobody here wrote: curl,
//! Python's `http.client`, the strict `h11`, and wrk (installed when
//! missing: apt-get as root, pip; skipped with a message only when that
//! fails). Also: async handlers keep pipelined order, a streamed body is
//! pulled only as fast as the client reads, and junk on the port gets its
//! 400 and a close.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use torsion::{Server, ServerHandle};
use torsion_protocols::http::{self, Body, HttpConfig, Reply, Request, Router};
use torsion_tests::{
    connect, ensure_program, ensure_python_module, pattern, read_to_end_or_error, run_ok,
    wait_until, LOOPBACK,
};

const PIECE: usize = 64 * 1024;
const BIG_PIECES: usize = 1024;

fn server(pulled: Arc<AtomicUsize>) -> ServerHandle {
    http::start_http_server(
        Server::builder().listen_on(LOOPBACK).unwrap().shards(1),
        HttpConfig::default(),
        move |_shard| {
            let pulled = pulled.clone();
            Router::new()
                .get("/plaintext", |_| http::text("Hello, World!"))
                .get("/json", |_| http::json(r#"{"message":"Hello, World!"}"#))
                .post("/echo", |req: Request| http::text(req.into_body()))
                .get("/slow", |_| {
                    Reply::later(async {
                        let clock = torsion::Clock::real();
                        clock.sleep(Duration::from_millis(50)).await;
                        let n = torsion::defer_to_thread(|| 6 * 7).await.unwrap_or(0);
                        http::text(format!("slow {n}"))
                    })
                })
                .get("/stream", |_| {
                    // 1 MiB in 16 KiB pieces, length unknown: chunked.
                    let pieces = (0..64).map(|i| Ok(Bytes::from(pattern(i, 16 * 1024))));
                    let mut r = http::text(());
                    *r.body_mut() = Body::stream(None, futures_lite::stream::iter(pieces));
                    r
                })
                .get("/big", move |_| {
                    let pulled = pulled.clone();
                    let pieces = (0..BIG_PIECES).map(move |_| {
                        pulled.fetch_add(1, Ordering::SeqCst);
                        Ok(Bytes::from(vec![b'x'; PIECE]))
                    });
                    let mut r = http::text(());
                    *r.body_mut() = Body::stream(
                        Some((PIECE * BIG_PIECES) as u64),
                        futures_lite::stream::iter(pieces),
                    );
                    r
                })
        },
    )
    .unwrap()
}

/// Runs a Python script with the server's host and port as arguments;
/// returns its stdout.
fn python(script: &str, addr: SocketAddr) -> String {
    run_ok(Command::new("python3").args([
        "-c",
        script,
        &addr.ip().to_string(),
        &addr.port().to_string(),
    ]))
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[test]
fn curl_gets_heads_posts_and_streams() {
    if !ensure_program("curl", "curl") {
        return;
    }
    let s = server(Arc::default());
    let addr = s.local_addr();
    let out = run_ok(Command::new("curl").args(["-s", "-i", &url(addr, "/plaintext")]));
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.contains("Server: torsion\r\n") && out.ends_with("\r\n\r\nHello, World!"),
        "{out}"
    );
    let out = run_ok(Command::new("curl").args(["-s", "-I", &url(addr, "/json")]));
    assert!(out.contains("Content-Length: 27\r\n"), "HEAD: {out}");
    // Two URLs on one command line: curl reuses the kept-alive connection.
    let out =
        run_ok(Command::new("curl").args(["-s", &url(addr, "/plaintext"), &url(addr, "/json")]));
    assert_eq!(out, "Hello, World!{\"message\":\"Hello, World!\"}");

    let dir = std::env::temp_dir().join(format!("torsion-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("body");
    let body = pattern(7, 300 * 1024);
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    for extra in [
        &["-H", "Expect: 100-continue"][..],
        &["-H", "Transfer-Encoding: chunked"][..],
    ] {
        let out = Command::new("curl")
            .args([
                "-s",
                "--data-binary",
                &data,
                "-H",
                "Content-Type: application/octet-stream",
            ])
            .args(extra)
            .arg(url(addr, "/echo"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{extra:?}");
        assert!(
            out.stdout == body,
            "{extra:?}: {} bytes back",
            out.stdout.len()
        );
    }
    let streamed = Command::new("curl")
        .args(["-s", &url(addr, "/stream")])
        .output()
        .unwrap();
    let expected: Vec<u8> = (0..64).flat_map(|i| pattern(i, 16 * 1024)).collect();
    assert!(
        streamed.stdout == expected,
        "streamed {} bytes",
        streamed.stdout.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    s.stop().unwrap();
}

#[test]
fn python_http_client_keeps_the_connection_and_sends_chunked_bodies() {
    let s = server(Arc::default());
    let script = r#"
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=20)
socks = set()
for path in ["/plaintext", "/json", "/slow"]:
    c.request("GET", path)
    r = c.getresponse()
    print(r.status, r.getheader("Server"), r.read().decode())
    socks.add(id(c.sock))
c.request("POST", "/echo", body=iter([b"chunk one, ", b"chunk two"]), encode_chunked=True)
r = c.getresponse()
print(r.status, r.read().decode())
c.request("GET", "/nope")
r = c.getresponse()
print(r.status, r.read().decode().strip())
print("connections", len(socks))
"#;
    let out = python(script, s.local_addr());
    assert_eq!(
        out,
        "200 torsion Hello, World!\n\
         200 torsion {\"message\":\"Hello, World!\"}\n\
         200 torsion slow 42\n\
         200 chunk one, chunk two\n\
         404 404 Not Found\n\
         connections 1\n"
    );
    s.stop().unwrap();
}

#[test]
fn h11_a_strict_client_accepts_every_response() {
    if !ensure_python_module("h11", "requirements-http.txt") {
        return;
    }
    let s = server(Arc::default());
    let script = r#"
import socket, sys, h11
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
conn = h11.Connection(our_role=h11.CLIENT)
def send(*events):
    for e in events:
        data = conn.send(e)
        if data:
            sock.sendall(data)
def receive():
    status, body = None, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = dict(event.headers)
            assert headers[b"server"] == b"torsion", headers
            assert b"date" in headers, headers
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return status, body
host = [("Host", sys.argv[1])]
for method, path, body in [("GET", "/plaintext", None), ("HEAD", "/plaintext", None),
                           ("GET", "/json", None), ("POST", "/echo", b"h11 body"),
                           ("GET", "/stream", None), ("GET", "/slow", None), ("PUT", "/json", None)]:
    headers = host + ([("Content-Length", str(len(body)))] if body is not None else [])
    send(h11.Request(method=method, target=path, headers=headers))
    if body is not None:
        send(h11.Data(data=body))
    send(h11.EndOfMessage())
    status, got = receive()
    print(method, path, status, len(got), got[:20] if len(got) < 100 else b"...")
    conn.start_next_cycle()
"#;
    let out = python(script, s.local_addr());
    assert_eq!(
        out,
        "GET /plaintext 200 13 b'Hello, World!'\n\
         HEAD /plaintext 200 0 b''\n\
         GET /json 200 27 b'{\"message\":\"Hello, W'\n\
         POST /echo 200 8 b'h11 body'\n\
         GET /stream 200 1048576 b'...'\n\
         GET /slow 200 7 b'slow 42'\n\
         PUT /json 405 23 b'405 Method Not Allow'\n"
    );
    s.stop().unwrap();
}

#[test]
fn wrk_drives_the_server_without_errors() {
    if !ensure_program("wrk", "wrk") {
        return;
    }
    let s = server(Arc::default());
    let out = run_ok(Command::new("wrk").args([
        "-t1",
        "-c8",
        "-d1s",
        &url(s.local_addr(), "/plaintext"),
    ]));
    assert!(out.contains("requests in"), "{out}");
    assert!(
        !out.contains("Non-2xx") && !out.contains("Socket errors"),
        "{out}"
    );
    s.stop().unwrap();
}

/// Reads `n` responses with `Content-Length` bodies from `stream`.
fn read_responses(stream: &mut std::net::TcpStream, n: usize) -> Vec<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while out.len() < n {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                out.push((head.lines().next().unwrap().to_owned(), body));
                continue;
            }
        }
        let k = stream.read(&mut chunk).unwrap();
        assert!(k > 0, "closed after {} responses", out.len());
        buf.extend_from_slice(&chunk[..k]);
    }
    out
}

#[test]
fn async_handlers_keep_pipelined_responses_in_order() {
    let s = server(Arc::default());
    let mut c = connect(s.local_addr());
    c.write_all(
        b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /json HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    let bodies: Vec<Vec<u8>> = read_responses(&mut c, 4).into_iter().map(|r| r.1).collect();
    assert_eq!(
        bodies,
        [
            &b"slow 42"[..],
            b"Hello, World!",
            b"slow 42",
            br#"{"message":"Hello, World!"}"#
        ]
    );
    s.stop().unwrap();
}

#[test]
fn a_streamed_body_is_pulled_only_as_fast_as_the_client_reads() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let s = server(pulled.clone());
    let mut c = connect(s.local_addr());
    c.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert!(wait_until(|| pulled.load(Ordering::SeqCst) > 0));
    // The client reads nothing: the pieces pulled stop at what the socket
    // buffers and the transport's high-water mark hold.
    let mut last = 0;
    assert!(wait_until(|| {
        std::thread::sleep(Duration::from_millis(100));
        let now = pulled.load(Ordering::SeqCst);
        std::mem::replace(&mut last, now) == now
    }));
    assert!(
        last < BIG_PIECES / 2,
        "{last} of {BIG_PIECES} pieces pulled for a client that reads nothing"
    );
    // Once it reads, every byte arrives.
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let head_end = loop {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        total += n;
        if let Some(p) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let want = head_end + PIECE * BIG_PIECES;
    while total < want {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed at {total} of {want} bytes");
        total += n;
    }
    assert_eq!(pulled.load(Ordering::SeqCst), BIG_PIECES);
    s.stop().unwrap();
}

#[test]
fn junk_on_the_port_gets_400_and_a_close() {
    let s = server(Arc::default());
    for junk in [
        &b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let mut c = connect(s.local_addr());
        c.write_all(junk).unwrap();
        let (got, err) = read_to_end_or_error(&mut c);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(err.is_none(), "closed cleanly: {err:?}");
    }
    s.stop().unwrap();
}

/// A directory to serve: files, a subdirectory with an index, one without,
/// a symlink that leaves the root, and a secret beside the root.
struct Site {
    base: std::path::PathBuf,
    root: std::path::PathBuf,
}

impl Site {
    fn new(tag: &str) -> Site {
        let base = std::env::temp_dir().join(format!("torsion-site-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(root.join("empty dir")).unwrap();
        std::fs::write(root.join("hello.txt"), "hello, file\n").unwrap();
        std::fs::write(root.join("big.bin"), pattern(3, 3 * 1024 * 1024 + 17)).unwrap();
        std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>\n").unwrap();
        std::fs::write(root.join("empty dir/<a&b>.txt"), "x").unwrap();
        std::fs::write(base.join("secret.txt"), "secret\n").unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
        Site { base, root }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn dir_server(site: &Site) -> ServerHandle {
    let dir = http::StaticDir::new(&site.root).unwrap();
    http::start_http_server(
        Server::builder().listen_on(LOOPBACK).unwrap().shards(1),
        HttpConfig::default(),
        move |_shard| Router::new().prefix(http::Method::GET, "/", dir.clone()),
    )
    .unwrap()
}

/// One request on a fresh connection; the whole response as text (lossy).
fn ask(addr: SocketAddr, request: &str) -> String {
    let mut c = connect(addr);
    c.write_all(request.as_bytes()).unwrap();
    let (got, _) = read_to_end_or_error(&mut c);
    String::from_utf8_lossy(&got).into_owned()
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> String {
    ask(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n{extra}\r\n"),
    )
}

#[test]
fn a_directory_is_served_with_types_caching_and_ranges() {
    let site = Site::new("serve");
    let s = dir_server(&site);
    let addr = s.local_addr();
    let r = get(addr, "/hello.txt", "");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        r.contains("content-type: text/plain\r\n") && r.ends_with("\r\n\r\nhello, file\n"),
        "{r}"
    );
    let etag = r
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .to_owned();
    let modified = r
        .lines()
        .find_map(|l| l.strip_prefix("last-modified: "))
        .unwrap()
        .to_owned();
    assert!(
        get(addr, "/hello.txt", &format!("If-None-Match: {etag}\r\n")).starts_with("HTTP/1.1 304 ")
    );
    assert!(get(
        addr,
        "/hello.txt",
        &format!("If-Modified-Since: {modified}\r\n")
    )
    .starts_with("HTTP/1.1 304 "));
    assert!(get(addr, "/hello.txt", "If-None-Match: \"other\"\r\n").starts_with("HTTP/1.1 200 "));
    let r = get(addr, "/hello.txt", "Range: bytes=7-10\r\n");
    assert!(
        r.starts_with("HTTP/1.1 206 ") && r.contains("content-range: bytes 7-10/12\r\n"),
        "{r}"
    );
    assert!(r.ends_with("\r\n\r\nfile"), "{r}");
    let r = get(addr, "/hello.txt", "Range: bytes=50-\r\n");
    assert!(
        r.starts_with("HTTP/1.1 416 ") && r.contains("content-range: bytes */12\r\n"),
        "{r}"
    );
    let r = get(addr, "/docs/", "");
    assert!(
        r.contains("content-type: text/html") && r.ends_with("<h1>docs</h1>\n"),
        "{r}"
    );
    let r = get(addr, "/docs", "");
    assert!(
        r.starts_with("HTTP/1.1 301 ") && r.contains("location: /docs/\r\n"),
        "{r}"
    );
    let r = get(addr, "/empty%20dir/", "");
    assert!(
        r.contains("<a href=\"%3Ca%26b%3E.txt\">&lt;a&amp;b&gt;.txt</a>"),
        "listing, escaped: {r}"
    );
    let r = ask(
        addr,
        "HEAD /big.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(
        r.contains("Content-Length: 3145745\r\n") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
    // The big file, whole, through curl when it is here.
    if ensure_program("curl", "curl") {
        let out = Command::new("curl")
            .args(["-s", &url(addr, "/big.bin")])
            .output()
            .unwrap();
        assert!(
            out.stdout == pattern(3, 3 * 1024 * 1024 + 17),
            "{} bytes",
            out.stdout.len()
        );
    }
    s.stop().unwrap();
}

#[test]
fn nothing_outside_the_root_is_served() {
    let site = Site::new("escape");
    let s = dir_server(&site);
    let addr = s.local_addr();
    for (path, status) in [
        ("/../secret.txt", "404"),
        ("/%2e%2e/secret.txt", "404"),
        ("/docs/%2E%2E/%2e%2e/secret.txt", "404"),
        ("/..%2fsecret.txt", "404"),
        ("/docs%2f..%2f..%2fsecret.txt", "404"),
        ("/leak.txt", "404"),
        ("/hello.txt%00.html", "400"),
        ("/nope.txt", "404"),
    ] {
        let r = get(addr, path, "");
        assert!(r.starts_with(&format!("HTTP/1.1 {status} ")), "{path}: {r}");
        assert!(!r.contains("secret"), "{path}: {r}");
    }
    s.stop().unwrap();
}

#[test]
fn tls_endpoints_serve_http_unchanged() {
    if !ensure_program("curl", "curl") {
        return;
    }
    let certs = torsion_tests::Certs::new("http");
    let s = http::start_http_server(
        Server::builder()
            .listen_on(&certs.endpoint(&certs.key))
            .unwrap()
            .shards(1),
        HttpConfig::default(),
        |_| Router::new().get("/plaintext", |_| http::text("Hello, World!")),
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{}/plaintext", s.local_addr().port());
    let out = run_ok(
        Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(&certs.cert)
            .arg(&url),
    );
    assert_eq!(out, "Hello, World!");
    s.stop().unwrap();
}
