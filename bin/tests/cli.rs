//! The `torsion` binary as a user runs it: the listening line, signals,
//! start-up errors, and descriptors after resets (read from /proc).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use torsion_tests::PATIENCE;

fn torsion() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_torsion"));
    c.env("RUST_LOG", "warn");
    c
}

type Running = torsion_tests::ServerProcess;

/// Starts `torsion serve …` and parses its one listening line.
fn start(cmd: &mut Command) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn torsion");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(|l| l.ok());
        let _ = tx.send(first);
        // Anything more on stdout is a bug: the line must be the only one.
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        assert!(rest.is_empty(), "extra stdout lines: {rest:?}");
    });
    let line = rx
        .recv_timeout(PATIENCE)
        .expect("no listening line in time")
        .expect("stdout closed before the listening line");
    let (addr, shards) = torsion_tests::parse_listening_line(&line);
    Running {
        child,
        addr,
        shards,
    }
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "torsion did not exit in time");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0);
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn failing(args: &[&str]) -> (i32, String) {
    let out = torsion().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_echo_prints_one_line_echoes_and_exits_zero_on_sigterm() {
    let mut server =
        start(torsion().args(["serve", "echo", "--listen", "tcp:0:interface=127.0.0.1"]));
    assert!(server.shards >= 1);
    let mut c = client(server.addr);
    c.write_all(b"hello torsion").unwrap();
    let mut buf = [0u8; 13];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello torsion");

    signal(&server.child, libc::SIGTERM);
    let status = wait_exit(&mut server.child);
    assert!(status.success(), "exit status {status:?}");
    // The open connection was closed by the drain, not left hanging.
    let mut rest = Vec::new();
    let n = c.read_to_end(&mut rest).unwrap_or(0);
    assert_eq!(n, 0);
    assert!(TcpStream::connect(server.addr).is_err(), "listener closed");
}

#[test]
fn sigint_also_drains_and_exits_zero() {
    let mut server = start(torsion().args(
        "serve echo --listen tcp:0:interface=127.0.0.1 --drain-timeout 200ms".split_whitespace(),
    ));
    let _idle: Vec<_> = (0..10).map(|_| client(server.addr)).collect();
    signal(&server.child, libc::SIGINT);
    assert!(wait_exit(&mut server.child).success());
}

#[test]
fn the_affinity_mask_sets_the_default_shard_count() {
    let mut cmd = torsion();
    cmd.args(["serve", "echo", "--listen", "tcp:0:interface=127.0.0.1"]);
    // What `taskset -c 0 torsion serve …` does.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = start(&mut cmd);
    assert_eq!(server.shards, 1);
}

#[test]
fn explicit_shards_and_cores_are_honoured() {
    let server = start(
        torsion()
            .args("serve echo --listen tcp:0:interface=127.0.0.1 --shards 1".split_whitespace()),
    );
    assert_eq!(server.shards, 1);
    let server = start(
        torsion()
            .args("serve echo --listen tcp:0:interface=127.0.0.1 --cores 0".split_whitespace()),
    );
    assert_eq!(server.shards, 1);
}

#[test]
fn ipv6_loopback_works() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback on this machine");
        return;
    }
    let server = start(torsion().args(["serve", "echo", "--listen", "tcp6:0:interface=::1"]));
    assert!(server.addr.is_ipv6());
    let mut c = client(server.addr);
    c.write_all(b"v6").unwrap();
    let mut buf = [0u8; 2];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"v6");
}

#[test]
fn bad_start_up_input_is_a_clear_error() {
    // Each case: the command line (split at spaces) and what stderr must say.
    let cases: &[(&str, &str)] = &[
        ("serve echo --listen tpc:80", "unknown endpoint type \"tpc\""),
        ("serve echo --listen tcp:70000", "port \"70000\" is out of range"),
        ("serve echo --listen tcp:0:interfce=127.0.0.1", "unknown option \"interfce\""),
        ("serve echo --listen tcp:0:interface=127.0.0.1 --shards 999", "999 shards asked for"),
        ("serve echo --listen tcp:0:interface=127.0.0.1 --cores 9999", "core 9999 is not allowed"),
        ("serve echo --listen tcp:0:interface=127.0.0.1 --cores x", "invalid core list"),
        ("serve echo --drain-timeout soon", "invalid duration"),
        ("serve gopher", "unrecognized subcommand 'gopher'"),
        ("serve chat --max-outbound 0", "must be greater than zero"),
        ("serve chat --max-line lots", "invalid size"),
        ("serve chat --register-timeout forever", "invalid duration"),
        ("serve chat --coalesce-wakeups maybe", "expected on or off, not \"maybe\""),
        ("serve echo --listen tcp:0:interface=127.0.0.1 --idle-timeout 18446744073709551615s", "out of range (1ms to 365d)"),
        ("serve chat --listen tcp:0:interface=127.0.0.1 --register-timeout 18446744073709551615s", "out of range (1ms to 365d)"),
        ("serve echo --drain-timeout 366d", "out of range (1ms to 365d)"),
        ("serve echo --idle-timeout 10us", "below 1ms"),
        ("serve echo --shards -2", "-2 is not allowed: must be a whole number, at least 1"),
        ("load echo --target 127.0.0.1:7 --connections -1", "-1 is not allowed: must be a whole number, at least 1"),
        ("bench echo --duration 0s", "must be at least 1ms"),
    ];
    for (line, want) in cases {
        let args: Vec<&str> = line.split_whitespace().collect();
        let (code, stderr) = failing(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert_eq!(stderr.matches(want).count(), 1, "said once: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_taken_port_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let endpoint = format!("tcp:{port}:interface=127.0.0.1");
    let (code, stderr) = failing(&["serve", "echo", "--listen", &endpoint]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot listen on") && stderr.contains("in use"),
        "{stderr}"
    );
}

/// A second server on a port another one listens on fails to start
/// (exit 2, "address already in use"), whatever its shard count, and the
/// first server keeps all its connections; SO_REUSEPORT does not let it in.
#[test]
fn a_second_server_on_a_listening_port_is_refused() {
    let mut first = start(
        torsion()
            .args("serve echo --listen tcp:0:interface=127.0.0.1 --shards 1".split_whitespace()),
    );
    let endpoint = format!("tcp:{}:interface=127.0.0.1", first.addr.port());
    for shards in ["1", "2"] {
        let (code, stderr) = failing(&["serve", "chat", "--listen", &endpoint, "--shards", shards]);
        assert_eq!(code, 2, "{shards} shards: {stderr}");
        assert!(stderr.contains("address already in use"), "{stderr}");
        assert_eq!(stderr.matches("in use").count(), 1, "said once: {stderr}");
    }
    // Every new connection still reaches the first server (an echo).
    for _ in 0..20 {
        let mut c = client(first.addr);
        c.write_all(b"mine?").unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"mine?");
    }
    signal(&first.child, libc::SIGTERM);
    assert!(wait_exit(&mut first.child).success());
}

/// Right after a server exits (its connections in TIME_WAIT), a new one
/// starts on the same port.
#[test]
fn a_server_restarts_on_the_port_it_just_left() {
    let mut first =
        start(torsion().args(["serve", "echo", "--listen", "tcp:0:interface=127.0.0.1"]));
    let port = first.addr.port();
    for _ in 0..20 {
        let mut c = client(first.addr);
        c.write_all(b"x").unwrap();
        let mut back = [0u8; 1];
        c.read_exact(&mut back).unwrap();
    }
    signal(&first.child, libc::SIGTERM);
    assert!(wait_exit(&mut first.child).success());
    let endpoint = format!("tcp:{port}:interface=127.0.0.1");
    let second = start(torsion().args(["serve", "echo", "--listen", &endpoint]));
    assert_eq!(second.addr.port(), port);
}

/// `--idle-timeout 0s` turns the timeout off (it used to reset every
/// connection at once).
#[test]
fn a_zero_idle_timeout_means_off() {
    let running = start(torsion().args(
        "serve echo --listen tcp:0:interface=127.0.0.1 --idle-timeout 0s".split_whitespace(),
    ));
    let mut c = client(running.addr);
    std::thread::sleep(Duration::from_millis(300));
    c.write_all(b"still here").unwrap();
    let mut back = [0u8; 10];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still here");
}

/// Logs to a pipe carry no colour codes; `--log-format json` gives one
/// JSON object per line.
#[test]
fn logs_are_plain_off_a_terminal_and_json_on_request() {
    for format in ["text", "json"] {
        let mut child = torsion()
            .env("RUST_LOG", "info")
            .args(format!("serve echo --listen tcp:0:interface=127.0.0.1 --shards 1 --log-format {format}").split_whitespace())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.ends_with("(1 shard)\n"), "{line:?}");
        signal(&child, libc::SIGTERM);
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let logs = String::from_utf8(output.stderr).unwrap();
        assert!(!logs.contains('\x1b'), "colour codes in a pipe: {logs:?}");
        assert!(logs.contains("serving"), "{logs}");
        if format == "json" {
            for l in logs.lines() {
                let v: serde_json::Value = serde_json::from_str(l).expect(l);
                assert!(
                    v["level"].is_string() && v["fields"]["message"].is_string(),
                    "{l}"
                );
            }
        }
    }
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"][..],
        &["load", "--help"][..],
        &["bench", "--help"][..],
        &["cert", "--help"][..],
    ] {
        let out = torsion().args(args).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage"), "{text}");
    }
}

#[test]
fn resets_mid_write_leak_no_descriptors() {
    let server = start(torsion().args(["serve", "echo", "--listen", "tcp:0:interface=127.0.0.1"]));
    let pid = server.child.id();
    let baseline = open_fds(pid);
    for round in 0..3 {
        let clients: Vec<TcpStream> = (0..30).map(|_| client(server.addr)).collect();
        for c in &clients {
            // Echo is mid-write of this when the reset arrives.
            let mut w = c;
            let _ = w.write_all(&vec![round as u8; 512 * 1024]);
            socket2::SockRef::from(c)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        drop(clients);
    }
    let deadline = Instant::now() + PATIENCE;
    while open_fds(pid) > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(open_fds(pid), baseline, "descriptors leaked");
    // And it still serves.
    let mut c = client(server.addr);
    c.write_all(b"still here").unwrap();
    let mut buf = [0u8; 10];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
}

#[test]
fn serve_chat_greets_and_times_out_nameless_clients() {
    let server = start(torsion().args(
        "serve chat --listen tcp:0:interface=127.0.0.1 --register-timeout 200ms".split_whitespace(),
    ));
    let mut c = client(server.addr);
    let mut all = String::new();
    c.read_to_string(&mut all).unwrap();
    assert_eq!(all, "What's your name?\r\nRegistration timed out.\r\n");
}

/// Reads exactly `want` from `c`.
fn expect_text(c: &mut TcpStream, want: &str) {
    let mut got = vec![0u8; want.len()];
    c.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), want);
}

#[test]
fn serve_chat_delivers_lines_with_wake_up_coalescing_on_and_off() {
    for setting in ["on", "off"] {
        let server = start(torsion().args([
            "serve",
            "chat",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--coalesce-wakeups",
            setting,
        ]));
        let (mut alice, mut bob) = (client(server.addr), client(server.addr));
        for (c, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
            c.write_all(format!("{name}\n").as_bytes()).unwrap();
            expect_text(c, &format!("What's your name?\r\nWelcome, {name}!\r\n"));
        }
        for i in 0..20 {
            alice.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        for i in 0..20 {
            expect_text(&mut bob, &format!("<alice> line {i}\r\n"));
        }
    }
}

#[test]
fn serve_echo_over_udp() {
    let server = start(torsion().args(["serve", "echo", "--listen", "udp:0:interface=127.0.0.1"]));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(PATIENCE)).unwrap();
    sock.send_to(b"datagram", server.addr).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = sock.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"datagram"[..], server.addr));
}
