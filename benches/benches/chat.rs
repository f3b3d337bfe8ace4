//! Chat fan-out, side by side: torsion's chat server, a tokio chat server
//! built like tokio's `examples/chat.rs` (shared state behind a mutex, an
//! mpsc channel per peer, one write per message) and Twisted's docs chat
//! server on the epoll reactor — in the same run, each server pinned to
//! core 0, the load generator (`torsion load chat`, as a library) on core 1.
//!
//! For each server and rate: deliveries/s, deliveries made of those due,
//! server CPU microseconds per delivery (the server thread's or process's
//! utime+stime over the run), corrected delivery latency p50/p99, and the
//! share of its core the load generator used (near 100%, the generator,
//! not the server, limits the run).
//!
//! `cargo bench -p torsion-benches --bench chat [-- --seconds 5 --rates 2000,20000]`
//! prints the table and, at each rate, CPU per delivery and p99 as peer ÷
//! torsion — CPU only where the peer kept up (every delivery made, p99 under
//! 100 ms; a peer that fell behind is reported as such, not compared).
//!
//! `cargo bench -p torsion-benches --bench chat -- --capacity [--seconds 3 --steps 4]`
//! searches each server's capacity instead: the highest rate it sustains
//! with every delivery made and corrected p99 ≤ 10 ms (doubling from 2,000
//! msgs/s until a rate fails, then bisecting), and prints torsion ÷ peer.
//!
//! `--baseline NAME` picks the server the others are compared with
//! (default `torsion`).
//!
//! `--flush-window-us N` sets torsion's chat flush window (default: the
//! server's, 1.25 ms; 0 turns it off). `--servers torsion,tokio,twisted`
//! picks the servers (also `torsion-coalesce-off`: torsion with
//! `--coalesce-wakeups off`, compared with torsion like a peer; and
//! `torsion-process`: `torsion serve chat` as a process, this build's binary
//! (`$TORSION_BIN`); `torsion-old`: the same from another build
//! (`$TORSION_OLD_BIN`), to compare two builds in one run;
//! `twisted-nodelay`: the docs server with
//! TCP_NODELAY, which the capacity search uses by default because the docs
//! server's Nagle delays alone put its p99 over 10 ms at any rate).
//! Twisted is skipped, with a note, when `python3 -c "import twisted"` fails.
//!
//! Over WebSocket (the load's clients then open with the handshake and
//! send and receive one text message per line): `torsion-ws` (torsion's
//! chat on its WebSocket listener), `node-ws` (a chat server on Node's
//! `ws`, compression off, `peers/node_ws_chat.js`) and `autobahn`
//! (Autobahn|Python on Twisted, `peers/autobahn_chat.py`), e.g.
//! `--servers torsion-ws,node-ws,autobahn,torsion --rates 500,2000,10000`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use torsion::Server;
use torsion_benches::thread_cpu_time;
use torsion_cli::load::chat::ChatLoad;
use torsion_cli::load::report::Report;
use torsion_cli::load::sweep::search;
use torsion_cli::load::{run_chat, Outputs};
use torsion_protocols::chat::{start_chat_server, ChatConfig};

use torsion_benches::{LOAD_CORE, SERVER_CORE};
const CLIENTS: usize = 100;
const SENDERS: usize = 10;

/// How to read a server's CPU time.
enum Cpu {
    Thread(u64),
    Process(u32),
}

impl Cpu {
    fn read(&self) -> Duration {
        match self {
            Cpu::Thread(tid) => thread_cpu_time(*tid),
            Cpu::Process(pid) => torsion_benches::pid_cpu_time(*pid),
        }
    }
}

/// tokio's examples/chat.rs design, speaking the same protocol.
fn start_tokio_chat() -> (SocketAddr, u64) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::sync::mpsc as tmpsc;

    type Peers = Arc<Mutex<HashMap<SocketAddr, (String, tmpsc::UnboundedSender<Arc<str>>)>>>;
    torsion_benches::spawn_tokio_server(SERVER_CORE, |listener| async move {
        let peers: Peers = Arc::default();
        loop {
            let (sock, addr) = listener.accept().await.unwrap();
            let peers = peers.clone();
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                if w.write_all(b"What's your name?\r\n").await.is_err() {
                    return;
                }
                let name = loop {
                    let Ok(Some(name)) = lines.next_line().await else {
                        return;
                    };
                    let name = name.trim_end_matches('\r').to_string();
                    let taken = peers.lock().unwrap().values().any(|(n, _)| *n == name);
                    if taken {
                        let _ = w.write_all(b"Name taken, please choose another.\r\n").await;
                    } else {
                        break name;
                    }
                };
                let (ptx, mut prx) = tmpsc::unbounded_channel::<Arc<str>>();
                peers.lock().unwrap().insert(addr, (name.clone(), ptx));
                if w.write_all(format!("Welcome, {name}!\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    peers.lock().unwrap().remove(&addr);
                    return;
                }
                loop {
                    tokio::select! {
                        Some(msg) = prx.recv() => {
                            if w.write_all(msg.as_bytes()).await.is_err() { break; }
                        }
                        line = lines.next_line() => match line {
                            Ok(Some(line)) => {
                                let line = line.trim_end_matches('\r');
                                let msg: Arc<str> = format!("<{name}> {line}\r\n").into();
                                for (peer, (_, tx)) in peers.lock().unwrap().iter() {
                                    if *peer != addr {
                                        let _ = tx.send(msg.clone());
                                    }
                                }
                            }
                            _ => break,
                        }
                    }
                }
                peers.lock().unwrap().remove(&addr);
            });
        }
    })
}

/// `torsion serve chat` on the server core, one shard, as a process of
/// its own (this build's binary or another build's, for comparing builds).
fn start_torsion_process(kind: Kind, flush_window: Duration) -> Option<(SocketAddr, Child)> {
    let bin = match kind {
        Kind::TorsionOldProcess => match std::env::var("TORSION_OLD_BIN") {
            Ok(bin) => bin,
            Err(_) => {
                println!(
                    "note: torsion-old needs TORSION_OLD_BIN=path/to/another/torsion; skipped"
                );
                return None;
            }
        },
        _ => std::env::var("TORSION_BIN").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/torsion").to_string()
        }),
    };
    let mut cmd = Command::new(&bin);
    cmd.args(["serve", "chat", "--listen", "tcp:0:interface=127.0.0.1"])
        .args(["--cores", &SERVER_CORE.to_string()]);
    if flush_window != torsion_protocols::chat::DEFAULT_FLUSH_WINDOW {
        let window = match flush_window.as_micros() {
            0 => "0".to_string(),
            us => format!("{us}us"),
        };
        cmd.args(["--flush-window", &window]);
    }
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| println!("note: cannot start {bin}: {e}; skipped"))
        .ok()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let (addr, _) = torsion_tests::parse_listening_line(&line);
    Some((addr, child))
}

fn start_twisted_chat(nodelay: bool) -> Option<(SocketAddr, Child)> {
    let ok = Command::new("python3")
        .args(["-c", "import twisted"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        println!("note: Twisted is not installed (scripts/bench-suite installs it); skipping the Twisted server");
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/twisted_chat.py");
    let mut cmd = Command::new("python3");
    cmd.args([script, "0", if nodelay { "nodelay" } else { "default" }]);
    start_pinned_peer(cmd)
}

/// A Node `ws` chat server (`peers/node_ws_chat.js`), torsion's semantics
/// over WebSocket; `None` (with a note) without Node or the `ws` package.
fn start_node_ws_chat() -> Option<(SocketAddr, Child)> {
    let Some(node_dir) = torsion_tests::ensure_node_packages() else {
        println!("note: Node's ws is not installed; skipping the Node ws server");
        return None;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/node_ws_chat.js");
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .arg("0")
        .env("NODE_PATH", node_dir.join("node_modules"));
    start_pinned_peer(cmd)
}

/// An Autobahn-on-Twisted chat server (`peers/autobahn_chat.py`); `None`
/// (with a note) when autobahn cannot be installed.
fn start_autobahn_chat() -> Option<(SocketAddr, Child)> {
    if !torsion_tests::ensure_python_module("autobahn", "requirements-autobahn.txt") {
        println!("note: autobahn is not installed; skipping the Autobahn server");
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/autobahn_chat.py");
    let mut cmd = Command::new("python3");
    cmd.args([script, "0"]);
    start_pinned_peer(cmd)
}

/// Starts a peer server pinned to the server core; it prints its port on
/// its first stdout line.
fn start_pinned_peer(mut cmd: Command) -> Option<(SocketAddr, Child)> {
    cmd.stdout(Stdio::piped());
    torsion_benches::pin_to_server_core(&mut cmd);
    let mut child = cmd.spawn().ok()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let port: u16 = line.trim().parse().ok()?;
    Some((SocketAddr::from(([127, 0, 0, 1], port)), child))
}

struct Row {
    server: &'static str,
    rate: f64,
    report: Report,
    cpu_us_per_delivery: f64,
    /// Share of its core the load generator used over the run (this
    /// process's CPU less the in-process server thread's).
    load_cpu_share: f64,
}

fn measure(
    server: &'static str,
    addr: SocketAddr,
    websocket: bool,
    cpu: &Cpu,
    rate: f64,
    secs: u64,
) -> Row {
    let before = cpu.read();
    let (process_before, wall) = (
        torsion_benches::process_cpu_time(),
        std::time::Instant::now(),
    );
    let report = run_chat(
        ChatLoad {
            targets: vec![addr],
            clients: CLIENTS,
            senders: SENDERS,
            rate,
            duration: Duration::from_secs(secs),
            warmup: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            drain: Duration::from_secs(3),
            websocket,
        },
        &[LOAD_CORE],
        Arc::new(AtomicBool::new(false)),
        &Outputs::default(),
    )
    .unwrap();
    let cpu_used = cpu.read() - before;
    let mut load_cpu = torsion_benches::process_cpu_time() - process_before;
    if let Cpu::Thread(_) = cpu {
        load_cpu = load_cpu.saturating_sub(cpu_used);
    }
    let received = report.chat.as_ref().map_or(0, |c| c.deliveries_received);
    Row {
        server,
        rate,
        cpu_us_per_delivery: cpu_used.as_secs_f64() * 1e6 / received.max(1) as f64,
        load_cpu_share: load_cpu.as_secs_f64() / wall.elapsed().as_secs_f64(),
        report,
    }
}

/// The servers compared.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Torsion,
    /// torsion with `--coalesce-wakeups off`: the shard wakes for each
    /// readable socket while a flush window is open.
    TorsionWakePerRead,
    Tokio,
    /// The docs server as written (Nagle's algorithm on).
    Twisted,
    /// The docs server with TCP_NODELAY on each connection.
    TwistedNoDelay,
    /// `torsion serve chat` as a process: this build's binary
    /// (`$TORSION_BIN`, default `target/release/torsion`).
    TorsionProcess,
    /// `torsion serve chat` as a process, from another build
    /// (`$TORSION_OLD_BIN`): two builds interleaved in one run.
    TorsionOldProcess,
    /// torsion's chat over its WebSocket listener (the load's clients are
    /// WebSocket clients).
    TorsionWs,
    /// A chat server on Node's `ws`, the same semantics over WebSocket.
    NodeWs,
    /// A chat server on Autobahn|Python over Twisted.
    Autobahn,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Torsion => "torsion (1 shard)",
            Kind::TorsionWakePerRead => "torsion --coalesce-wakeups off",
            Kind::Tokio => "tokio examples/chat.rs design",
            Kind::Twisted => "Twisted docs chat (epoll)",
            Kind::TwistedNoDelay => "Twisted docs chat + TCP_NODELAY",
            Kind::TorsionProcess => "torsion serve chat (this build, a process)",
            Kind::TorsionOldProcess => "torsion serve chat ($TORSION_OLD_BIN)",
            Kind::TorsionWs => "torsion chat over WebSocket (1 shard)",
            Kind::NodeWs => "Node ws chat (compression off)",
            Kind::Autobahn => "Autobahn-on-Twisted chat (epoll)",
        }
    }

    fn by_name(name: &str) -> Option<Kind> {
        match name {
            "torsion" => Some(Kind::Torsion),
            "torsion-coalesce-off" => Some(Kind::TorsionWakePerRead),
            "tokio" => Some(Kind::Tokio),
            "twisted" => Some(Kind::Twisted),
            "twisted-nodelay" => Some(Kind::TwistedNoDelay),
            "torsion-process" => Some(Kind::TorsionProcess),
            "torsion-old" => Some(Kind::TorsionOldProcess),
            "torsion-ws" => Some(Kind::TorsionWs),
            "node-ws" => Some(Kind::NodeWs),
            "autobahn" => Some(Kind::Autobahn),
            _ => None,
        }
    }
}

/// Starts a fresh `kind` server (names and state start clean), offers it
/// `rate` messages/s for `secs`, stops it. `None` when Twisted is missing.
fn run_server(kind: Kind, rate: f64, secs: u64, flush_window: Duration) -> Option<Row> {
    match kind {
        Kind::Torsion | Kind::TorsionWakePerRead => {
            let builder = Server::builder()
                .listen_on("tcp:0:interface=127.0.0.1")
                .unwrap()
                .cores(vec![SERVER_CORE]);
            let config = ChatConfig::default()
                .with_flush_window(flush_window)
                .with_coalesce_wakeups(kind == Kind::Torsion);
            let server = start_chat_server(builder, config).unwrap();
            let tid = server.stats()[0].thread_id;
            let row = measure(
                kind.name(),
                server.local_addr(),
                false,
                &Cpu::Thread(tid),
                rate,
                secs,
            );
            server.stop().unwrap();
            Some(row)
        }
        Kind::TorsionWs => {
            let builder = Server::builder()
                .listen_on("tcp:0:interface=127.0.0.1")
                .unwrap()
                .also_listen_on("tcp:0:interface=127.0.0.1")
                .unwrap()
                .cores(vec![SERVER_CORE]);
            let config = ChatConfig::default().with_flush_window(flush_window);
            let server = start_chat_server(builder, config).unwrap();
            let tid = server.stats()[0].thread_id;
            let ws = server.local_addrs()[1];
            let row = measure(kind.name(), ws, true, &Cpu::Thread(tid), rate, secs);
            server.stop().unwrap();
            Some(row)
        }
        Kind::NodeWs | Kind::Autobahn => {
            let (addr, mut child) = if kind == Kind::NodeWs {
                start_node_ws_chat()?
            } else {
                start_autobahn_chat()?
            };
            let pid = child.id();
            let row = measure(kind.name(), addr, true, &Cpu::Process(pid), rate, secs);
            let _ = child.kill();
            let _ = child.wait();
            Some(row)
        }
        Kind::Tokio => {
            let (addr, tid) = start_tokio_chat();
            Some(measure(
                kind.name(),
                addr,
                false,
                &Cpu::Thread(tid),
                rate,
                secs,
            ))
        }
        Kind::TorsionProcess | Kind::TorsionOldProcess => {
            let (addr, mut child) = start_torsion_process(kind, flush_window)?;
            let pid = child.id();
            let row = measure(kind.name(), addr, false, &Cpu::Process(pid), rate, secs);
            let _ = child.kill();
            let _ = child.wait();
            Some(row)
        }
        Kind::Twisted | Kind::TwistedNoDelay => {
            let (addr, mut child) = start_twisted_chat(kind == Kind::TwistedNoDelay)?;
            let pid = child.id();
            let row = measure(kind.name(), addr, false, &Cpu::Process(pid), rate, secs);
            let _ = child.kill();
            let _ = child.wait();
            Some(row)
        }
    }
}

/// The p99 a server must keep to count as sustaining a rate.
const CAPACITY_P99_MS: f64 = 10.0;

/// A p99 above this says the server's queues grew through the run: it
/// fell behind the rate even if it delivered everything in the end.
const BEHIND_P99_MS: f64 = 100.0;

/// A load generator busier than this share of its core may be what limits
/// the rate (one load core drives every server here).
const GENERATOR_SATURATED: f64 = 0.85;

impl Row {
    /// Every delivery made, with corrected p99 within [`CAPACITY_P99_MS`].
    fn sustained(&self) -> bool {
        let c = self.report.chat.as_ref().unwrap();
        c.deliveries_received == c.deliveries_expected
            && self.p99_ms().is_some_and(|p99| p99 <= CAPACITY_P99_MS)
    }

    /// Whether the server kept up with the rate: every delivery made and
    /// no queue growing (p99 under [`BEHIND_P99_MS`]). CPU per delivery is
    /// compared only between servers that kept up.
    fn kept_up(&self) -> bool {
        self.delivered() >= 1.0 && self.p99_ms().is_some_and(|p99| p99 <= BEHIND_P99_MS)
    }

    /// Corrected p99 in ms; `None` when no delivery of a message sent in
    /// the measured period arrived (a server far behind), which an empty
    /// histogram would otherwise read as 0 ms.
    fn p99_ms(&self) -> Option<f64> {
        self.report.corrected.p99_ms()
    }

    /// The p99 for a sentence: "3.21 ms", or what an empty histogram means.
    fn p99_text(&self) -> String {
        match self.p99_ms() {
            Some(p99) => format!("{p99:.2} ms"),
            None => "none: no delivery of the measured period arrived".into(),
        }
    }

    /// Share of the due deliveries made.
    fn delivered(&self) -> f64 {
        let c = self.report.chat.as_ref().unwrap();
        c.deliveries_received as f64 / c.deliveries_expected.max(1) as f64
    }
}

/// The highest rate `kind` sustains: doubles from 2,000 msgs/s until a
/// rate fails, then bisects the last interval `steps` times — the load
/// generator's own capacity search (`torsion_cli::load::sweep::search`,
/// what `--rate FROM..TO/STEP --slo` runs) with chat's test of a rate:
/// every delivery made and the corrected p99 within the bound. Prints each
/// probe. `None` when the server is missing.
fn capacity(kind: Kind, secs: u64, flush_window: Duration, steps: usize) -> Option<f64> {
    let rates: Vec<f64> = (0..)
        .map(|k| 2000.0 * 2f64.powi(k))
        .take_while(|&r| r <= 1_000_000.0)
        .collect();
    let probe = |rate: f64, _label: &str| -> anyhow::Result<(bool, ())> {
        let row = run_server(kind, rate, secs, flush_window)
            .ok_or_else(|| anyhow::anyhow!("{} is not installed", kind.name()))?;
        let ok = row.sustained();
        println!(
            "  {:<30} {:>8.0} msgs/s: delivered {:>6.2}%, p99 {:>12}, server {:>5.1} µs/dlv, load generator {:>3.0}% of its core → {}",
            kind.name(),
            rate,
            row.delivered() * 100.0,
            row.p99_text(),
            row.cpu_us_per_delivery,
            row.load_cpu_share * 100.0,
            if ok {
                "sustained"
            } else if row.load_cpu_share > GENERATOR_SATURATED {
                "not sustained (the load generator's core is saturated: a limit of the generator, not only of the server)"
            } else {
                "not sustained"
            }
        );
        Ok((ok, ()))
    };
    match search(&rates, steps, || false, probe) {
        Ok(found) => Some(found.capacity.unwrap_or(0.0)),
        Err(e) => {
            println!("  {}: {e}", kind.name());
            None
        }
    }
}

fn main() {
    if !torsion_benches::two_cores_available() {
        return;
    }
    let secs: u64 = torsion_benches::arg_or("--seconds", 5);
    // torsion's flush window in microseconds (0: off); the server's default
    // unless given.
    let flush_window = Duration::from_micros(torsion_benches::arg_or(
        "--flush-window-us",
        torsion_protocols::chat::DEFAULT_FLUSH_WINDOW.as_micros() as u64,
    ));
    let rates: Vec<f64> = torsion_benches::arg("--rates")
        .unwrap_or_else(|| "2000,20000".into())
        .split(',')
        .filter_map(|r| r.parse().ok())
        .collect();

    let capacity_mode = std::env::args().any(|a| a == "--capacity");
    // Twisted's docs server keeps Nagle's algorithm on, so its p99 is over
    // the capacity's 10 ms at every rate: the capacity search measures it
    // with TCP_NODELAY instead (and says so).
    let default_servers = if capacity_mode {
        "torsion,tokio,twisted-nodelay"
    } else {
        "torsion,tokio,twisted"
    };
    let kinds: Vec<Kind> = torsion_benches::arg("--servers")
        .unwrap_or_else(|| default_servers.into())
        .split(',')
        .filter_map(Kind::by_name)
        .collect();
    // What the others are compared with (`--baseline torsion-ws` for the
    // WebSocket servers).
    let baseline = torsion_benches::arg("--baseline")
        .and_then(|b| Kind::by_name(&b))
        .unwrap_or(Kind::Torsion);
    if capacity_mode {
        let steps: usize = torsion_benches::arg_or("--steps", 4);
        println!(
            "capacity: the highest rate one shard sustains (every delivery made, corrected p99 ≤ {CAPACITY_P99_MS} ms), {CLIENTS} clients, {SENDERS} senders, {secs} s per probe"
        );
        let found: Vec<(Kind, f64)> = kinds
            .iter()
            .filter_map(|&k| Some((k, capacity(k, secs, flush_window, steps)?)))
            .collect();
        for (k, c) in &found {
            println!("capacity {:<30} {:>8.0} msgs/s", k.name(), c);
        }
        if let Some(&(_, t)) = found.iter().find(|(k, _)| *k == baseline) {
            for (k, c) in found.iter().filter(|(k, _)| *k != baseline) {
                if *c > 0.0 {
                    println!(
                        "capacity {} ÷ {} = {:.2}x",
                        baseline.name(),
                        k.name(),
                        t / c
                    );
                } else {
                    println!(
                        "capacity {} ÷ {}: no ratio, it sustained none of the rates tried",
                        baseline.name(),
                        k.name()
                    );
                }
            }
        }
        return;
    }
    let mut rows = Vec::new();
    for &rate in &rates {
        for &kind in &kinds {
            rows.extend(run_server(kind, rate, secs, flush_window));
        }
    }

    println!();
    println!(
        "chat fan-out: {CLIENTS} clients, {SENDERS} senders, {secs} s after 1 s warm-up; server on core {SERVER_CORE}, load on core {LOAD_CORE}"
    );
    println!(
        "{:<30} {:>8} {:>13} {:>21} {:>12} {:>11} {:>11} {:>7}",
        "server",
        "msgs/s",
        "deliveries/s",
        "received / expected",
        "CPU µs/dlv",
        "p50 ms",
        "p99 ms",
        "load %"
    );
    for r in &rows {
        let c = r.report.chat.as_ref().unwrap();
        // "-": nothing measured (an empty histogram reads 0 ms).
        let measured = |us: f64| match r.p99_ms() {
            Some(_) => format!("{:.2}", us / 1000.0),
            None => "-".into(),
        };
        println!(
            "{:<30} {:>8.0} {:>13.0} {:>10} / {:>8} {:>12.3} {:>11} {:>11} {:>7.0}",
            r.server,
            r.rate,
            r.report.achieved_rate,
            c.deliveries_received,
            c.deliveries_expected,
            r.cpu_us_per_delivery,
            measured(r.report.corrected.p50_us),
            measured(r.report.corrected.p99_us),
            r.load_cpu_share * 100.0
        );
    }
    for &rate in &rates {
        let at: Vec<&Row> = rows.iter().filter(|r| r.rate == rate).collect();
        let t = at.iter().find(|r| r.server == baseline.name());
        for peer in at.iter().filter(|r| r.server != baseline.name()) {
            if !peer.kept_up() {
                println!(
                    "at {rate:.0} msgs/s: {} fell behind (delivered {:.1}% of what was due, p99 {}): CPU per delivery not compared",
                    peer.server,
                    peer.delivered() * 100.0,
                    peer.p99_text()
                );
                continue;
            }
            if let Some((t, t_p99)) = t.and_then(|t| Some((t, t.p99_ms()?))) {
                println!(
                    "at {rate:.0} msgs/s: {} CPU per delivery ÷ {}'s = {:.2}x; p99 ÷ {}'s = {:.2}x",
                    peer.server,
                    baseline.name(),
                    peer.cpu_us_per_delivery / t.cpu_us_per_delivery,
                    baseline.name(),
                    peer.p99_ms().unwrap_or(0.0) / t_p99.max(0.001)
                );
            }
        }
    }
}
