//! Chat fan-out, side by side: torsion's chat server, a tokio chat server
//! built like tokio's `examples/chat.rs` (shared state behind a mutex, an
//! mpsc channel per peer, one write per message) and Twisted's docs chat
//! server on the epoll reactor — in the same run, each server pinned to
//! core 0, the load generator (`torsion load chat`, as a library) on core 1.
//!
//! For each server and rate: deliveries/s, deliveries made of those due,
//! server CPU microseconds per delivery (the server thread's or process's
//! utime+stime over the run), and corrected delivery latency p50/p99.
//!
//! `cargo bench -p torsion-benches --bench chat [-- --seconds 5 --rates 2000,20000]`
//! Twisted is skipped, with a note, when `python3 -c "import twisted"` fails.

use std::io::BufRead;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use torsion::Server;
use torsion_benches::thread_cpu_time;
use torsion_cli::load::chat::ChatLoad;
use torsion_cli::load::report::Report;
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

fn start_twisted_chat() -> Option<(SocketAddr, Child)> {
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
    cmd.args([script, "0"]).stdout(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(SERVER_CORE, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
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
}

fn measure(server: &'static str, addr: SocketAddr, cpu: &Cpu, rate: f64, secs: u64) -> Row {
    let before = cpu.read();
    let report = run_chat(
        ChatLoad {
            target: addr,
            clients: CLIENTS,
            senders: SENDERS,
            rate,
            duration: Duration::from_secs(secs),
            warmup: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            drain: Duration::from_secs(3),
        },
        &[LOAD_CORE],
        Arc::new(AtomicBool::new(false)),
        &Outputs::default(),
    )
    .unwrap();
    let cpu_used = cpu.read() - before;
    let received = report.chat.as_ref().map_or(0, |c| c.deliveries_received);
    Row {
        server,
        rate,
        cpu_us_per_delivery: cpu_used.as_secs_f64() * 1e6 / received.max(1) as f64,
        report,
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

    let mut rows = Vec::new();
    for &rate in &rates {
        // Fresh servers per rate, so names and state start clean.
        let builder = Server::builder()
            .listen_on("tcp:0:interface=127.0.0.1")
            .unwrap()
            .cores(vec![SERVER_CORE]);
        let torsion_server = start_chat_server(
            builder,
            ChatConfig::default().with_flush_window(flush_window),
        )
        .unwrap();
        let tid = torsion_server.stats()[0].thread_id;
        rows.push(measure(
            "torsion (1 shard)",
            torsion_server.local_addr(),
            &Cpu::Thread(tid),
            rate,
            secs,
        ));
        torsion_server.stop().unwrap();

        let (addr, tid) = start_tokio_chat();
        rows.push(measure(
            "tokio examples/chat.rs design",
            addr,
            &Cpu::Thread(tid),
            rate,
            secs,
        ));

        if let Some((addr, mut child)) = start_twisted_chat() {
            let pid = child.id();
            rows.push(measure(
                "Twisted docs chat (epoll)",
                addr,
                &Cpu::Process(pid),
                rate,
                secs,
            ));
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    println!();
    println!(
        "chat fan-out: {CLIENTS} clients, {SENDERS} senders, {secs} s after 1 s warm-up; server on core {SERVER_CORE}, load on core {LOAD_CORE}"
    );
    println!(
        "{:<30} {:>8} {:>13} {:>21} {:>12} {:>11} {:>11}",
        "server", "msgs/s", "deliveries/s", "received / expected", "CPU µs/dlv", "p50 ms", "p99 ms"
    );
    for r in &rows {
        let c = r.report.chat.as_ref().unwrap();
        println!(
            "{:<30} {:>8.0} {:>13.0} {:>10} / {:>8} {:>12.3} {:>11.2} {:>11.2}",
            r.server,
            r.rate,
            r.report.achieved_rate,
            c.deliveries_received,
            c.deliveries_expected,
            r.cpu_us_per_delivery,
            r.report.corrected.p50_us / 1000.0,
            r.report.corrected.p99_us / 1000.0
        );
    }
    for &rate in &rates {
        let at: Vec<&Row> = rows.iter().filter(|r| r.rate == rate).collect();
        let t = at.iter().find(|r| r.server.starts_with("torsion"));
        for peer in at.iter().filter(|r| !r.server.starts_with("torsion")) {
            if let Some(t) = t {
                println!(
                    "at {rate:.0} msgs/s: {} CPU per delivery ÷ torsion's = {:.2}x; p99 {} ÷ torsion = {:.2}x",
                    peer.server,
                    peer.cpu_us_per_delivery / t.cpu_us_per_delivery,
                    peer.server,
                    peer.report.corrected.p99_us / t.report.corrected.p99_us.max(1.0)
                );
            }
        }
    }
}
