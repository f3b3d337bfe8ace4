//! The benchmark suite: torsion against tokio, plain glommio, monoio and Twisted, in
//! the same run, server pinned to core 0 and load pinned to core 1.
//!
//! `cargo bench -p torsion-benches --bench suite` (add `-- --seconds N` for
//! longer runs, `--rounds N` for more rounds; default 4 s and 3). Every server runs in its own process (`torsion-echo`,
//! `tokio-echo`, `glommio-echo`, `monoio-echo` from this package (monoio
//! built like its own echo example: owned buffers, `read` then `write_all`,
//! one thread, io_uring); Twisted's docs echo server
//! from `peers/twisted_echo.py` when `import twisted` works, else skipped
//! with a note); the load is torsion's generator, as a library, on core 1.
//!
//! 1. echo saturated (closed loop): requests/s and server CPU µs/request, for
//!    50 connections × 512 B, 8 × 512 B and 50 × 64 B; torsion twice, its
//!    echo as a callback `Protocol` (`torsion-echo`) and as an async loop
//!    (`torsion-async-echo`), with the ratio of the two;
//! 2. echo at a fixed rate of 50% of tokio's saturated rate (50 × 64 B):
//!    corrected p50/p99/p99.9 and server CPU µs/request;
//!
//! Figures 1 and 2 run every server once per round, the servers taking turns
//! within a round, and print medians over the rounds; ratios are the median
//! of the per-round ratios (each pairs runs made seconds apart, which cancels
//! most of this shared VM's drift), with their range.
//! 3. resident memory per idle connection with 10,000 idle connections;
//! 4. server CPU while holding 1,000 idle connections for 5 s;
//! 5. the cross-shard bus: round trip between two shards, p50/p99;
//! 6. a cross-shard `Rpc::call(..).await` against the same round trip made
//!    of two callbacks, on an idle and on a busy pair of shards.
//!
//! Chat fan-out has its own bench (`--bench chat`); `scripts/bench-suite`
//! runs both.

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use torsion_benches::median;
use torsion_cli::load::echo::{EchoLoad, Rate};
use torsion_cli::load::target::LoadTarget;
use torsion_cli::load::{run_echo, Outputs};
use torsion_protocols::Framing;

use torsion_benches::{LOAD_CORE, SERVER_CORE};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Torsion,
    TorsionAsync,
    Tokio,
    Glommio,
    Monoio,
    Twisted,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Torsion => "torsion (1 shard)",
            Kind::TorsionAsync => "torsion-async (1 shard, echo as an async loop)",
            Kind::Tokio => "tokio current-thread",
            Kind::Glommio => "plain glommio loop",
            Kind::Monoio => "monoio (io_uring)",
            Kind::Twisted => "Twisted (epoll)",
        }
    }
}

type Spawned = torsion_tests::ServerProcess;

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
        Kind::TorsionAsync => Command::new(env!("CARGO_BIN_EXE_torsion-async-echo")),
        Kind::Tokio => Command::new(env!("CARGO_BIN_EXE_tokio-echo")),
        Kind::Glommio => Command::new(env!("CARGO_BIN_EXE_glommio-echo")),
        Kind::Monoio => Command::new(env!("CARGO_BIN_EXE_monoio-echo")),
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
    torsion_benches::spawn_peer(cmd)
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
            targets: vec![LoadTarget::plain(addr)],
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
            http: None,
            redis: None,
            websocket: None,
            churn: 0.0,
            batches: false,
        },
        &[LOAD_CORE],
        Arc::new(AtomicBool::new(false)),
        &Outputs::default(),
    )
    .expect("load run")
}

struct Saturated {
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

/// Round trips from a shard on core 0 to one on core 1, `n` of each kind,
/// one at a time: a bus message answered by a message (a callback on each
/// side: what the callback `Rpc` was), and `Rpc::call(..).await` (the
/// serve function answers at once). With `busy`, both shards also run a
/// task that keeps the CPU busy (50 µs of work, then a 5 µs sleep), as
/// other connections would. (p50, p99, p99.9) in µs for each.
fn cross_shard_round_trips(n: u64, busy: bool) -> [(f64, f64, f64); 2] {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::atomic::Ordering;
    use torsion::{Bus, Rpc, RpcMessage};
    type Hist = hdrhistogram::Histogram<u64>;
    let quantiles = |h: &Hist| {
        (
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.value_at_quantile(0.999) as f64 / 1000.0,
        )
    };
    let pings: Bus<(Instant, bool)> = Bus::new(2).unwrap();
    let calls: Bus<RpcMessage<u64, u64>> = Bus::new(2).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let out = torsion::run_on_cores(&[SERVER_CORE, LOAD_CORE], move |shard| {
        let (pings, calls, done) = (pings.clone(), calls.clone(), done.clone());
        async move {
            if busy {
                let done = done.clone();
                torsion::spawn_local(async move {
                    // 50 µs of work, then a pause through the reactor (a
                    // task that only yields would keep the executor from
                    // looking at its completions, and the bus with them).
                    while !done.load(Ordering::Relaxed) {
                        let until = Instant::now() + Duration::from_micros(50);
                        while Instant::now() < until {
                            std::hint::spin_loop();
                        }
                        torsion::Clock::real().sleep(Duration::from_micros(5)).await;
                    }
                })
                .detach();
            }
            // Pings: shard 1 answers each with a pong; shard 0 times them.
            let pong: Rc<RefCell<Option<torsion::oneshot::Sender<()>>>> = Rc::default();
            let handle: Rc<std::cell::OnceCell<torsion::BusHandle<(Instant, bool)>>> =
                Rc::default();
            let (h, p) = (handle.clone(), pong.clone());
            let attached = pings
                .attach(&shard, move |(sent, is_ping)| {
                    if is_ping {
                        if let Some(bus) = h.get() {
                            let _ = bus.send_to(0, (sent, false));
                        }
                    } else if let Some(tx) = p.borrow_mut().take() {
                        tx.send(());
                    }
                })
                .unwrap();
            let _ = handle.set(attached);
            let rpc =
                Rpc::attach(&calls, &shard, |_from, x: u64| std::future::ready(x + 1)).unwrap();
            if shard.id == 1 {
                while !done.load(Ordering::Relaxed) {
                    torsion::Clock::real().sleep(Duration::from_millis(1)).await;
                }
                return None;
            }
            torsion::Clock::real()
                .sleep(Duration::from_millis(100))
                .await;
            let mut by_bus = Hist::new_with_bounds(1, 60_000_000_000, 3).unwrap();
            let mut by_rpc = by_bus.clone();
            for i in 0..n {
                // Interleaved, so both see the same moments of the machine.
                let (tx, rx) = torsion::oneshot::channel();
                *pong.borrow_mut() = Some(tx);
                let t = Instant::now();
                let _ = handle.get().unwrap().send_to(1, (t, true));
                let _ = rx.await;
                let _ = by_bus.record(t.elapsed().as_nanos() as u64);
                let t = Instant::now();
                let answer = rpc.call(1, i).await.unwrap();
                let _ = by_rpc.record(t.elapsed().as_nanos() as u64);
                assert_eq!(answer, i + 1);
            }
            done.store(true, Ordering::Relaxed);
            Some([quantiles(&by_bus), quantiles(&by_rpc)])
        }
    })
    .unwrap();
    out[0].expect("shard 0 measured")
}

/// One run at a fixed offered rate: corrected latency and server CPU.
struct FixedRate {
    p50: f64,
    p99: f64,
    p999: f64,
    cpu_us: f64,
    errors: bool,
}

fn fixed_rate(kind: Kind, rate: f64, secs: u64) -> FixedRate {
    let s = spawn(kind);
    let pid = s.child.id();
    // Warm up at the same rate, then measure with no warm-up inside the run
    // so that the CPU window and the request count cover the same requests.
    load(s.addr, 50, 64, Rate::PerSecond(rate), 1, 0);
    let cpu0 = torsion_benches::pid_cpu_time(pid);
    let r = load(s.addr, 50, 64, Rate::PerSecond(rate), secs, 0);
    let cpu = torsion_benches::pid_cpu_time(pid) - cpu0;
    FixedRate {
        p50: r.corrected.p50_us,
        p99: r.corrected.p99_us,
        p999: r.corrected.p999_us,
        cpu_us: cpu.as_secs_f64() * 1e6 / r.completed.max(1) as f64,
        errors: r.has_errors(),
    }
}

/// Per-round ratios a[i] / b[i].
fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

/// "1.05x (0.98–1.12)": the median and the range of per-round ratios.
fn with_range(rs: &[f64]) -> String {
    let lo = rs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2}x ({lo:.2}–{hi:.2})", median(rs.to_vec()))
}

fn main() {
    if !torsion_benches::two_cores_available() {
        return;
    }
    if std::env::args().any(|a| a == "--calls-only") {
        return cross_shard_calls();
    }
    let secs: u64 = torsion_benches::arg_or("--seconds", 4);
    let rounds: usize = torsion_benches::arg_or("--rounds", 3).max(1);
    let mut kinds = vec![
        Kind::Torsion,
        Kind::TorsionAsync,
        Kind::Tokio,
        Kind::Glommio,
        Kind::Monoio,
    ];
    if twisted_available() {
        kinds.push(Kind::Twisted);
    } else {
        println!("note: Twisted is not installed (scripts/bench-suite installs it); its rows are skipped");
    }

    println!("\n1. echo, saturated (closed loop, pipeline 1), {secs} s per run, median of {rounds} rounds; server core {SERVER_CORE}, load core {LOAD_CORE}");
    println!(
        "{:<20} {:>9} {:>9} {:>11} {:>14} {:>20} {:>14}",
        "case",
        "server",
        "req/s",
        "CPU µs/req",
        "req/s ÷ tokio",
        "CPU ÷ tokio (range)",
        "CPU ÷ glommio"
    );
    let mut tokio_rps_50x64 = 0.0;
    // torsion's async echo ÷ its callback echo, CPU per request, per round.
    let mut async_vs_callback: Vec<(String, Vec<f64>)> = Vec::new();
    for (conns, size) in [(50usize, 512usize), (8, 512), (50, 64)] {
        // runs[round][kind]
        let runs: Vec<Vec<Saturated>> = (0..rounds)
            .map(|_| {
                kinds
                    .iter()
                    .map(|&k| saturated(k, conns, size, secs))
                    .collect()
            })
            .collect();
        let col = |k: usize, f: &dyn Fn(&Saturated) -> f64| -> Vec<f64> {
            runs.iter().map(|round| f(&round[k])).collect()
        };
        let tokio_i = kinds.iter().position(|&k| k == Kind::Tokio).unwrap();
        let glommio_i = kinds.iter().position(|&k| k == Kind::Glommio).unwrap();
        let callback_i = kinds.iter().position(|&k| k == Kind::Torsion).unwrap();
        let async_i = kinds.iter().position(|&k| k == Kind::TorsionAsync).unwrap();
        async_vs_callback.push((
            format!("saturated, {conns} conns × {size} B"),
            ratios(
                &col(async_i, &|r| r.cpu_us),
                &col(callback_i, &|r| r.cpu_us),
            ),
        ));
        if (conns, size) == (50, 64) {
            tokio_rps_50x64 = median(col(tokio_i, &|r| r.rps));
        }
        for (i, kind) in kinds.iter().enumerate() {
            let rps_ratio = median(ratios(&col(i, &|r| r.rps), &col(tokio_i, &|r| r.rps)));
            let cpu_ratios = ratios(&col(i, &|r| r.cpu_us), &col(tokio_i, &|r| r.cpu_us));
            let vs_glommio = median(ratios(
                &col(i, &|r| r.cpu_us),
                &col(glommio_i, &|r| r.cpu_us),
            ));
            println!(
                "{:<20} {:>9} {:>9.0} {:>11.2} {:>13.2}x {:>20} {:>13.2}x",
                format!("{conns} conns × {size} B"),
                kind.name().split(' ').next().unwrap(),
                median(col(i, &|r| r.rps)),
                median(col(i, &|r| r.cpu_us)),
                rps_ratio,
                with_range(&cpu_ratios),
                vs_glommio
            );
        }
    }

    let rate = tokio_rps_50x64 * 0.5;
    println!("\n2. echo at a fixed {rate:.0} req/s (50% of tokio's saturated rate), 50 conns × 64 B, {secs} s per run, median of {rounds} rounds; latency corrected for coordinated omission (µs)");
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>12} {:>11} {:>20}",
        "server", "p50", "p99", "p99.9", "p99 ÷ tokio", "CPU µs/req", "CPU ÷ tokio (range)"
    );
    // lat[round][kind]
    let lat: Vec<Vec<FixedRate>> = (0..rounds)
        .map(|_| kinds.iter().map(|&k| fixed_rate(k, rate, secs)).collect())
        .collect();
    let tokio_i = kinds.iter().position(|&k| k == Kind::Tokio).unwrap();
    let col = |k: usize, f: &dyn Fn(&FixedRate) -> f64| -> Vec<f64> {
        lat.iter().map(|round| f(&round[k])).collect()
    };
    let callback_i = kinds.iter().position(|&k| k == Kind::Torsion).unwrap();
    let async_i = kinds.iter().position(|&k| k == Kind::TorsionAsync).unwrap();
    async_vs_callback.push((
        format!("fixed {rate:.0} req/s, 50 conns × 64 B"),
        ratios(
            &col(async_i, &|r| r.cpu_us),
            &col(callback_i, &|r| r.cpu_us),
        ),
    ));
    for (i, kind) in kinds.iter().enumerate() {
        let errors = lat.iter().any(|round| round[i].errors);
        println!(
            "{:<22} {:>9.1} {:>9.1} {:>9.1} {:>11.2}x {:>11.2} {:>20}{}",
            kind.name(),
            median(col(i, &|r| r.p50)),
            median(col(i, &|r| r.p99)),
            median(col(i, &|r| r.p999)),
            median(ratios(&col(i, &|r| r.p99), &col(tokio_i, &|r| r.p99))),
            median(col(i, &|r| r.cpu_us)),
            with_range(&ratios(
                &col(i, &|r| r.cpu_us),
                &col(tokio_i, &|r| r.cpu_us)
            )),
            if errors { "  (errors!)" } else { "" }
        );
    }

    println!("\n   torsion's echo as an async loop ÷ as a callback Protocol, server CPU per request (median of the per-round ratios, range)");
    for (case, rs) in &async_vs_callback {
        println!("   {case:<40} {}", with_range(rs));
    }

    let limit = raise_own_fd_limit();
    let idle_n = 10_000usize.min(limit.saturating_sub(200) as usize);
    println!("\n3. resident memory per idle connection, {idle_n} idle connections (KiB)");
    let mem: Vec<(Kind, f64)> = [
        Kind::Torsion,
        Kind::TorsionAsync,
        Kind::Tokio,
        Kind::Glommio,
        Kind::Monoio,
    ]
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
    for k in [Kind::Torsion, Kind::Tokio, Kind::Glommio, Kind::Monoio] {
        println!(
            "{:<22} {:>8.1} ms",
            k.name(),
            idle_cpu(k, 1000, 5).as_secs_f64() * 1000.0
        );
    }

    println!("\n5. cross-shard bus round trip (shard on core 0 ⇄ shard on core 1), 20,000 pings");
    let (p50, p99, p999) = bus_round_trip(20_000);
    println!("p50 {p50:.1} µs   p99 {p99:.1} µs   p99.9 {p999:.1} µs");

    cross_shard_calls();
}

/// Figure 6 (alone with `--calls-only`).
fn cross_shard_calls() {
    println!("\n6. a call to another shard: Rpc::call(..).await against a message answered by a message (callbacks), 20,000 of each, interleaved (µs)");
    for busy in [false, true] {
        let [bus, rpc] = cross_shard_round_trips(20_000, busy);
        let pair = if busy { "busy pair" } else { "idle pair" };
        println!(
            "{pair:<10} callbacks p50 {:.1} p99 {:.1} p99.9 {:.1}   Rpc::call().await p50 {:.1} p99 {:.1} p99.9 {:.1}   ÷ callbacks p50 {:.2}x p99 {:.2}x",
            bus.0, bus.1, bus.2, rpc.0, rpc.1, rpc.2, rpc.0 / bus.0, rpc.1 / bus.1
        );
    }
}
