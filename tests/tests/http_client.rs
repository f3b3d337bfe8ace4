//! The HTTP/1.1 client (`torsion_protocols::http::client`) against real
//! servers on 127.0.0.1: torsion's own HTTP server (keep-alive, the pool's
//! cap and queue, streamed bodies under flow control, TLS), Python's
//! `http.server` (HTTP/1.0, bodies delimited by close), an `h11` server
//! (strict about what the client sends; chunked bodies), and raw sockets
//! playing broken servers (closed mid-response, a broken chunked body,
//! garbage, silence, a keep-alive connection closed under the client).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use torsion::{Server, ServerHandle};
use torsion_protocols::http::client::{ClientConfig, ClientError, HttpClient, TimeoutPhase};
use torsion_protocols::http::{self, Body, HttpConfig, Request, Router};
use torsion_tests::{ensure_python_module, pattern, Certs, LOOPBACK, PATIENCE};

const PIECE: usize = 64 * 1024;
/// A keep-alive answer.
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const BIG_PIECES: usize = 1024;

fn router(pulled: Arc<AtomicUsize>) -> Router {
    Router::new()
        .get("/hello", |_| http::text("Hello, World!"))
        .post("/echo", |req: Request| http::text(req.into_body()))
        .get("/missing", |_| {
            http::status_page(http::StatusCode::NOT_FOUND)
        })
        .get("/moved", |_| {
            let mut r = http::text("moved");
            *r.status_mut() = http::StatusCode::FOUND;
            r.headers_mut().insert(
                http::header::LOCATION,
                http::header::HeaderValue::from_static("/hello"),
            );
            r
        })
        .get("/big", move |_| {
            let pulled = pulled.clone();
            let pieces = (0..BIG_PIECES).map(move |i| {
                pulled.fetch_add(1, Ordering::SeqCst);
                Ok(Bytes::from(pattern(i as u64, PIECE)))
            });
            let mut r = http::text(());
            *r.body_mut() = Body::stream(None, futures_lite::stream::iter(pieces));
            r
        })
}

fn torsion_server(endpoint: &str, pulled: Arc<AtomicUsize>) -> ServerHandle {
    http::start_http_server(
        Server::builder().listen_on(endpoint).unwrap().shards(1),
        HttpConfig::default(),
        move |_| router(pulled.clone()),
    )
    .unwrap()
}

fn config() -> ClientConfig {
    ClientConfig {
        connect_timeout: PATIENCE,
        first_byte_timeout: Some(PATIENCE),
        ..ClientConfig::default()
    }
}

#[test]
fn keep_alive_requests_share_one_connection_and_bodies_come_back_whole() {
    let server = torsion_server(LOOPBACK, Arc::default());
    let base = format!("http://127.0.0.1:{}", server.local_addr().port());
    torsion::block_on(async move {
        let client = HttpClient::new(config());
        for _ in 0..10 {
            let r = client.get(&format!("{base}/hello")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["server"], "torsion");
            assert_eq!(r.text().await.unwrap(), "Hello, World!");
        }
        let body = pattern(7, 300_000);
        let r = client
            .post(&format!("{base}/echo"))
            .header("content-type", "application/octet-stream")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.bytes().await.unwrap(), body);
        // A 404 is a response, not an error; so is a redirect (not followed).
        let r = client.get(&format!("{base}/missing")).send().await.unwrap();
        assert_eq!(r.status(), 404);
        r.bytes().await.unwrap();
        let r = client.get(&format!("{base}/moved")).send().await.unwrap();
        assert_eq!(
            (
                r.status().as_u16(),
                r.headers()["location"].to_str().unwrap()
            ),
            (302, "/hello")
        );
        r.bytes().await.unwrap();
        let r = client.head(&format!("{base}/hello")).send().await.unwrap();
        assert!(r.into_body().is_done(), "a HEAD response has no body");
        let stats = client.pool_stats();
        assert_eq!(
            (stats.opened, stats.reused, stats.open, stats.idle),
            (1, 13, 1, 1)
        );

        // Redirects followed when asked.
        let following = HttpClient::new(ClientConfig {
            max_redirects: 3,
            ..config()
        });
        let r = following
            .get(&format!("{base}/moved"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "Hello, World!");
    })
    .unwrap();
    server.stop().unwrap();
}

#[test]
fn a_full_pool_queues_requests_and_answers_every_one() {
    let server = torsion_server(LOOPBACK, Arc::default());
    let base = format!("http://127.0.0.1:{}", server.local_addr().port());
    torsion::block_on(async move {
        let client = HttpClient::new(ClientConfig {
            max_per_origin: 2,
            ..config()
        });
        let tasks: Vec<_> = (0..40u64)
            .map(|i| {
                let (client, url) = (client.clone(), format!("{base}/echo"));
                torsion::spawn_local(async move {
                    let body = pattern(i, 1000 + i as usize);
                    let r = client.post(&url).body(body.clone()).send().await.unwrap();
                    assert_eq!(r.bytes().await.unwrap(), body, "request {i}");
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let stats = client.pool_stats();
        assert!(stats.opened <= 2, "{stats:?}");
        assert!(stats.queued > 0, "{stats:?}");
        assert_eq!(stats.reused + stats.opened, 40, "{stats:?}");
    })
    .unwrap();
    server.stop().unwrap();
}

#[test]
fn a_streamed_body_is_read_only_as_fast_as_the_caller_asks() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let server = torsion_server(LOOPBACK, pulled.clone());
    let url = format!("http://127.0.0.1:{}/big", server.local_addr().port());
    let seen = pulled.clone();
    torsion::block_on(async move {
        let client = HttpClient::new(config());
        let mut r = client.get(&url).send().await.unwrap();
        assert_eq!(r.headers()["transfer-encoding"], "chunked");
        let body = r.body_mut();
        let mut got = body.chunk().await.unwrap().unwrap().to_vec();
        // The caller reads nothing for a while: the server is held back.
        torsion::Clock::real()
            .sleep(Duration::from_millis(300))
            .await;
        let held = seen.load(Ordering::SeqCst);
        assert!(
            held < BIG_PIECES / 2,
            "{held} of {BIG_PIECES} pieces pulled while nobody read"
        );
        while let Some(piece) = body.chunk().await.unwrap() {
            got.extend_from_slice(&piece);
        }
        assert_eq!(got.len(), PIECE * BIG_PIECES);
        for (i, piece) in got.chunks(PIECE).enumerate() {
            assert!(piece == pattern(i as u64, PIECE), "piece {i}");
        }
        assert_eq!(
            client.pool_stats().idle,
            1,
            "back in the pool after its end"
        );
    })
    .unwrap();
    server.stop().unwrap();
}

#[test]
fn https_checks_the_certificate_and_its_name() {
    let certs = Certs::new("http-client");
    let server = torsion_server(&certs.endpoint(&certs.key), Arc::default());
    let port = server.local_addr().port();
    // A certificate for another name, served on another port.
    let dir = certs.dir.join("other-name");
    std::fs::create_dir_all(&dir).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["other.test".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, other.cert.pem()).unwrap();
    std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
    let wrong_name = torsion_server(
        &format!(
            "tls:0:interface=127.0.0.1:certKey={}:privateKey={}",
            cert.display(),
            key.display()
        ),
        Arc::default(),
    );
    let wrong_port = wrong_name.local_addr().port();
    let (ca, other_ca) = (certs.cert.clone(), cert.clone());
    torsion::block_on(async move {
        let client = HttpClient::new(ClientConfig {
            ca_certs: Some(ca.clone()),
            ..config()
        });
        for host in ["localhost", "127.0.0.1"] {
            let r = client
                .get(&format!("https://{host}:{port}/hello"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.text().await.unwrap(), "Hello, World!");
        }
        let again = client
            .get(&format!("https://localhost:{port}/hello"))
            .send()
            .await
            .unwrap();
        again.bytes().await.unwrap();
        assert_eq!(client.pool_stats().opened, 2, "one per origin, then reused");

        // The platform's roots do not hold a throwaway CA.
        let default_roots = HttpClient::new(config());
        let e = default_roots
            .get(&format!("https://localhost:{port}/hello"))
            .send()
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Connect { .. }), "{e}");
        assert!(e.to_string().contains("certificate was refused"), "{e}");

        // Trusted, but for another name.
        let trusting = HttpClient::new(ClientConfig {
            ca_certs: Some(other_ca),
            ..config()
        });
        let e = trusting
            .get(&format!("https://localhost:{wrong_port}/"))
            .send()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("certificate was refused")
                && e.contains(
                    "not valid for the name asked for (\"localhost\"; it is for other.test)"
                ),
            "{e}"
        );
    })
    .unwrap();
    server.stop().unwrap();
    wrong_name.stop().unwrap();
}

/// A Python server started with `script` (`{port}` printed first).
struct PythonServer {
    child: std::process::Child,
    port: u16,
}

impl PythonServer {
    fn start(args: &[&str], dir: &std::path::Path) -> PythonServer {
        let mut child = Command::new("python3")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split_whitespace()
            .find_map(|w| w.parse::<u16>().ok().filter(|&p| p > 0))
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        PythonServer { child, port }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn python_http_server_bodies_delimited_by_length_or_close() {
    let dir = std::env::temp_dir().join(format!("torsion-http-client-py-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = pattern(3, 200_000);
    std::fs::write(dir.join("data.bin"), &file).unwrap();
    let server = PythonServer::start(
        &["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        &dir,
    );
    let base = format!("http://127.0.0.1:{}", server.port);
    torsion::block_on(async move {
        let client = HttpClient::new(config());
        for _ in 0..3 {
            let r = client
                .get(&format!("{base}/data.bin"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.version(), http::Version::HTTP_10);
            assert_eq!(r.bytes().await.unwrap(), file);
        }
        let r = client
            .get(&format!("{base}/nothing-here"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        r.bytes().await.unwrap();
        let stats = client.pool_stats();
        assert_eq!(
            (stats.opened, stats.open),
            (4, 0),
            "HTTP/1.0 closes: {stats:?}"
        );
    })
    .unwrap();
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_h11_server_accepts_every_request_and_its_chunked_bodies_are_read() {
    if !ensure_python_module("h11", "requirements-http.txt") {
        return;
    }
    let script = r#"
import socket, h11
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
print("port", listener.getsockname()[1], flush=True)
while True:
    sock, _ = listener.accept()
    conn = h11.Connection(our_role=h11.SERVER)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = sock.recv(65536)
            conn.receive_data(data)
            if not data:
                break
        elif isinstance(event, h11.Request):
            request, body = event, b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            agent = dict(request.headers).get(b"user-agent", b"")
            reply = b"%s %s %d %s" % (request.method, request.target, len(body), agent)
            sock.sendall(conn.send(h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")])))
            for i in range(0, len(reply), 3):
                sock.sendall(conn.send(h11.Data(data=reply[i:i + 3])))
            sock.sendall(conn.send(h11.EndOfMessage()))
            conn.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed):
            break
    sock.close()
"#;
    let dir = std::env::temp_dir();
    let server = PythonServer::start(&["-u", "-c", script], &dir);
    let base = format!("http://127.0.0.1:{}", server.port);
    torsion::block_on(async move {
        let client = HttpClient::new(config());
        let r = client.get(&format!("{base}/a?b=c")).send().await.unwrap();
        let text = r.text().await.unwrap();
        assert!(text.starts_with("GET /a?b=c 0 torsion/"), "{text}");
        let r = client
            .post(&format!("{base}/p"))
            .body("twelve bytes")
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().starts_with("POST /p 12 "));
        let r = client.put(&format!("{base}/empty")).send().await.unwrap();
        assert!(r.text().await.unwrap().starts_with("PUT /empty 0 "));
        let r = client
            .delete(&format!("{base}/d"))
            .header("user-agent", "mine")
            .send()
            .await;
        assert_eq!(r.unwrap().text().await.unwrap(), "DELETE /d 0 mine");
        assert_eq!(client.pool_stats().opened, 1, "one keep-alive connection");
    })
    .unwrap();
}

/// What a raw server does with one connection.
type Answer = Box<dyn FnOnce(&mut std::net::TcpStream) + Send>;

/// A server on a raw socket: for each connection, `answer` gets the
/// stream after the request head was read.
fn raw_server(answers: Vec<Answer>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for answer in answers {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            answer(&mut stream);
        }
    });
    addr
}

fn send(bytes: &'static [u8]) -> Answer {
    Box::new(move |s| {
        let _ = s.write_all(bytes);
    })
}

/// The error of a GET to `url`, from sending it or from reading its body.
async fn failure(client: &HttpClient, url: &str) -> ClientError {
    match client.get(url).send().await {
        Ok(r) => r.bytes().await.expect_err("a response read whole"),
        Err(e) => e,
    }
}

#[test]
fn broken_servers_are_errors_that_say_what_happened() {
    let (silent_tx, silent_rx) = std::sync::mpsc::channel::<()>();
    let cases: Vec<(Answer, &str)> = vec![
        (
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.."),
            "closed the connection in the middle of the response body",
        ),
        (
            send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"),
            "malformed response: malformed chunked body",
        ),
        (send(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"), "malformed response"),
        (send(b""), "closed the connection before the response head"),
        (
            send(b"HTTP/1.1 200 OK\r\nContent-Le"),
            "in the middle of the response head",
        ),
        (
            // Silence until the client gave up.
            Box::new(move |_s| {
                let _ = silent_rx.recv();
            }),
            "timed out after 200ms waiting for the first byte of the response",
        ),
    ];
    let (answers, expected): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
    let addr = raw_server(answers);
    let base = format!("http://{addr}");
    torsion::block_on(async move {
        let client = HttpClient::new(ClientConfig {
            first_byte_timeout: Some(Duration::from_millis(200)),
            ..config()
        });
        for why in expected {
            let e = failure(&client, &format!("{base}/")).await.to_string();
            assert!(e.contains(why), "{e}");
        }
        silent_tx.send(()).unwrap();
        let stats = client.pool_stats();
        assert_eq!((stats.open, stats.idle), (0, 0), "nothing kept: {stats:?}");

        // Refused, and a name that does not resolve (`.invalid` never
        // does, RFC 6761): connect errors with their cause.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = client
            .get(&format!("http://{closed}/"))
            .send()
            .await
            .unwrap_err();
        assert!(e.is_connect() && e.to_string().contains("refused"), "{e}");
        // Bad requests fail before anything is sent.
        for (url, why) in [
            ("localhost/x", "not an absolute URL"),
            ("gopher://h/", "gopher"),
        ] {
            let e = client.get(url).send().await.unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let e = client
            .get(&base)
            .header("bad name", "v")
            .send()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("invalid header name"), "{e}");
        let e = client
            .get(&base)
            .header("x", "a\r\nb")
            .send()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("invalid header value"), "{e}");
        let e = client
            .get(&base)
            .header("content-length", "1")
            .send()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("the client sets it itself"), "{e}");
    })
    .unwrap();
}

#[test]
fn a_keep_alive_connection_the_server_closed_is_replaced_for_idempotent_requests() {
    // Answers keep-alive; closes when told to, then says it has.
    let answer_then_close = || -> (Answer, mpsc::Sender<()>, mpsc::Receiver<()>) {
        let (close_tx, close_rx) = mpsc::channel::<()>();
        let (closed_tx, closed_rx) = mpsc::channel::<()>();
        let answer: Answer = Box::new(move |s| {
            s.write_all(OK).unwrap();
            let _ = close_rx.recv();
            s.shutdown(std::net::Shutdown::Both).unwrap();
            closed_tx.send(()).unwrap();
        });
        (answer, close_tx, closed_rx)
    };
    let (first, close_first, first_closed) = answer_then_close();
    let (third, close_third, third_closed) = answer_then_close();
    let addr = raw_server(vec![first, send(OK), third]);
    let url = format!("http://{addr}/");
    torsion::block_on(async move {
        let client = HttpClient::new(config());
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "ok");
        assert_eq!(client.pool_stats().idle, 1);
        close_first.send(()).unwrap();
        first_closed.recv().unwrap();
        // The pooled connection is dead; the GET goes out again on a new one.
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "ok");
        assert_eq!(client.pool_stats().opened, 2);
        // A POST is not sent twice: the error says why.
        let fresh = HttpClient::new(config());
        let r = fresh.get(&url).send().await.unwrap();
        r.bytes().await.unwrap();
        close_third.send(()).unwrap();
        third_closed.recv().unwrap();
        let e = fresh
            .post(&url)
            .body("x")
            .send()
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("not idempotent"), "{e}");
    })
    .unwrap();
}

#[test]
fn the_whole_request_timeout_covers_the_body() {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let addr = raw_server(vec![Box::new(move |s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        let _ = done_rx.recv();
    })]);
    torsion::block_on(async move {
        let client = HttpClient::new(config());
        let r = client
            .get(&format!("http://{addr}/"))
            .timeout(Duration::from_millis(300))
            .send()
            .await
            .unwrap();
        let e = r.bytes().await.unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Timeout {
                    phase: TimeoutPhase::Whole,
                    ..
                }
            ),
            "{e}"
        );
        done_tx.send(()).unwrap();
        assert_eq!(client.pool_stats().open, 0);
    })
    .unwrap();
}

#[test]
fn dropping_the_client_closes_its_idle_connections() {
    let (eof_tx, eof_rx) = std::sync::mpsc::channel::<usize>();
    let addr = raw_server(vec![Box::new(move |s| {
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
        // Keep-alive: the connection stays until the client closes it.
        let mut rest = [0u8; 64];
        let n = s.read(&mut rest).unwrap_or(0);
        eof_tx.send(n).unwrap();
    })]);
    torsion::block_on(async move {
        let client = HttpClient::new(config());
        let r = client.get(&format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "ok");
        assert_eq!(client.pool_stats().idle, 1);
        drop(client);
    })
    .unwrap();
    assert_eq!(
        eof_rx.recv_timeout(PATIENCE),
        Ok(0),
        "the idle connection was closed with its client"
    );
}

#[test]
fn a_request_sent_again_goes_on_a_new_connection_not_another_stale_one() {
    let (close_tx, close_rx) = mpsc::channel::<()>();
    let (closed_tx, closed_rx) = mpsc::channel::<()>();
    let ok = OK;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        // Two connections answered keep-alive, then both closed.
        let mut first = Vec::new();
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut head = [0u8; 1024];
            let _ = s.read(&mut head);
            s.write_all(ok).unwrap();
            first.push(s);
        }
        let _ = close_rx.recv();
        for s in &first {
            s.shutdown(std::net::Shutdown::Both).unwrap();
        }
        closed_tx.send(()).unwrap();
        // Then one that answers.
        let (mut s, _) = listener.accept().unwrap();
        let mut head = [0u8; 1024];
        let _ = s.read(&mut head);
        s.write_all(ok).unwrap();
        let _ = s.read(&mut head);
    });
    let url = format!("http://{addr}/");
    torsion::block_on(async move {
        let client = HttpClient::new(config());
        let (a, b) =
            futures_lite::future::zip(client.get(&url).send(), client.get(&url).send()).await;
        a.unwrap().bytes().await.unwrap();
        b.unwrap().bytes().await.unwrap();
        assert_eq!(client.pool_stats().idle, 2);
        close_tx.send(()).unwrap();
        closed_rx.recv().unwrap();
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "ok");
        assert_eq!(client.pool_stats().opened, 3);
    })
    .unwrap();
}

#[test]
fn a_body_delimited_by_the_close_and_cut_by_a_reset_is_an_error() {
    let addr = raw_server(vec![Box::new(|s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\npartial");
        // Close with a reset (SO_LINGER 0), not a FIN.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a socket we own, with a valid linger.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(s),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    })]);
    torsion::block_on(async move {
        let client = HttpClient::new(config());
        let e = failure(&client, &format!("http://{addr}/")).await;
        assert!(matches!(e, ClientError::Closed { .. }), "{e}");
    })
    .unwrap();
}

#[test]
fn a_server_that_stops_reading_a_long_body_times_out_at_the_first_byte() {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let addr = raw_server(vec![Box::new(move |s| {
        // Answers at once, then neither reads nor closes.
        let _ = s.write_all(b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\n\r\n");
        let _ = done_rx.recv();
    })]);
    torsion::block_on(async move {
        let client = HttpClient::new(ClientConfig {
            first_byte_timeout: Some(Duration::from_millis(500)),
            ..config()
        });
        let e = client
            .post(&format!("http://{addr}/"))
            .body(vec![0u8; 64 << 20])
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Timeout {
                    phase: TimeoutPhase::FirstByte,
                    ..
                }
            ),
            "{e}"
        );
        done_tx.send(()).unwrap();
    })
    .unwrap();
}

#[test]
fn credentials_do_not_follow_a_redirect_to_another_origin() {
    // B answers with the request head it got.
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let b_addr = b.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = b.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", head.len());
        let _ = s.write_all(reply.as_bytes());
        let _ = s.write_all(&head);
    });
    let location = format!(
        "HTTP/1.1 302 Found\r\nLocation: http://{b_addr}/there\r\nContent-Length: 0\r\n\r\n"
    );
    let location: &'static [u8] = Box::leak(location.into_bytes().into_boxed_slice());
    let a = raw_server(vec![send(location)]);
    torsion::block_on(async move {
        let client = HttpClient::new(ClientConfig {
            max_redirects: 1,
            ..config()
        });
        let r = client
            .get(&format!("http://{a}/here"))
            .header("authorization", "Bearer secret")
            .header("cookie", "session=1")
            .header("x-kept", "yes")
            .send()
            .await
            .unwrap();
        let head = r.text().await.unwrap().to_lowercase();
        assert!(head.starts_with("get /there "), "{head}");
        assert!(head.contains("x-kept: yes"), "{head}");
        assert!(head.contains(&format!("host: {b_addr}")), "{head}");
        assert!(
            !head.contains("secret") && !head.contains("session"),
            "{head}"
        );
    })
    .unwrap();
}
