//! The load generator against servers that misbehave on purpose: a server
//! that stalls (coordinated omission must show), one that corrupts, a chat
//! server that drops and reorders, one that hangs up; outputs that must
//! parse back; and bad input.

use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use torsion::{FnFactory, Protocol, Server, ServerHandle, Transport};
use torsion_cli::load::chat::ChatLoad;
use torsion_cli::load::echo::{EchoLoad, Rate};
use torsion_cli::load::report::Report;
use torsion_cli::load::target::LoadTarget;
use torsion_cli::load::{run_chat, run_echo, Outputs};
use torsion_protocols::Framing;

fn any_core() -> Vec<usize> {
    vec![torsion::cores::allowed_cores().unwrap()[0]]
}

fn echo_load(server: &ServerHandle, rate: Rate, secs: u64) -> EchoLoad {
    EchoLoad {
        targets: vec![LoadTarget::plain(server.local_addr())],
        connections: 4,
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

fn no_stop() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

fn one_shard_server<P, F>(make: F) -> ServerHandle
where
    P: Protocol,
    F: Fn() -> P + Clone + Send + Sync + 'static,
{
    Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .cores(any_core())
        .serve(move |_| {
            let make = make.clone();
            FnFactory(move |_peer| Some(make()))
        })
        .unwrap()
}

/// Echoes (its shard stalls: see `stalling_server`).
struct StallingEcho;
impl Protocol for StallingEcho {
    fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
        let _ = t.write_bytes(data.split().freeze());
    }
}

fn stalling_server() -> ServerHandle {
    Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .cores(any_core())
        .serve(|_| {
            // The stall runs on the shard's clock, independent of traffic.
            let lc = torsion::Clock::real()
                .looping_call(Duration::from_secs(1), || {
                    std::thread::sleep(Duration::from_millis(200))
                })
                .unwrap();
            std::mem::forget(lc);
            FnFactory(|_peer| Some(StallingEcho))
        })
        .unwrap()
}

#[test]
fn a_stalling_server_shows_in_the_corrected_latency() {
    let server = stalling_server();
    let report = run_echo(
        echo_load(&server, Rate::PerSecond(1000.0), 3),
        &[1 % torsion::cores::allowed_cores().unwrap().len()],
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    println!("{}", report.render());
    assert!(!report.has_errors(), "{:?}", report.errors);
    assert!(
        report.corrected.p99_us >= 100_000.0,
        "corrected p99 {} µs must show the 200 ms stalls",
        report.corrected.p99_us
    );
    // Most requests miss the stalls: their latency stays far below the
    // stalls' (compared with the run's own figure, not a fixed speed).
    assert!(
        report.uncorrected.p50_us * 2.0 < report.corrected.p99_us,
        "uncorrected p50 {} µs stays well under the corrected p99 {} µs",
        report.uncorrected.p50_us,
        report.corrected.p99_us
    );
    server.stop().unwrap();
}

/// Echoes, but flips one byte in every 50th chunk.
#[derive(Clone, Default)]
struct CorruptingEcho {
    chunks: u64,
}
impl Protocol for CorruptingEcho {
    fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
        self.chunks += 1;
        let mut d = data.split();
        if self.chunks % 50 == 0 {
            let last = d.len() - 1;
            d[last] ^= 0x20;
        }
        let _ = t.write_bytes(d.freeze());
    }
}

#[test]
fn byte_for_byte_checks_catch_a_corrupting_server() {
    let server = one_shard_server(CorruptingEcho::default);
    let report = run_echo(
        echo_load(&server, Rate::Max, 1),
        &any_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(report.errors.mismatch > 0, "{:?}", report.errors);
    assert!(report.has_errors());
    server.stop().unwrap();
}

/// Echoes 50 chunks, then hangs up.
#[derive(Clone, Default)]
struct HangUp {
    chunks: u64,
}
impl Protocol for HangUp {
    fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
        self.chunks += 1;
        if self.chunks > 50 {
            data.clear();
            t.close();
            return;
        }
        let _ = t.write_bytes(data.split().freeze());
    }
}

#[test]
fn a_server_that_hangs_up_is_counted_and_the_run_goes_on_over_new_connections() {
    let server = one_shard_server(HangUp::default);
    let report = run_echo(
        echo_load(&server, Rate::PerSecond(2000.0), 1),
        &any_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    let e = &report.errors;
    assert!(e.closed + e.reset + e.io > 0, "{e:?}");
    // Four connections answer at most 50 reads each before the hang-up:
    // more than that means new connections carried the run on.
    assert!(report.completed > 4 * 50, "{}", report.render());
    assert!(report.duration_s >= 0.9, "{}", report.render());
    // Nothing lost silently: every request measured is answered or counted.
    assert!(
        report.completed + e.total() >= report.sent,
        "{}",
        report.render()
    );
    server.stop().unwrap();
}

/// A chat look-alike on one shard that drops message 5 and swaps 10 and 11.
struct FaultyChat {
    room: Rc<RefCell<FaultyRoom>>,
    named: Option<String>,
    buf: Vec<u8>,
}

#[derive(Default)]
struct FaultyRoom {
    members: Vec<(u16, Transport)>,
    count: u64,
    held: Option<(u16, String)>,
}

impl FaultyRoom {
    fn deliver(&self, from: u16, line: &str) {
        for (port, t) in &self.members {
            if *port != from {
                let _ = t.write(line.as_bytes());
            }
        }
    }
}

impl Protocol for FaultyChat {
    fn connection_made(&mut self, t: &Transport) {
        t.write(b"What's your name?\r\n").unwrap();
    }
    fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
        self.buf.extend_from_slice(&data.split());
        while let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8(self.buf.drain(..i + 2).collect()).unwrap();
            let line = line.trim_end();
            let port = t.peer_addr().port();
            match &self.named {
                None => {
                    self.named = Some(line.to_string());
                    t.write(format!("Welcome, {line}!\r\n").as_bytes()).unwrap();
                    self.room.borrow_mut().members.push((port, t.clone()));
                }
                Some(name) => {
                    let out = format!("<{name}> {line}\r\n");
                    let mut room = self.room.borrow_mut();
                    room.count += 1;
                    match room.count {
                        5 => {} // dropped
                        10 => room.held = Some((port, out)),
                        11 => {
                            room.deliver(port, &out);
                            if let Some((p, held)) = room.held.take() {
                                room.deliver(p, &held);
                            }
                        }
                        _ => room.deliver(port, &out),
                    }
                }
            }
        }
    }
}

#[test]
fn chat_mode_detects_a_dropped_and_a_reordered_message() {
    let server = Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .cores(any_core())
        .serve(|_| {
            let room = Rc::new(RefCell::new(FaultyRoom::default()));
            FnFactory(move |_peer| {
                Some(FaultyChat {
                    room: room.clone(),
                    named: None,
                    buf: Vec::new(),
                })
            })
        })
        .unwrap();
    let report = run_chat(
        ChatLoad {
            targets: vec![server.local_addr()],
            clients: 3,
            senders: 1,
            rate: 50.0,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            connect_timeout: Duration::from_secs(3),
            drain: Duration::from_secs(1),
            websocket: false,
        },
        &any_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    println!("{}", report.render());
    let chat = report.chat.as_ref().unwrap();
    assert_eq!(chat.deliveries_expected, chat.messages_sent * 2);
    assert_eq!(report.errors.lost, 2, "message 5 lost at both receivers");
    assert_eq!(
        report.errors.reordered, 2,
        "message 10 late at both receivers"
    );
    assert!(report.has_errors());
    server.stop().unwrap();
}

#[test]
fn json_and_interval_log_parse_back_and_agree_with_the_report() {
    let server = one_shard_server(|| torsion_protocols::Echo);
    let dir = std::env::temp_dir().join(format!("torsion-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Outputs {
        json: Some(dir.join("r.json")),
        hdr_log: Some(dir.join("r.hlog")),
        plot: Some(dir.join("r.svg")),
        live: false,
    };
    let report = run_echo(
        echo_load(&server, Rate::PerSecond(2000.0), 2),
        &any_core(),
        no_stop(),
        &out,
    )
    .unwrap();
    assert!(!report.has_errors(), "{:?}", report.errors);

    let parsed: Report =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(parsed, report);

    let log = std::fs::read(dir.join("r.hlog")).unwrap();
    let mut total =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
    let mut intervals = 0;
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(&log) {
        if let LogEntry::Interval(iv) = entry.unwrap() {
            let bytes = base64_decode(iv.encoded_histogram());
            let h: hdrhistogram::Histogram<u64> = de.deserialize(&mut &bytes[..]).unwrap();
            total.add(&h).unwrap();
            intervals += 1;
        }
    }
    assert_eq!(intervals, 2, "one interval per second");
    assert_eq!(total.len(), report.corrected.count);
    let p99 = total.value_at_quantile(0.99) as f64 / 1000.0;
    assert!((p99 - report.corrected.p99_us).abs() <= report.corrected.p99_us * 0.01 + 1.0);
    let svg = std::fs::read_to_string(dir.join("r.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("percentile") && svg.contains("latency (µs)"));
    std::fs::remove_dir_all(&dir).unwrap();
    server.stop().unwrap();
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        if c == b'=' {
            break;
        }
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn torsion_cmd(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_torsion"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_load_input_is_refused_before_anything_starts() {
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let target = format!("127.0.0.1:{closed_port}");
    // Each case: the command line (split at spaces) and what stderr must say.
    let cases: Vec<(String, &str)> = vec![
        (
            format!("load echo --target {target} --duration 1s"),
            "cannot connect",
        ),
        (
            "load echo --target 127.0.0.1:7 --size 0".to_string(),
            "must be greater than zero",
        ),
        (
            "load echo --target 127.0.0.1:7 --size 10".to_string(),
            "too small",
        ),
        (
            "load echo --target 127.0.0.1:7 --rate 0".to_string(),
            "invalid rate",
        ),
        (
            "load echo --target 127.0.0.1:7 --rate fast".to_string(),
            "invalid rate",
        ),
        (
            "load echo --target 127.0.0.1:7 --duration 0s".to_string(),
            "must be at least 1ms",
        ),
        (
            "load echo --target 127.0.0.1:7 --duration 18446744073709551615s".to_string(),
            "out of range (1ms to 365d)",
        ),
        (
            "load echo --target 127.0.0.1:7 --framing int8 --size 300".to_string(),
            "over the int8 framing's limit",
        ),
        (
            "load echo --target 127.0.0.1:7 --connections 0".to_string(),
            "0 is not allowed: must be a whole number, at least 1",
        ),
        ("load echo --target nowhere".to_string(), "invalid target"),
        (
            "load chat --target 127.0.0.1:7 --senders 0".to_string(),
            "0 is not allowed: must be a whole number, at least 1",
        ),
        (
            "load chat --target 127.0.0.1:7 --senders 200".to_string(),
            "--senders must be between 1",
        ),
        (
            "load chat --target 127.0.0.1:7 --clients 1".to_string(),
            "--clients must be at least 2",
        ),
        (
            "load http --target 127.0.0.1:8080".to_string(),
            "expected http://HOST:PORT/PATH",
        ),
        (
            "load http --target https://127.0.0.1:8443/".to_string(),
            "https needs exactly one of --ca FILE (verify) or --insecure",
        ),
        (
            "load http --target http://127.0.0.1:99999/".to_string(),
            "invalid URL",
        ),
        (
            "load http --target http://127.0.0.1:7/ -H NoColon".to_string(),
            "no colon",
        ),
        (
            "load http --target http://127.0.0.1:7/ --body-file /nonexistent/body".to_string(),
            "cannot read --body-file /nonexistent/body",
        ),
        (
            "load http --target http://127.0.0.1:7/ --accept 7xx".to_string(),
            "invalid --accept entry",
        ),
        (
            "load http --target http://127.0.0.1:7/ --rate 0..10k/1k".to_string(),
            "invalid sweep",
        ),
        (
            "load http --target http://127.0.0.1:7/ --rate 20k..10k/1k".to_string(),
            "TO is below FROM",
        ),
        (
            "load http --target http://127.0.0.1:7/ --slo p99=5ms".to_string(),
            "--slo goes with a rate sweep",
        ),
        (
            "load http --target http://127.0.0.1:7/ --rate 1k..2k/1k --slo p99".to_string(),
            "invalid --slo",
        ),
        (
            "load http --target http://127.0.0.1:7/ --target http://127.0.0.1:8/ --weights 1"
                .to_string(),
            "one per --target",
        ),
        (
            "load redis --target 127.0.0.1:7 --command GET_{nope}".to_string(),
            "unknown placeholder {nope}",
        ),
        (
            "load redis --target 127.0.0.1:7 --command GET --command SET --ratio 1".to_string(),
            "one per --command",
        ),
        (
            "load redis --target 127.0.0.1:7 --distribution zipf:0".to_string(),
            "invalid --distribution",
        ),
        (
            "load redis --target 127.0.0.1:7 --keys 0".to_string(),
            "--keys must be at least 1",
        ),
        (
            "load redis --target 127.0.0.1:7 --rate 100 --pipeline-batches".to_string(),
            "--pipeline-batches goes with the closed loop",
        ),
        (
            "load http --target http://127.0.0.1:7/ --churn 2".to_string(),
            "must be a share between 0 and 1",
        ),
        (
            format!("load http --target http://{target}/ --duration 1s"),
            "cannot connect",
        ),
    ];
    for (line, want) in cases {
        let args: Vec<&str> = line.split_whitespace().collect();
        let (code, stderr) = torsion_cmd(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn load_exits_zero_on_a_clean_run_and_prints_the_report() {
    let server = one_shard_server(|| torsion_protocols::Echo);
    let addr = server.local_addr().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_torsion"))
        .args(format!("load echo --target {addr} --connections 2 --rate 500 --duration 1s --warmup 0s --quiet").split_whitespace())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("errors: none") && stdout.contains("corrected"),
        "{stdout}"
    );
    server.stop().unwrap();
}

#[test]
fn ctrl_c_ends_the_run_early_and_prints_the_results_so_far() {
    let server = one_shard_server(|| torsion_protocols::Echo);
    let addr = server.local_addr().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_torsion"))
        .args(format!("load echo --target {addr} --connections 2 --rate 1000 --duration 60s --warmup 0s --quiet").split_whitespace())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt a run under way: both connections open and echoing (so the
    // generator is past its start-up and has something to report).
    assert!(torsion_tests::wait_until(|| {
        let t = server.total_stats();
        t.open_connections == 2 && t.bytes_out > 0
    }));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped well before 60 s"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("completed") && stdout.contains("corrected"),
        "{stdout}"
    );
    let measured: f64 = stdout
        .split(" s measured")
        .next()
        .and_then(|l| l.rsplit(", ").next())
        .and_then(|n| n.parse().ok())
        .expect("measured seconds in the report");
    assert!(
        measured < 10.0,
        "reported the time actually measured: {measured}"
    );
    server.stop().unwrap();
}

/// Echoes datagrams, dropping every tenth.
#[derive(Default)]
struct Dropper(u64);

impl torsion::DatagramProtocol for Dropper {
    fn datagram_received(
        &mut self,
        t: &torsion::DatagramTransport,
        data: &[u8],
        from: std::net::SocketAddr,
    ) {
        self.0 += 1;
        if self.0 % 10 != 0 {
            let _ = t.write_to(data, from);
        }
    }
}

/// UDP datagrams this machine's kernel dropped on receipt so far (all
/// sockets: `InErrors` of `/proc/net/snmp`, which includes full receive
/// buffers).
fn kernel_udp_drops() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "InErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn udp_load_counts_lost_datagrams() {
    let kernel_drops_before = kernel_udp_drops();
    let server = Server::builder()
        .listen_on("udp:0:interface=127.0.0.1")
        .unwrap()
        .cores(any_core())
        .serve_datagram(|_| Dropper::default())
        .unwrap();
    let report = run_echo(
        EchoLoad {
            udp: true,
            ..echo_load(&server, Rate::PerSecond(1000.0), 1)
        },
        &any_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    let sent = report.sent as f64;
    let lost = report.errors.lost as f64;
    // Every datagram the server dropped is counted lost; anything more is
    // loss the kernel reports (a receive buffer that overflowed while a
    // busy CI machine held the shard off its core: UDP's own behaviour).
    let kernel_drops = (kernel_udp_drops() - kernel_drops_before) as f64;
    assert!(
        lost >= sent / 10.0 - 2.0 && lost <= sent / 10.0 + 2.0 + kernel_drops,
        "every tenth datagram dropped: lost {lost} of {sent} ({kernel_drops} dropped by the kernel meanwhile)"
    );
    assert_eq!(report.errors.mismatch, 0);
    assert_eq!(report.completed + report.errors.lost, report.sent);
    server.stop().unwrap();
}

#[test]
fn tls_load_verifies_the_server_and_checks_every_echo() {
    let certs = torsion_tests::Certs::new("load");
    let (dir, cert) = (&certs.dir, &certs.cert);
    let server = Server::builder()
        .listen_on(&certs.endpoint(&certs.key))
        .unwrap()
        .cores(any_core())
        .serve(|_| torsion_protocols::EchoFactory)
        .unwrap();
    let addr = server.local_addr().to_string();
    let cert_arg = cert.display().to_string();
    let stdout = torsion_tests::run_ok(
        Command::new(env!("CARGO_BIN_EXE_torsion"))
            .args(format!("load echo --tls --ca {cert_arg} --target {addr} --connections 4 --rate 500 --duration 1s --warmup 0s --quiet").split_whitespace()),
    );
    assert!(stdout.contains("errors: none"), "{stdout}");
    // A certificate the client does not trust: a clear error, not a hang.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let untrusted = dir.join("other.pem");
    std::fs::write(&untrusted, other.cert.pem()).unwrap();
    let untrusted_arg = untrusted.display().to_string();
    let (code, stderr) = torsion_cmd(&[
        "load",
        "echo",
        "--tls",
        "--ca",
        &untrusted_arg,
        "--target",
        &addr,
        "--duration",
        "1s",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("TLS handshake failed"), "{stderr}");
    assert!(
        stderr.contains("the server's certificate was refused: its signature does not verify"),
        "{stderr}"
    );
    server.stop().unwrap();
}

/// What `openssl req -x509` makes by default is a CA certificate: rustls
/// refuses it as a server's, and the user is told so in a sentence, with
/// the way out; `torsion cert` makes a pair that works.
#[test]
fn a_ca_certificate_is_explained_and_torsion_cert_makes_one_that_works() {
    let dir = std::env::temp_dir().join(format!("torsion-load-ca-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = params.self_signed(&key).unwrap();
    let (ca_cert, ca_key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    std::fs::write(&ca_cert, ca.pem()).unwrap();
    std::fs::write(&ca_key, key.serialize_pem()).unwrap();
    let tls_server = |cert: &std::path::Path, key: &std::path::Path| {
        Server::builder()
            .listen_on(&format!(
                "tls:0:interface=127.0.0.1:certKey={}:privateKey={}",
                cert.display(),
                key.display()
            ))
            .unwrap()
            .cores(any_core())
            .serve(|_| torsion_protocols::EchoFactory)
            .unwrap()
    };
    let load = |addr: &str, ca: &std::path::Path| {
        torsion_cmd(&[
            "load",
            "echo",
            "--tls",
            "--ca",
            &ca.display().to_string(),
            "--target",
            addr,
            "--connections",
            "2",
            "--rate",
            "200",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--quiet",
        ])
    };
    let server = tls_server(&ca_cert, &ca_key);
    let (code, stderr) = load(&server.local_addr().to_string(), &ca_cert);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is a CA certificate") && stderr.contains("torsion cert"),
        "{stderr}"
    );
    server.stop().unwrap();

    let out_dir = dir.join("made");
    let (code, stderr) = torsion_cmd(&["cert", "--out", &out_dir.display().to_string()]);
    assert_eq!(code, 0, "{stderr}");
    let (cert, key) = (out_dir.join("cert.pem"), out_dir.join("key.pem"));
    let server = tls_server(&cert, &key);
    let (code, stderr) = load(&server.local_addr().to_string(), &cert);
    assert_eq!(code, 0, "{stderr}");
    server.stop().unwrap();
    // It does not overwrite without --force.
    let (code, stderr) = torsion_cmd(&["cert", "--out", &out_dir.display().to_string()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("exists (use --force"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTP server on one shard: `/plaintext`, and `/fail` answering 500.
fn http_server() -> ServerHandle {
    use torsion_protocols::http::{self, HttpConfig, Router, StatusCode};
    http::start_http_server(
        Server::builder()
            .listen_on("tcp:0:interface=127.0.0.1")
            .unwrap()
            .cores(any_core()),
        HttpConfig::default(),
        |_| {
            Router::new()
                .get("/plaintext", |_| http::text("Hello, World!"))
                .get("/fail", |_| {
                    http::status_page(StatusCode::INTERNAL_SERVER_ERROR)
                })
        },
    )
    .unwrap()
}

fn http_load(server: &ServerHandle, path: &str, rate: Rate, pipeline: usize) -> EchoLoad {
    use torsion_cli::load::http_wire::{Accept, HttpLoad, HttpTarget, RequestSpec};
    let url = HttpTarget::parse(&format!("http://{}{path}", server.local_addr())).unwrap();
    EchoLoad {
        pipeline,
        size: 0,
        http: Some(HttpLoad {
            requests: vec![url.request(&RequestSpec::default())],
            accept: Accept::default(),
            head_request: false,
        }),
        ..echo_load(server, rate, 1)
    }
}

#[test]
fn http_load_checks_every_response_open_and_closed_loop() {
    let server = http_server();
    for (rate, pipeline) in [(Rate::PerSecond(2000.0), 1), (Rate::Max, 1), (Rate::Max, 8)] {
        let report = run_echo(
            http_load(&server, "/plaintext", rate, pipeline),
            &any_core(),
            no_stop(),
            &Outputs::default(),
        )
        .unwrap();
        assert!(
            !report.has_errors(),
            "{rate:?} ×{pipeline}: {}",
            report.render()
        );
        assert!(
            report.completed > 0 && report.completed == report.sent,
            "{}",
            report.render()
        );
        assert_eq!(report.mode, "http");
    }
    // A server that answers 500: every response is timed (it is an
    // answer) and counted as an error by its status.
    let report = run_echo(
        http_load(&server, "/fail", Rate::PerSecond(500.0), 1),
        &any_core(),
        no_stop(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(report.has_errors());
    let statuses = report.statuses.unwrap();
    assert!(
        report.errors.status > 0
            && report.errors.status == statuses[4]
            && report.completed == statuses[4]
            && statuses[1] == 0,
        "{}",
        report.render()
    );
    assert!(report.render().contains("5xx"), "{}", report.render());
    server.stop().unwrap();
}

#[test]
fn load_http_prints_its_report_from_the_command_line() {
    let server = http_server();
    let url = format!("http://{}/plaintext", server.local_addr());
    let out = Command::new(env!("CARGO_BIN_EXE_torsion"))
        .args([
            "load",
            "http",
            "--target",
            &url,
            "--connections",
            "2",
            "--rate",
            "500",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--quiet",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with(&format!("torsion load http → {url}: 2 connections")),
        "{stdout}"
    );
    assert!(stdout.contains("errors: none"), "{stdout}");
    server.stop().unwrap();
}
