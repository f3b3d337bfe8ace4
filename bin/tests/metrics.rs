//! `torsion serve … --metrics`: the Prometheus endpoint, against real
//! clients and the real tools: `promtool check metrics` (Debian's
//! `prometheus` package, installed when missing and root) and the Python
//! `prometheus_client` parser (pip, `tests/interop/requirements-metrics.txt`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use torsion_tests::{
    ensure_program, ensure_python_module, http_get as get, wait_until, ServerProcess, PATIENCE,
};

/// A `torsion serve` with `--metrics`, and where its scrapes go.
struct Served {
    server: ServerProcess,
    metrics: SocketAddr,
}

/// Starts `torsion serve <args> --metrics tcp:0:interface=127.0.0.1` and
/// reads its two stdout lines (listening, then metrics).
fn serve(args: &[&str]) -> Served {
    serve_metrics_on(args, "tcp:0:interface=127.0.0.1", "http").0
}

/// Starts `torsion serve <args> --metrics <endpoint>`; the served server
/// and the metrics line's URL.
fn serve_metrics_on(args: &[&str], endpoint: &str, scheme: &str) -> (Served, String) {
    let (child, lines) = torsion_tests::spawn_reading_lines(
        Command::new(env!("CARGO_BIN_EXE_torsion"))
            .env("RUST_LOG", "warn")
            .arg("serve")
            .args(args)
            .args(["--metrics", endpoint]),
        2,
    );
    let (addr, shards) = torsion_tests::parse_listening_line(&lines[0]);
    let (url, metrics) = torsion_tests::parse_metrics_line(&lines[1], scheme);
    let served = Served {
        server: ServerProcess {
            child,
            addr,
            shards,
        },
        metrics,
    };
    (served, url)
}

fn scrape(served: &Served) -> String {
    let (status, headers, body) = get(served.metrics, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{headers}"
    );
    body
}

/// The sum over every sample of `name` whose labels include all of `with`.
fn total(text: &str, name: &str, with: &[&str]) -> f64 {
    torsion_tests::metric_total(text, name, with)
}

/// Runs `cmd` with `text` on its stdin; its output.
fn fed(cmd: &mut Command, text: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// `promtool check metrics` reads the text from stdin and lints it.
fn promtool_accepts(text: &str) {
    if !ensure_program("promtool", "prometheus") {
        return;
    }
    let out = fed(Command::new("promtool").args(["check", "metrics"]), text);
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Python's `prometheus_client` parser reads every family, and the names
/// and types we expect are there.
fn python_parses(text: &str, expect: &[(&str, &str)]) {
    if !ensure_python_module("prometheus_client", "requirements-metrics.txt") {
        return;
    }
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    print(f.name, f.type, len(f.samples))
"#;
    let out = fed(Command::new("python3").args(["-c", script]), text);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "prometheus_client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, kind) in expect {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{name} {kind} "))),
            "{name} ({kind}) not parsed from the scrape: {stdout}"
        );
    }
}

fn line_reader(stream: &TcpStream) -> BufReader<TcpStream> {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    BufReader::new(stream.try_clone().unwrap())
}

fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line
}

/// Connects a chat client and registers `name`.
fn chatter(addr: SocketAddr, name: &str) -> (TcpStream, BufReader<TcpStream>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut r = line_reader(&s);
    assert_eq!(read_line(&mut r), "What's your name?\r\n");
    writeln!(s, "{name}").unwrap();
    assert_eq!(read_line(&mut r), format!("Welcome, {name}!\r\n"));
    (s, r)
}

#[test]
fn chat_counters_move_as_traffic_flows_and_the_tools_accept_the_scrape() {
    let served = serve(&[
        "chat",
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--shards",
        "2",
    ]);
    let before = scrape(&served);
    assert_eq!(total(&before, "torsion_chat_users", &[]), 0.0);
    assert_eq!(total(&before, "torsion_shard_info", &[]), 2.0);

    let (mut alice, alice_reader) = chatter(served.server.addr, "alice");
    let (_bob, mut rb) = chatter(served.server.addr, "bob");
    let (_carol, mut rc) = chatter(served.server.addr, "carol");
    for i in 0..2 {
        writeln!(alice, "hello {i}").unwrap();
        assert_eq!(read_line(&mut rb), format!("<alice> hello {i}\r\n"));
        assert_eq!(read_line(&mut rc), format!("<alice> hello {i}\r\n"));
    }

    let text = scrape(&served);
    assert_eq!(total(&text, "torsion_chat_users", &[]), 3.0);
    assert_eq!(total(&text, "torsion_chat_clients", &[]), 3.0);
    assert_eq!(total(&text, "torsion_chat_messages_total", &[]), 2.0);
    assert_eq!(total(&text, "torsion_chat_deliveries_total", &[]), 4.0);
    assert_eq!(total(&text, "torsion_connections_accepted_total", &[]), 3.0);
    assert_eq!(total(&text, "torsion_connections_open", &[]), 3.0);
    assert!(total(&text, "torsion_received_bytes_total", &[]) > 0.0);
    assert!(total(&text, "torsion_sent_bytes_total", &[]) > 0.0);
    // Every name claim and every line crosses the bus to the other shard.
    assert!(total(&text, "torsion_bus_messages_sent_total", &[r#"bus="chat""#]) >= 2.0);
    assert_eq!(
        total(&text, "torsion_bus_messages_sent_total", &[]),
        total(&text, "torsion_bus_messages_received_total", &[])
            + total(&text, "torsion_bus_inbox_depth", &[]),
        "what was sent was received or is waiting"
    );

    drop((alice, alice_reader));
    assert!(
        wait_until(|| total(&scrape(&served), "torsion_chat_users", &[]) == 2.0),
        "a leaving user is counted out"
    );
    let text = scrape(&served);
    assert_eq!(
        total(
            &text,
            "torsion_connections_closed_total",
            &[r#"reason="closed""#]
        ),
        1.0
    );
    // The reactor-lag probe runs on every shard.
    assert!(wait_until(|| {
        let text = scrape(&served);
        (0..2).all(|s| {
            total(
                &text,
                "torsion_reactor_lag_seconds_count",
                &[&format!(r#"shard="{s}""#)],
            ) >= 1.0
        })
    }));

    let text = scrape(&served);
    promtool_accepts(&text);
    python_parses(
        &text,
        &[
            ("torsion_connections_accepted", "counter"),
            ("torsion_connections_open", "gauge"),
            ("torsion_reactor_lag_seconds", "histogram"),
            ("torsion_chat_deliveries", "counter"),
            ("torsion_bus_inbox_depth", "gauge"),
            ("torsion_blocking_pool_queue_depth", "gauge"),
        ],
    );
}

#[test]
fn http_responses_are_counted_by_class_and_timed() {
    let served = serve(&[
        "http",
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--shards",
        "1",
    ]);
    for _ in 0..5 {
        let (status, _, body) = get(served.server.addr, "/plaintext");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, "Hello, World!");
    }
    for _ in 0..2 {
        let (status, _, _) = get(served.server.addr, "/no-such-page");
        assert_eq!(status, "HTTP/1.1 404 Not Found");
    }
    // A malformed request is refused (400) and counted, not timed.
    let mut bad = TcpStream::connect(served.server.addr).unwrap();
    bad.write_all(b"GARBAGE\r\n\r\n").unwrap();
    bad.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut reply = String::new();
    let _ = bad.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");

    // Counted when written; a scrape right after may race the last
    // response's count, so wait for it.
    assert!(wait_until(|| {
        let text = scrape(&served);
        total(&text, "torsion_http_responses_total", &[r#"code="4xx""#]) == 3.0
    }));
    let text = scrape(&served);
    assert_eq!(
        total(&text, "torsion_http_responses_total", &[r#"code="2xx""#]),
        5.0
    );
    assert_eq!(
        total(&text, "torsion_http_responses_total", &[r#"code="5xx""#]),
        0.0
    );
    // Timed requests reach the histogram within a publish interval.
    assert!(wait_until(|| {
        total(
            &scrape(&served),
            "torsion_http_request_duration_seconds_count",
            &[],
        ) == 7.0
    }));
    let text = scrape(&served);
    assert_eq!(
        total(
            &text,
            "torsion_http_request_duration_seconds_bucket",
            &[r#"le="+Inf""#]
        ),
        7.0
    );
    promtool_accepts(&text);
    python_parses(
        &text,
        &[
            ("torsion_http_responses", "counter"),
            ("torsion_http_request_duration_seconds", "histogram"),
        ],
    );

    // The metrics endpoint answers /metrics only.
    let (status, _, _) = get(served.metrics, "/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[test]
fn echo_over_udp_has_metrics_too_and_a_datagram_metrics_endpoint_is_refused() {
    let served = serve(&[
        "echo",
        "--listen",
        "udp:0:interface=127.0.0.1",
        "--shards",
        "1",
    ]);
    let text = scrape(&served);
    assert_eq!(total(&text, "torsion_shard_info", &[]), 1.0);
    promtool_accepts(&text);

    let out = Command::new(env!("CARGO_BIN_EXE_torsion"))
        .args(["serve", "echo", "--listen", "tcp:0:interface=127.0.0.1"])
        .args(["--metrics", "udp:0:interface=127.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("metrics are served over HTTP: use a tcp:, tcp6: or tls: endpoint"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_torsion"))
        .args(["serve", "echo", "--listen", "tcp:0:interface=127.0.0.1"])
        .args(["--metrics", "tcp:notaport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad --metrics \"tcp:notaport\""));

    // A taken metrics port fails the start before any line claims the
    // server is up.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_torsion"))
        .args(["serve", "echo", "--listen", "tcp:0:interface=127.0.0.1"])
        .args(["--metrics", &format!("tcp:{port}:interface=127.0.0.1")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "no listening line"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot serve --metrics") && err.contains("address already in use"),
        "{err}"
    );
}

#[test]
fn metrics_are_served_over_tls_too() {
    if !ensure_program("curl", "curl") {
        return;
    }
    let certs = torsion_tests::Certs::new("metrics");
    let (served, url) = serve_metrics_on(
        &[
            "echo",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--shards",
            "1",
        ],
        &certs.endpoint(&certs.key),
        "https",
    );
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let out = Command::new("curl")
        .args(["-s", "--fail", "--cacert"])
        .arg(&certs.cert)
        .arg(&url)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {url}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(total(&text, "torsion_shard_info", &[]), 1.0);
    drop(served);
}
