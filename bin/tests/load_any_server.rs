//! The load generator against servers it did not write the protocol of:
//! HTTP with methods, headers, bodies and https, several weighted targets,
//! Redis (RESP) against a real `redis-server`, coordinated-omission
//! correction on both new modes with servers that stall, and rate sweeps
//! with an objective, through the command line.

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use torsion::codec::Decoder;
use torsion::{FnFactory, Protocol, Server, ServerHandle, Transport};
use torsion_cli::load::echo::{EchoLoad, Rate};
use torsion_cli::load::resp_wire::{KeyDistribution, RedisLoad};
use torsion_cli::load::target::LoadTarget;
use torsion_cli::load::{run_echo, Outputs};
use torsion_protocols::codec::resp::RespCodec;
use torsion_protocols::http::{self, HttpConfig, Router, StatusCode};
use torsion_protocols::Framing;

fn a_core() -> Vec<usize> {
    let cores = torsion::cores::allowed_cores().unwrap();
    vec![cores[cores.len() - 1]]
}

fn no_stop() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// Runs `torsion ARGS`: exit status, stdout, stderr.
fn torsion(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_torsion"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `POST /submit` answers 200 only for a request carrying `X-Load: yes`
/// and the body `hello`, else 400; `GET /plaintext` answers 200.
fn http_server(endpoint: &str) -> ServerHandle {
    http::start_http_server(
        Server::builder()
            .listen_on(endpoint)
            .unwrap()
            .cores(a_core()),
        HttpConfig::default(),
        |_| {
            Router::new()
                .get("/plaintext", |_| http::text("Hello, World!"))
                .post("/submit", |req: http::Request| {
                    let header = req.headers().get("x-load").and_then(|v| v.to_str().ok());
                    if header == Some("yes") && req.body().as_ref() == b"hello" {
                        http::text("ok")
                    } else {
                        http::status_page(StatusCode::BAD_REQUEST)
                    }
                })
        },
    )
    .unwrap()
}

const SHORT: [&str; 6] = ["--duration", "1s", "--warmup", "0s", "--quiet", "--shards"];

fn load_args<'a>(mode: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["load", mode];
    args.extend_from_slice(extra);
    args.extend_from_slice(&SHORT);
    args.push("1");
    args
}

#[test]
fn http_load_sends_the_method_headers_and_body_and_counts_statuses() {
    let server = http_server("tcp:0:interface=127.0.0.1");
    let url = format!("http://{}/submit", server.local_addr());
    let (code, stdout, stderr) = torsion(&load_args(
        "http",
        &[
            "--target",
            &url,
            "-X",
            "POST",
            "-H",
            "X-Load: yes",
            "--body",
            "hello",
            "--connections",
            "2",
            "--rate",
            "400",
        ],
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("statuses  1xx 0 · 2xx 400 · 3xx 0 · 4xx 0"),
        "{stdout}"
    );
    assert!(stdout.contains("errors: none"), "{stdout}");

    // Without the header every answer is a 400: timed, counted by class,
    // and an error unless --accept lists it.
    let (code, stdout, _) = torsion(&load_args(
        "http",
        &[
            "--target",
            &url,
            "-X",
            "POST",
            "--body",
            "hello",
            "--connections",
            "2",
            "--rate",
            "200",
        ],
    ));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("4xx 200"), "{stdout}");
    assert!(stdout.contains("errors: 200 (status 200)"), "{stdout}");
    let (code, stdout, _) = torsion(&load_args(
        "http",
        &[
            "--target",
            &url,
            "-X",
            "POST",
            "--connections",
            "2",
            "--rate",
            "200",
            "--accept",
            "2xx,400",
        ],
    ));
    assert_eq!(code, 0, "{stdout}");

    // A body from a file.
    let body = std::env::temp_dir().join(format!("torsion-body-{}", std::process::id()));
    std::fs::write(&body, "hello").unwrap();
    let (code, stdout, _) = torsion(&load_args(
        "http",
        &[
            "--target",
            &url,
            "-X",
            "POST",
            "-H",
            "X-Load: yes",
            "--body-file",
            body.to_str().unwrap(),
            "--connections",
            "1",
            "--rate",
            "100",
        ],
    ));
    std::fs::remove_file(&body).unwrap();
    assert_eq!(code, 0, "{stdout}");
    server.stop().unwrap();
}

#[test]
fn https_load_checks_the_certificate() {
    let certs = torsion_tests::Certs::new("load-https");
    // `torsion serve http` over tls:, as a user runs it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_torsion"))
        .args([
            "serve",
            "http",
            "--listen",
            &certs.endpoint(&certs.key),
            "--shards",
            "1",
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _) = torsion_tests::read_listening_line(child.stdout.take().unwrap());
    let server = torsion_tests::ServerProcess {
        child,
        addr,
        shards: 1,
    };
    let port = server.addr.port();
    // By name: localhost resolves, the certificate is for localhost.
    let url = format!("https://localhost:{port}/plaintext");
    let ca = certs.cert.to_str().unwrap();
    let (code, stdout, stderr) = torsion(&load_args(
        "http",
        &[
            "--target",
            &url,
            "--ca",
            ca,
            "--connections",
            "2",
            "--rate",
            "200",
        ],
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("→ {url}")), "{stdout}");
    assert!(stdout.contains("2xx 200"), "{stdout}");

    // Another CA: the handshake fails and says why.
    let other = torsion_tests::Certs::new("load-https-other");
    let (code, _, stderr) = torsion(&load_args(
        "http",
        &[
            "--target",
            &url,
            "--ca",
            other.cert.to_str().unwrap(),
            "--rate",
            "100",
        ],
    ));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot connect") && stderr.contains("certificate"),
        "{stderr}"
    );
    // Neither --ca nor --insecure: refused before anything starts.
    let (code, _, stderr) = torsion(&load_args("http", &["--target", &url]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("exactly one of --ca FILE (verify) or --insecure"),
        "{stderr}"
    );
    // --insecure: no check at all (load tests with throwaway certificates).
    let (code, stdout, _) = torsion(&load_args(
        "http",
        &[
            "--target",
            &url,
            "--insecure",
            "--connections",
            "1",
            "--rate",
            "100",
        ],
    ));
    assert_eq!(code, 0, "{stdout}");
    drop(server);
}

/// Echoes; its shard stalls 200 ms every second when `stall` (the stall
/// runs on the shard's clock, independent of traffic).
fn echo_server(stall: bool) -> ServerHandle {
    struct Echo;
    impl Protocol for Echo {
        fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
            let _ = t.write_bytes(data.split().freeze());
        }
    }
    Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .cores(a_core())
        .serve(move |_| {
            if stall {
                stall_every_second();
            }
            FnFactory(|_peer| Some(Echo))
        })
        .unwrap()
}

/// On the calling shard: a 200 ms stall every second.
fn stall_every_second() {
    let lc = torsion::Clock::real()
        .looping_call(Duration::from_secs(1), || {
            std::thread::sleep(Duration::from_millis(200))
        })
        .unwrap();
    std::mem::forget(lc);
}

fn base_load(targets: Vec<LoadTarget>, rate: Rate, secs: u64) -> EchoLoad {
    EchoLoad {
        targets,
        connections: 8,
        rate,
        pipeline: 1,
        duration: Duration::from_secs(secs),
        warmup: Duration::ZERO,
        size: 64,
        framing: Framing::Raw,
        connect_timeout: Duration::from_secs(3),
        drain: Duration::from_secs(2),
        udp: false,
        http: None,
        redis: None,
        websocket: None,
        churn: 0.0,
        batches: false,
    }
}

#[test]
fn several_targets_share_the_connections_by_weight_with_a_row_each() {
    let (a, b) = (echo_server(false), echo_server(false));
    let mut targets = vec![
        LoadTarget::plain(a.local_addr()),
        LoadTarget::plain(b.local_addr()),
    ];
    targets[0].weight = 3;
    let report = run_echo(
        base_load(targets, Rate::PerSecond(800.0), 1),
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(!report.has_errors(), "{}", report.render());
    assert_eq!(report.targets.len(), 2, "{}", report.render());
    let (ra, rb) = (&report.targets[0], &report.targets[1]);
    assert_eq!(ra.completed + rb.completed, report.completed);
    // 6 of 8 connections against 2, each with the same share of the rate.
    let ratio = ra.completed as f64 / rb.completed.max(1) as f64;
    assert!((2.7..=3.3).contains(&ratio), "{ratio}: {}", report.render());
    assert!(report.render().contains("by target"), "{}", report.render());
    a.stop().unwrap();
    b.stop().unwrap();
}

fn redis_load(addr: std::net::SocketAddr, commands: &[&str], ratio: Option<&str>) -> EchoLoad {
    let commands: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
    EchoLoad {
        size: 0,
        redis: Some(
            RedisLoad::new(&commands, ratio, 1000, KeyDistribution::Zipf(0.99), 16).unwrap(),
        ),
        ..base_load(vec![LoadTarget::plain(addr)], Rate::Max, 1)
    }
}

#[test]
fn redis_load_against_redis_server_checks_every_reply() {
    let Some(redis) = torsion_tests::RedisServer::start() else {
        return;
    };
    let report = run_echo(
        EchoLoad {
            pipeline: 16,
            ..redis_load(
                redis.addr,
                &["SET key:{key} {data}", "GET key:{key}"],
                Some("1:3"),
            )
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(!report.has_errors(), "{}", report.render());
    assert!(report.completed > 0 && report.completed == report.sent);
    assert_eq!(report.commands.len(), 2);
    let (set, get) = (report.commands[0].completed, report.commands[1].completed);
    assert_eq!(set + get, report.completed);
    let ratio = get as f64 / set.max(1) as f64;
    assert!((2.9..=3.1).contains(&ratio), "{ratio}");
    // The keys it wrote are in the server, within the key space.
    let keys = redis.command("DBSIZE");
    let n: u64 = keys.trim().trim_start_matches(':').parse().unwrap_or(0);
    assert!((1..=1000).contains(&n), "{keys}");

    // Batches (redis-benchmark's -P): 16 sent at once, the next 16 when
    // all are answered, so every connection sends a multiple of 16.
    let report = run_echo(
        EchoLoad {
            pipeline: 16,
            batches: true,
            ..redis_load(redis.addr, &["GET key:{key}"], None)
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(!report.has_errors(), "{}", report.render());
    assert!(report.sent > 0 && report.sent % 16 == 0, "{}", report.sent);
    assert!(report.render().contains("pipeline 16 in batches"));

    // A command the server refuses: counted with its text, the run goes on.
    let report = run_echo(
        EchoLoad {
            rate: Rate::PerSecond(400.0),
            ..redis_load(redis.addr, &["NOSUCH {key}", "INCR n:{key}"], None)
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert_eq!(
        report.errors.server,
        report.commands[0].completed,
        "{}",
        report.render()
    );
    assert!(report.errors.server > 0 && report.commands[1].completed > 0);
    let texts: Vec<&String> = report.server_errors.keys().collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].starts_with("ERR unknown command"), "{texts:?}");
}

/// Answers `+OK` to every RESP command; its shard stalls like
/// `echo_server(true)`'s.
fn stalling_resp_server() -> ServerHandle {
    #[derive(Default)]
    struct Ok {
        codec: RespCodec,
    }
    impl Protocol for Ok {
        fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
            while let Ok(Some(_)) = self.codec.decode(data) {
                let _ = t.write(b"+OK\r\n");
            }
        }
    }
    Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .cores(a_core())
        .serve(|_| {
            stall_every_second();
            FnFactory(|_peer| Some(Ok::default()))
        })
        .unwrap()
}

/// The corrected p99 shows the 200 ms stalls; most requests miss them.
fn assert_stalls_show(report: &torsion_cli::load::report::Report) {
    assert!(!report.has_errors(), "{}", report.render());
    assert!(
        report.corrected.p99_us >= 100_000.0,
        "corrected p99 {} µs must show the 200 ms stalls: {}",
        report.corrected.p99_us,
        report.render()
    );
    assert!(
        report.uncorrected.p50_us * 2.0 < report.corrected.p99_us,
        "{}",
        report.render()
    );
}

#[test]
fn coordinated_omission_is_corrected_for_http_and_redis() {
    let http_server = http::start_http_server(
        Server::builder()
            .listen_on("tcp:0:interface=127.0.0.1")
            .unwrap()
            .cores(a_core()),
        HttpConfig::default(),
        |_| {
            stall_every_second();
            Router::new().get("/plaintext", |_| http::text("Hello, World!"))
        },
    )
    .unwrap();
    let url = torsion_cli::load::http_wire::HttpTarget::parse(&format!(
        "http://{}/plaintext",
        http_server.local_addr()
    ))
    .unwrap();
    let spec = torsion_cli::load::http_wire::RequestSpec::default();
    let report = run_echo(
        EchoLoad {
            size: 0,
            http: Some(torsion_cli::load::http_wire::HttpLoad {
                requests: vec![url.request(&spec)],
                accept: Default::default(),
                head_request: false,
            }),
            ..base_load(
                vec![LoadTarget::plain(http_server.local_addr())],
                Rate::PerSecond(1000.0),
                3,
            )
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert_stalls_show(&report);
    http_server.stop().unwrap();

    let resp_server = stalling_resp_server();
    let report = run_echo(
        EchoLoad {
            rate: Rate::PerSecond(1000.0),
            duration: Duration::from_secs(3),
            ..redis_load(resp_server.local_addr(), &["SET k:{key} {data}"], None)
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert_stalls_show(&report);
    resp_server.stop().unwrap();
}

#[test]
fn a_sweep_reports_every_step_and_the_capacity_as_json_and_svg() {
    let server = echo_server(false);
    let target = server.local_addr().to_string();
    let dir = std::env::temp_dir().join(format!("torsion-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, svg) = (dir.join("sweep.json"), dir.join("sweep.svg"));
    // A bound every step holds: the capacity is at least the last step.
    let (code, stdout, stderr) = torsion(&load_args(
        "echo",
        &[
            "--target",
            &target,
            "--connections",
            "4",
            "--rate",
            "200..600/200",
            "--slo",
            "p99=10s",
            "--json",
            json.to_str().unwrap(),
            "--plot",
            svg.to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("rate sweep, 3 steps"), "{stdout}");
    assert!(stdout.contains("capacity: at least 600/s"), "{stdout}");
    for step in ["step 1/3", "step 2/3", "step 3/3"] {
        assert!(stderr.contains(step), "{stderr}");
    }
    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(parsed["steps"].as_array().unwrap().len(), 3);
    assert_eq!(parsed["capacity"], 600.0);
    assert!(
        parsed["steps"][2]["report"]["achieved_rate"]
            .as_f64()
            .unwrap()
            > 500.0
    );
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    // A bound no step holds: the sweep stops at the first step.
    let (code, stdout, _) = torsion(&load_args(
        "echo",
        &[
            "--target",
            &target,
            "--connections",
            "4",
            "--rate",
            "200..600/200",
            "--slo",
            "p50=1ns",
        ],
    ));
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("rate sweep, 1 step,") && stdout.contains("no step held"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    server.stop().unwrap();
}

/// Open loop, 2 connections × 100 requests, a new connection after every
/// 4th request (not after the last: the run is over): checks that all 200
/// were answered with 48 new connections, and returns that count.
fn open_loop_with_a_quarter_churned(
    targets: Vec<LoadTarget>,
    http: torsion_cli::load::http_wire::HttpLoad,
) -> u64 {
    let report = run_echo(
        EchoLoad {
            connections: 2,
            size: 0,
            churn: 0.25,
            http: Some(http),
            ..base_load(targets, Rate::PerSecond(200.0), 1)
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(!report.has_errors(), "{}", report.render());
    assert_eq!(report.completed, 200, "{}", report.render());
    let (_, reconnects) = report.churn.unwrap();
    assert_eq!(reconnects, 48, "{}", report.render());
    reconnects
}

#[test]
fn churn_opens_a_new_connection_for_its_share_of_requests() {
    let server = http_server("tcp:0:interface=127.0.0.1");
    let url = torsion_cli::load::http_wire::HttpTarget::parse(&format!(
        "http://{}/plaintext",
        server.local_addr()
    ))
    .unwrap();
    let http = torsion_cli::load::http_wire::HttpLoad {
        requests: vec![url.request(&Default::default())],
        accept: Default::default(),
        head_request: false,
    };
    let targets = vec![LoadTarget::plain(server.local_addr())];
    let reconnects = open_loop_with_a_quarter_churned(targets.clone(), http.clone());
    assert_eq!(server.total_stats().accepted, 2 + reconnects);
    // Closed loop, a connection per request.
    let report = run_echo(
        EchoLoad {
            connections: 2,
            size: 0,
            churn: 1.0,
            http: Some(http),
            ..base_load(targets, Rate::Max, 1)
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(!report.has_errors(), "{}", report.render());
    let (_, reconnects) = report.churn.unwrap();
    assert!(reconnects + 2 >= report.completed, "{}", report.render());
    assert!(report
        .render()
        .contains("100% of requests on a new connection"));
    server.stop().unwrap();
}

/// A plain HTTP server on threads that answers each request `delay` after
/// it arrived (`200`, empty body), so several requests are in flight on a
/// connection at once; returns its address and how many connections it
/// accepted so far.
fn slow_http_server(delay: Duration) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            count.fetch_add(1, Ordering::SeqCst);
            let mut writer = stream.try_clone().unwrap();
            let (tx, rx) = std::sync::mpsc::channel::<std::time::Instant>();
            std::thread::spawn(move || {
                for arrived in rx {
                    std::thread::sleep(
                        (arrived + delay).saturating_duration_since(std::time::Instant::now()),
                    );
                    if writer
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        if tx.send(std::time::Instant::now()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[test]
fn churn_counts_requests_sent_not_answered_so_requests_in_flight_do_not_change_it() {
    // Each connection has a request due every 10 ms and answers come 15 ms
    // after their request: when the 4th answer arrives the 5th is already
    // sent. A new connection still comes after every 4th request.
    let (addr, accepted) = slow_http_server(Duration::from_millis(15));
    let url = torsion_cli::load::http_wire::HttpTarget::parse(&format!("http://{addr}/")).unwrap();
    let http = torsion_cli::load::http_wire::HttpLoad {
        requests: vec![url.request(&Default::default())],
        accept: Default::default(),
        head_request: false,
    };
    open_loop_with_a_quarter_churned(vec![LoadTarget::plain(addr)], http);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2 + 48);
}

#[test]
fn chat_load_over_several_targets_has_a_row_per_target() {
    use torsion_protocols::chat::{start_chat_server, ChatConfig};
    let server = start_chat_server(
        Server::builder()
            .listen_on("tcp:0:interface=127.0.0.1")
            .unwrap()
            .cores(a_core()),
        ChatConfig::default(),
    )
    .unwrap();
    // The same server twice: every delivery arrives, rows split by target.
    let addr = server.local_addr();
    let report = torsion_cli::load::run_chat(
        torsion_cli::load::chat::ChatLoad {
            targets: vec![addr, addr],
            clients: 6,
            senders: 2,
            rate: 100.0,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            connect_timeout: Duration::from_secs(3),
            drain: Duration::from_secs(2),
            websocket: false,
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(!report.has_errors(), "{}", report.render());
    assert_eq!(report.targets.len(), 2, "{}", report.render());
    let rows: u64 = report.targets.iter().map(|r| r.completed).sum();
    assert_eq!(rows, report.completed);
    assert!(report.targets.iter().all(|r| r.completed > 0));
    server.stop().unwrap();
}

#[test]
fn statuses_add_up_to_the_measured_responses_after_a_warm_up() {
    let server = http_server("tcp:0:interface=127.0.0.1");
    let url = format!("http://{}/plaintext", server.local_addr());
    let (code, stdout, stderr) = torsion(&[
        "load",
        "http",
        "--target",
        &url,
        "--connections",
        "4",
        "--rate",
        "400",
        "--duration",
        "1s",
        "--warmup",
        "1s",
        "--quiet",
        "--shards",
        "1",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("after 1.0 s warm-up"), "{stdout}");
    assert!(stdout.contains("completed          400"), "{stdout}");
    assert!(stdout.contains("2xx 400 ·"), "{stdout}");
    server.stop().unwrap();
}

#[test]
fn a_server_that_answers_garbage_is_counted_by_cause_and_the_run_goes_on() {
    /// Answers every request with a head whose length is not a number.
    struct Garbage;
    impl Protocol for Garbage {
        fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
            let requests = data.windows(4).filter(|w| w == b"\r\n\r\n").count();
            data.clear();
            for _ in 0..requests {
                let _ = t.write(b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n");
            }
        }
    }
    let server = Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .cores(a_core())
        .serve(|_| FnFactory(|_peer| Some(Garbage)))
        .unwrap();
    let url = torsion_cli::load::http_wire::HttpTarget::parse(&format!(
        "http://{}/",
        server.local_addr()
    ))
    .unwrap();
    let report = run_echo(
        EchoLoad {
            connections: 4,
            size: 0,
            http: Some(torsion_cli::load::http_wire::HttpLoad {
                requests: vec![url.request(&Default::default())],
                accept: Default::default(),
                head_request: false,
            }),
            ..base_load(
                vec![LoadTarget::plain(server.local_addr())],
                Rate::PerSecond(400.0),
                1,
            )
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    let e = &report.errors;
    assert_eq!(report.completed, 0, "{}", report.render());
    assert!(
        e.frame > 4,
        "the run went on past the first connections: {}",
        report.render()
    );
    assert_eq!(
        report.frame_errors.keys().collect::<Vec<_>>(),
        ["a malformed Content-Length"]
    );
    // Every request is accounted for: unframeable, abandoned with its
    // connection, or unanswered at the end.
    assert_eq!(
        e.frame + e.abandoned + e.timeout,
        report.sent,
        "{}",
        report.render()
    );
    assert!(report.duration_s >= 0.9);
    server.stop().unwrap();
}

/// A WebSocket echo server on one shard (torsion's own).
fn ws_echo_server() -> ServerHandle {
    use torsion_protocols::websocket::{start_websocket_server, WsConfig, WsHandler};
    start_websocket_server(
        Server::builder()
            .listen_on("tcp:0:interface=127.0.0.1")
            .unwrap()
            .cores(a_core()),
        WsConfig::default(),
        |_shard| WsHandler::echo(),
    )
    .unwrap()
}

#[test]
fn ws_load_checks_every_echo_and_opens_each_connection_with_a_handshake() {
    use torsion_cli::load::ws_wire::WsTarget;
    let server = ws_echo_server();
    let url = WsTarget::parse(&format!("ws://{}/", server.local_addr())).unwrap();
    // Open loop with a quarter of the requests on a new connection: every
    // new connection opens with its own handshake.
    let report = run_echo(
        EchoLoad {
            connections: 2,
            size: 100,
            churn: 0.25,
            websocket: Some(vec![url.clone()]),
            ..base_load(
                vec![LoadTarget::plain(server.local_addr())],
                Rate::PerSecond(200.0),
                1,
            )
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(!report.has_errors(), "{}", report.render());
    assert_eq!(report.completed, 200, "{}", report.render());
    assert_eq!(report.churn.map(|c| c.1), Some(48), "{}", report.render());
    assert_eq!(report.framing, "websocket");
    assert!(
        report.render().starts_with("torsion load ws → "),
        "{}",
        report.render()
    );
    server.stop().unwrap();
    // A server that is not a WebSocket one: each connection's refusal is
    // counted with its cause.
    let http = http_server("tcp:0:interface=127.0.0.1");
    let url = WsTarget::parse(&format!("ws://{}/plaintext", http.local_addr())).unwrap();
    let report = run_echo(
        EchoLoad {
            connections: 1,
            size: 100,
            websocket: Some(vec![url]),
            ..base_load(
                vec![LoadTarget::plain(http.local_addr())],
                Rate::PerSecond(50.0),
                1,
            )
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(report.has_errors());
    assert!(
        report
            .render()
            .contains("the server refused the WebSocket handshake: 200 OK"),
        "{}",
        report.render()
    );
    http.stop().unwrap();
}

#[test]
fn ws_load_against_a_server_nobody_here_wrote_node_ws() {
    use std::io::BufRead;
    use torsion_cli::load::ws_wire::WsTarget;
    let Some(dir) = torsion_tests::ensure_node_packages() else {
        return;
    };
    let mut node = Command::new("node")
        .arg(dir.join("ws_echo_server.js"))
        .arg("0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(node.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("listening ")
        .unwrap()
        .parse()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let report = run_echo(
        EchoLoad {
            connections: 4,
            size: 256,
            websocket: Some(vec![WsTarget::parse(&format!("ws://{addr}/")).unwrap()]),
            ..base_load(vec![LoadTarget::plain(addr)], Rate::Max, 1)
        },
        &a_core(),
        no_stop(),
        &Outputs::default(),
    );
    let _ = node.kill();
    let _ = node.wait();
    let report = report.unwrap();
    assert!(!report.has_errors(), "{}", report.render());
    assert!(report.completed > 0, "{}", report.render());
}

#[test]
fn chat_load_over_websocket_reaches_every_client_and_mixes_with_line_clients() {
    use torsion_protocols::chat::{start_chat_server, ChatConfig};
    let server = start_chat_server(
        torsion_tests::two_loopback_listeners().cores(a_core()),
        ChatConfig::default(),
    )
    .unwrap();
    let ws = server.local_addrs()[1];
    let chat = |targets, websocket| torsion_cli::load::chat::ChatLoad {
        targets,
        clients: 8,
        senders: 2,
        rate: 100.0,
        duration: Duration::from_secs(1),
        warmup: Duration::ZERO,
        connect_timeout: Duration::from_secs(3),
        drain: Duration::from_secs(2),
        websocket,
    };
    let report = torsion_cli::load::run_chat(
        chat(vec![ws], true),
        &a_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(!report.has_errors(), "{}", report.render());
    // 100 messages, each due at the 7 other clients.
    assert_eq!(report.completed, 700, "{}", report.render());
    // A line client on the line listener is in the same room: the load's
    // WebSocket clients' lines reach it too.
    let mut liner = torsion_tests::connect(server.local_addr());
    let mut reader = std::io::BufReader::new(liner.try_clone().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    std::io::Write::write_all(&mut liner, b"watcher\r\n").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert_eq!(line, "Welcome, watcher!\r\n");
    let runner = std::thread::spawn(move || {
        torsion_cli::load::run_chat(
            chat(vec![ws], true),
            &a_core(),
            no_stop(),
            &Outputs::default(),
        )
    });
    line.clear();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert!(
        line.starts_with("<load") && line.contains("> m "),
        "{line:?}"
    );
    let report = runner.join().unwrap().unwrap();
    // The watcher is not one of the load's clients: they still get all theirs.
    assert!(!report.has_errors(), "{}", report.render());
    server.stop().unwrap();
}
