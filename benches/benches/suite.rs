//! The benchmark suite: torsion against tokio, plain glommio and Twisted, in
//! the same run, server pinned to core 0 and load pinned to core 1.
//!
//! `cargo bench -p torsion-benches --bench suite` (add `-- --seconds N` for
//! longer runs). Every server runs in its own process (`torsion-echo`,
//! `tokio-echo`, `glommio-echo` from this package; Twisted's docs echo server
//! from `peers/twisted_echo.py` when `import twisted` works, else skipped
//! with a note); the load is torsion's generator, as a library, on core 1.
//!
//! 1. echo saturated (closed loop): requests/s and server CPU µs/request, for
//!    50 connections × 512 B, 8 × 512 B and 50 × 64 B;
//! 2. echo latency at a fixed rate of 50% of tokio's saturated rate
//!    (50 × 64 B): corrected p50/p99/p99.9;
//! 3. resident memory per idle connection with 10,000 idle connections;
//! 4. server CPU while holding 1,000 idle connections for 5 s;
//! 5. the cross-shard bus: round trip between two shards, p50/p99.
//!
//! Chat fan-out has its own bench (`--bench chat`); `scripts/bench-suite`
//! runs both.

use std::io::BufRead;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use torsion_cli::load::echo::{EchoLoad, Rate};
use torsion_cli::load::{run_echo, Outputs};
use torsion_protocols::Framing;

const SERVER_CORE: usize = 0;
const LOAD_CORE: usize = 1;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Torsion,
    Tokio,
    Glommio,
    Twisted,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Torsion => "torsion (1 shard)",
            Kind::Tokio => "tokio current-thread",
            Kind::Glommio => "plain glommio loop",
            Kind::Twisted => "Twisted (epoll)",
        }
    }
}

struct Spawned {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn twisted_available() -> bool {
    Command::new("python3")
        .args(["-c", "import twisted"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn spawn(kind: Kind) -> Spawned {
    let core = SERVER_CORE.to_string();
    let mut cmd = match kind {
        Kind::Torsion => Command::new(env!("CARGO_BIN_EXE_torsion-echo")),
        Kind::Tokio => Command::new(env!("CARGO_BIN_EXE_tokio-echo")),
        Kind::Glommio => Command::new(env!("CARGO_BIN_EXE_glommio-echo")),
        Kind::Twisted => {
            let mut c = Command::new("python3");
            c.arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/peers/twisted_echo.py"
            ));
            c
        }
    };
    if kind != Kind::Twisted {
        cmd.arg(&core);
    }
    cmd.stdout(Stdio::piped()).env("RUST_LOG", "warn");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(SERVER_CORE, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            let lim = libc::rlimit {
                rlim_cur: 65536,
                rlim_max: 65536,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("server printed its port");
    Spawned {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn load(
    addr: SocketAddr,
    connections: usize,
    size: usize,
    rate: Rate,
    secs: u64,
    warmup: u64,
) -> torsion_cli::load::report::Report {
    run_echo(
        EchoLoad {
            target: addr,
            connections,
            rate,
            pipeline: 1,
            duration: Duration::from_secs(secs),
            warmup: Duration::from_secs(warmup),
            size,
            framing: Framing::Raw,
            connect_timeout: Duration::from_secs(5),
            drain: Duration::from_secs(3),
            udp: false,
            tls: None,
        },
        &[LOAD_CORE],
        Arc::new(AtomicBool::new(false)),
        &Outputs::default(),
    )
    .expect("load run")
}

struct Saturated {
    kind: Kind,
    rps: f64,
    cpu_us: f64,
}

fn saturated(kind: Kind, connections: usize, size: usize, secs: u64) -> Saturated {
    let s = spawn(kind);
    let pid = s.child.id();
    // Warm the server up, then measure with no warm-up inside the run so
    // the CPU window and the request count cover the same requests.
    load(s.addr, connections, size, Rate::Max, 1, 0);
    let cpu0 = torsion_benches::pid_cpu_time(pid);
    let r = load(s.addr, connections, size, Rate::Max, secs, 0);
    let cpu = torsion_benches::pid_cpu_time(pid) - cpu0;
    assert!(!r.has_errors(), "{}: {:?}", kind.name(), r.errors);
    Saturated {
        kind,
        rps: r.achieved_rate,
        cpu_us: cpu.as_secs_f64() * 1e6 / r.completed.max(1) as f64,
    }
}

fn raise_own_fd_limit() -> u64 {
    let lim = libc::rlimit {
        rlim_cur: 65536,
        rlim_max: 65536,
    };
    // SAFETY: setrlimit/getrlimit on our own process.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur);
            cur.rlim_max = cur.rlim_max.min(65536);
            cur.rlim_cur = cur.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &cur);
            return cur.rlim_cur;
        }
    }
    65536
}

/// KiB of server RSS per idle connection, with `n` idle connections.
fn memory_per_connection(kind: Kind, n: usize) -> f64 {
    let s = spawn(kind);
    let pid = s.child.id();
    // One round trip so lazy start-up allocations are in the baseline.
    let mut warm = TcpStream::connect(s.addr).unwrap();
    use std::io::{Read, Write};
    warm.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    warm.read_exact(&mut b).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib(pid);
    let conns: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(s.addr).unwrap())
        .collect();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while fds() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kib(pid);
    drop(conns);
    (after.saturating_sub(before)) as f64 / n as f64
}

/// Server CPU over `secs` while holding `n` idle connections.
fn idle_cpu(kind: Kind, n: usize, secs: u64) -> Duration {
    let s = spawn(kind);
    let pid = s.child.id();
    let conns: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let cpu0 = torsion_benches::pid_cpu_time(pid);
    std::thread::sleep(Duration::from_secs(secs));
    let used = torsion_benches::pid_cpu_time(pid) - cpu0;
    drop(conns);
    used
}

/// Round trips between two shards over the bus: (p50, p99, p99.9) in µs.
fn bus_round_trip(pings: u64) -> (f64, f64, f64) {
    use torsion::{Bus, FnFactory, Server};
    #[derive(Clone, Copy)]
    enum Msg {
        Ping(Instant),
        Pong(Instant),
    }
    let builder = Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .cores(vec![SERVER_CORE, LOAD_CORE]);
    let bus: Bus<Msg> = Bus::new(2).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let server = builder
        .serve(move |shard| {
            let me = shard.id;
            let tx = tx.clone();
            let hist = std::rc::Rc::new(std::cell::RefCell::new(
                hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
            ));
            let handle: std::rc::Rc<std::cell::OnceCell<torsion::BusHandle<Msg>>> =
                Default::default();
            let h2 = handle.clone();
            let attached = bus
                .attach(shard, move |m| {
                    let Some(bus) = h2.get() else { return };
                    match m {
                        Msg::Ping(t) => {
                            let _ = bus.send_to(0, Msg::Pong(t));
                        }
                        Msg::Pong(t) => {
                            let mut h = hist.borrow_mut();
                            let _ = h.record(t.elapsed().as_nanos() as u64);
                            if h.len() < pings {
                                let _ = bus.send_to(1, Msg::Ping(Instant::now()));
                            } else {
                                let _ = tx.send((
                                    h.value_at_quantile(0.5),
                                    h.value_at_quantile(0.99),
                                    h.value_at_quantile(0.999),
                                ));
                            }
                        }
                    }
                })
                .unwrap();
            let _ = handle.set(attached);
            if me == 0 {
                let h3 = handle.clone();
                torsion::spawn_local(async move {
                    torsion::Clock::real()
                        .sleep(Duration::from_millis(100))
                        .await;
                    if let Some(bus) = h3.get() {
                        let _ = bus.send_to(1, Msg::Ping(Instant::now()));
                    }
                })
                .detach();
            }
            FnFactory(|_peer| Some(torsion_protocols::Echo))
        })
        .unwrap();
    let (p50, p99, p999) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("bus pings finished");
    server.stop().unwrap();
    (
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        p999 as f64 / 1000.0,
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let cores = torsion::cores::allowed_cores().unwrap();
    if !cores.contains(&SERVER_CORE) || !cores.contains(&LOAD_CORE) {
        eprintln!("needs cores 0 and 1; skipping");
        return;
    }
    let secs: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let mut kinds = vec![Kind::Torsion, Kind::Tokio, Kind::Glommio];
    if twisted_available() {
        kinds.push(Kind::Twisted);
    } else {
        println!("note: Twisted is not installed (scripts/bench-suite installs it); its rows are skipped");
    }

    println!("\n1. echo, saturated (closed loop, pipeline 1), {secs} s per run; server core {SERVER_CORE}, load core {LOAD_CORE}");
    println!(
        "{:<22} {:>12} {:>10} {:>12} {:>12} {:>14} {:>12}",
        "case", "server", "req/s", "CPU µs/req", "req/s ÷ tokio", "CPU ÷ tokio", "CPU ÷ glommio"
    );
    let mut tokio_rps_50x64 = 0.0;
    for (conns, size) in [(50usize, 512usize), (8, 512), (50, 64)] {
        let rows: Vec<Saturated> = kinds
            .iter()
            .map(|&k| saturated(k, conns, size, secs))
            .collect();
        let tokio = rows
            .iter()
            .find(|r| r.kind == Kind::Tokio)
            .map(|r| (r.rps, r.cpu_us))
            .unwrap();
        let glommio = rows
            .iter()
            .find(|r| r.kind == Kind::Glommio)
            .map(|r| r.cpu_us)
            .unwrap();
        if (conns, size) == (50, 64) {
            tokio_rps_50x64 = tokio.0;
        }
        for r in &rows {
            println!(
                "{:<22} {:>12} {:>10.0} {:>12.2} {:>12.2}x {:>13.2}x {:>11.2}x",
                format!("{conns} conns × {size} B"),
                r.kind.name().split(' ').next().unwrap(),
                r.rps,
                r.cpu_us,
                r.rps / tokio.0,
                r.cpu_us / tokio.1,
                r.cpu_us / glommio
            );
        }
    }

    let rate = tokio_rps_50x64 * 0.5;
    println!("\n2. echo latency at a fixed {rate:.0} req/s (50% of tokio's saturated rate), 50 conns × 64 B, corrected (µs)");
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>12}",
        "server", "p50", "p99", "p99.9", "p99 ÷ tokio"
    );
    let mut lat = Vec::new();
    for &k in &kinds {
        let s = spawn(k);
        let r = load(s.addr, 50, 64, Rate::PerSecond(rate), secs + 1, 1);
        lat.push((
            k,
            r.corrected.p50_us,
            r.corrected.p99_us,
            r.corrected.p999_us,
            r.has_errors(),
        ));
    }
    let tokio_p99 = lat.iter().find(|l| l.0 == Kind::Tokio).unwrap().2;
    for (k, p50, p99, p999, errs) in &lat {
        println!(
            "{:<22} {:>10.1} {:>10.1} {:>10.1} {:>11.2}x{}",
            k.name(),
            p50,
            p99,
            p999,
            p99 / tokio_p99,
            if *errs { "  (errors!)" } else { "" }
        );
    }

    let limit = raise_own_fd_limit();
    let idle_n = 10_000usize.min(limit.saturating_sub(200) as usize);
    println!("\n3. resident memory per idle connection, {idle_n} idle connections (KiB)");
    let mem: Vec<(Kind, f64)> = [Kind::Torsion, Kind::Tokio, Kind::Glommio]
        .iter()
        .map(|&k| (k, memory_per_connection(k, idle_n)))
        .collect();
    let tokio_mem = mem.iter().find(|m| m.0 == Kind::Tokio).unwrap().1;
    for (k, kib) in &mem {
        println!(
            "{:<22} {:>8.2} KiB   ÷ tokio {:.2}x",
            k.name(),
            kib,
            kib / tokio_mem.max(0.001)
        );
    }

    println!("\n4. server CPU holding 1,000 idle connections for 5 s");
    for k in [Kind::Torsion, Kind::Tokio, Kind::Glommio] {
        println!(
            "{:<22} {:>8.1} ms",
            k.name(),
            idle_cpu(k, 1000, 5).as_secs_f64() * 1000.0
        );
    }

    println!("\n5. cross-shard bus round trip (shard on core 0 ⇄ shard on core 1), 20,000 pings");
    let (p50, p99, p999) = bus_round_trip(20_000);
    println!("p50 {p50:.1} µs   p99 {p99:.1} µs   p99.9 {p999:.1} µs");
}
