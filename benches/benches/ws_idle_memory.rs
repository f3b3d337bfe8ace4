//! What an idle WebSocket chat connection costs in server memory: torsion's
//! chat on its WebSocket listener (`torsion serve chat --websocket`, this
//! build's binary, `$TORSION_BIN`), a Node `ws` chat server and an
//! Autobahn-on-Twisted one (`benches/peers/`, the chat bench's), each a
//! process on the server core. For each: its RSS after 50 connections,
//! then after `--connections` more (default 2,000), each handshaken,
//! greeted and named, then idle; the difference per connection. Rounds
//! interleave the servers.
//!
//! `cargo bench -p torsion-benches --bench ws_idle_memory [-- --connections 2000 --rounds 3]`
//! (build `target/release/torsion` first: `cargo build --release -p torsion-cli`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use torsion_protocols::websocket::{apply_mask, client_key, client_request, write_header, Opcode};

/// Starts `cmd` pinned to the server core; `port_of` reads the WebSocket
/// port from its stdout lines.
fn start(
    mut cmd: Command,
    port_of: impl Fn(&[String]) -> Option<u16>,
) -> Option<(SocketAddr, Child)> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    torsion_benches::pin_to_server_core(&mut cmd);
    let mut child = cmd.spawn().ok()?;
    let mut lines = Vec::new();
    let mut out = BufReader::new(child.stdout.take()?);
    for _ in 0..3 {
        let mut l = String::new();
        if out.read_line(&mut l).ok()? == 0 {
            break;
        }
        lines.push(l.trim().to_string());
        if let Some(port) = port_of(&lines) {
            // Keep draining its stdout so it never blocks.
            std::thread::spawn(move || for _ in out.lines() {});
            return Some((SocketAddr::from(([127, 0, 0, 1], port)), child));
        }
    }
    let _ = child.kill();
    None
}

/// One WebSocket chat client: handshake, greeting, name, welcome; then it
/// stays open, idle.
fn idle_client(addr: SocketAddr, name: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let key = client_key();
    s.write_all(&client_request(&addr.to_string(), "/", &key, &[], false))
        .unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        got.push(byte[0]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    read_text(&mut s); // What's your name?
    let mask = [7, 1, 3, 9];
    let mut frame = bytes::BytesMut::new();
    write_header(
        &mut frame,
        true,
        false,
        Opcode::Text,
        name.len(),
        Some(mask),
    );
    let start = frame.len();
    frame.extend_from_slice(name.as_bytes());
    apply_mask(&mut frame[start..], mask, 0);
    s.write_all(&frame).unwrap();
    let welcome = read_text(&mut s);
    assert!(welcome.starts_with("Welcome"), "{welcome}");
    s
}

/// One unmasked text message from the server (short: a 2-byte header).
fn read_text(s: &mut TcpStream) -> String {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    let mut body = vec![0u8; usize::from(head[1] & 0x7F)];
    s.read_exact(&mut body).unwrap();
    String::from_utf8_lossy(&body).into_owned()
}

/// KiB per connection: RSS after 50, then after `n` more.
fn per_connection(addr: SocketAddr, pid: u32, n: usize) -> f64 {
    let mut keep: Vec<TcpStream> = (0..50)
        .map(|i| idle_client(addr, &format!("w{i}")))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = torsion_tests::rss_kib(pid);
    keep.extend((0..n).map(|i| idle_client(addr, &format!("u{i}"))));
    std::thread::sleep(Duration::from_millis(500));
    let after = torsion_tests::rss_kib(pid);
    drop(keep);
    (after.saturating_sub(before)) as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if !torsion_benches::two_cores_available() {
        return;
    }
    let n: usize = torsion_benches::arg_or("--connections", 2000);
    let rounds: usize = torsion_benches::arg_or("--rounds", 3);
    let torsion_bin = std::env::var("TORSION_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/torsion").to_string()
    });
    let node = torsion_tests::ensure_node_packages();
    let autobahn = torsion_tests::ensure_python_module("autobahn", "requirements-autobahn.txt");
    let peers = concat!(env!("CARGO_MANIFEST_DIR"), "/peers");
    let names = [
        "torsion serve chat --websocket",
        "Node ws chat",
        "Autobahn-on-Twisted chat",
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for round in 0..rounds {
        for (k, name) in names.iter().enumerate() {
            let started = match k {
                0 => {
                    let mut cmd = Command::new(&torsion_bin);
                    cmd.args([
                        "serve",
                        "chat",
                        "--listen",
                        "tcp:0:interface=127.0.0.1",
                        "--websocket",
                        "tcp:0:interface=127.0.0.1",
                        "--shards",
                        "1",
                        "--register-timeout",
                        "off",
                    ]);
                    start(cmd, |lines| {
                        let l = lines.get(1)?;
                        l.strip_prefix("torsion: listening on 127.0.0.1:")?
                            .split(' ')
                            .next()?
                            .parse()
                            .ok()
                    })
                }
                1 => node.as_ref().and_then(|dir| {
                    let mut cmd = Command::new("node");
                    cmd.arg(format!("{peers}/node_ws_chat.js"))
                        .arg("0")
                        .env("NODE_PATH", dir.join("node_modules"));
                    start(cmd, |lines| lines.first()?.parse().ok())
                }),
                _ => autobahn
                    .then(|| {
                        let mut cmd = Command::new("python3");
                        cmd.arg(format!("{peers}/autobahn_chat.py")).arg("0");
                        start(cmd, |lines| lines.first()?.parse().ok())
                    })
                    .flatten(),
            };
            let Some((addr, mut child)) = started else {
                println!("note: {name} could not be started; skipped");
                continue;
            };
            let kib = per_connection(addr, child.id(), n);
            println!(
                "  round {}: {name:<32} {kib:>7.2} KiB per idle connection",
                round + 1
            );
            results[k].push(kib);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    println!("idle WebSocket chat connections ({n} named, idle), server RSS per connection, median [range]:");
    let medians: Vec<Option<f64>> = results
        .iter()
        .map(|r| (!r.is_empty()).then(|| median(r.clone())))
        .collect();
    for (k, r) in results.iter().enumerate() {
        if let Some(m) = medians[k] {
            let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = r.iter().copied().fold(0.0, f64::max);
            println!("  {:<32} {m:>7.2} KiB [{lo:.2}–{hi:.2}]", names[k]);
        }
    }
    if let Some(t) = medians[0] {
        for k in 1..3 {
            if let Some(p) = medians[k] {
                println!("  {} ÷ torsion = {:.2}x", names[k], p / t.max(0.001));
            }
        }
    }
}
