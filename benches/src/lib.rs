//! Shared pieces of torsion's benchmarks: the ratio table every benchmark
//! prints, comparing torsion with a peer measured in the same run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use torsion_tests::cpu_time_from_stat;

/// One row of a comparison: torsion's and the peer's figure for one case.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// What was measured.
    pub case: String,
    /// torsion's throughput, bytes per second.
    pub torsion: f64,
    /// The peer's throughput, bytes per second.
    pub peer: f64,
    /// The peer's name.
    pub peer_name: String,
}

/// Throughput of `f` over `bytes` bytes per call: runs it in interleaved
/// rounds with `g` (so both see the same machine state) and returns the
/// median bytes/s of each.
pub fn interleaved_throughput(
    bytes: usize,
    rounds: usize,
    mut f: impl FnMut(),
    mut g: impl FnMut(),
) -> (f64, f64) {
    let mut a = Vec::with_capacity(rounds);
    let mut b = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        a.push(time_once(&mut f));
        b.push(time_once(&mut g));
    }
    (rate(bytes, median(a)), rate(bytes, median(b)))
}

fn time_once(f: &mut impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// Runs a database pool's reads (`pooled`, reads/s) against the same
/// reads by the database's own client called directly (`direct`, reads/s,
/// named `direct_name`) in `rounds` interleaved rounds, and prints each
/// round, the medians with their ranges, the ratio and what the pool adds
/// per query (1/pool rate − 1/direct rate, per thread of `threads`).
pub fn report_pool_against_direct(
    direct_name: &str,
    threads: usize,
    rounds: usize,
    mut direct: impl FnMut() -> f64,
    mut pooled: impl FnMut() -> f64,
) {
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        d.push(direct());
        p.push(pooled());
        println!(
            "  round {}: {direct_name} direct {:>10.0} reads/s, through the pool {:>10.0} reads/s",
            r + 1,
            d[r],
            p[r]
        );
    }
    let (dm, pm) = (median(d.clone()), median(p.clone()));
    let range = |xs: &[f64]| {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(0.0, f64::max);
        format!("{lo:.0}–{hi:.0}")
    };
    println!(
        "  median: direct {dm:.0} [{}], pool {pm:.0} [{}] reads/s; pool ÷ direct = {:.2}×",
        range(&d),
        range(&p),
        pm / dm
    );
    println!(
        "  per query (per thread): direct {:.2} µs, pool {:.2} µs: the pool adds {:.2} µs",
        threads as f64 / dm * 1e6,
        threads as f64 / pm * 1e6,
        threads as f64 * (1.0 / pm - 1.0 / dm) * 1e6
    );
}

/// Reads/s of `threads` threads reading for `secs` with a database's own
/// client: `read_until(t, stop)` is thread `t`'s whole life (open a
/// connection, read keys from `t` on until `stop` is set) and returns how
/// many reads it made.
pub fn direct_reads_per_second<ReadUntil>(threads: usize, secs: f64, read_until: ReadUntil) -> f64
where
    ReadUntil: Fn(usize, &std::sync::atomic::AtomicBool) -> u64 + Send + Sync + 'static,
{
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let read_until = std::sync::Arc::new(read_until);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (stop, read_until) = (stop.clone(), read_until.clone());
            std::thread::spawn(move || read_until(t, &stop))
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / secs
}

/// Reads/s through a database pool, awaited on one torsion executor with
/// `in_flight` calls outstanding for `secs`: `read(k)` is the call for key
/// `k` (keys stride through `0..keys`).
pub fn pool_reads_per_second<R, Read>(secs: f64, in_flight: usize, keys: i64, read: Read) -> f64
where
    R: 'static,
    Read: Fn(i64) -> torsion_db::DbCall<R> + Clone + 'static,
{
    torsion::block_on(async move {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let done = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let workers: Vec<_> = (0..in_flight)
            .map(|w| {
                let (read, done) = (read.clone(), done.clone());
                torsion::spawn_local(async move {
                    let mut k = w as i64;
                    while Instant::now() < end {
                        std::hint::black_box(read(k % keys).await.unwrap());
                        k += 7919;
                        done.set(done.get() + 1);
                    }
                })
            })
            .collect();
        for w in workers {
            w.await;
        }
        done.get() as f64 / secs
    })
    .unwrap()
}

/// The median of `v` (for an even count, the upper of the two middle
/// values). `v` must not be empty.
pub fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// The value following `name` on the bench's command line
/// (`cargo bench … -- --seconds 5`), if any.
pub fn arg(name: &str) -> Option<String> {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .cloned()
}

/// The value following `name` parsed as a `T`, or `default` (absent or
/// not a `T`).
pub fn arg_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Starts a tokio current-thread runtime on a thread of its own pinned to
/// `core`, binds 127.0.0.1:0 there and runs `serve` with the listener.
/// Returns the listening address and the runtime thread's id (for its CPU
/// time).
pub fn spawn_tokio_server<F, Fut>(core: usize, serve: F) -> (SocketAddr, u64)
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        pin(core);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((listener.local_addr().unwrap(), gettid())).unwrap();
            serve(listener).await
        });
    });
    rx.recv().unwrap()
}

fn rate(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64()
}

/// Prints the comparison table (throughput in MiB/s and torsion ÷ peer).
pub fn print_table(title: &str, rows: &[Comparison]) {
    println!();
    println!("{title}");
    println!(
        "{:<28} {:>14} {:>14}  {:<34} {:>7}",
        "case", "torsion MiB/s", "peer MiB/s", "peer", "ratio"
    );
    for r in rows {
        println!(
            "{:<28} {:>14.0} {:>14.0}  {:<34} {:>6.2}x",
            r.case,
            r.torsion / (1024.0 * 1024.0),
            r.peer / (1024.0 * 1024.0),
            r.peer_name,
            r.torsion / r.peer
        );
    }
}

/// CPU time (user + system) a thread of this process has used, from
/// `/proc/self/task/TID/stat`.
pub fn thread_cpu_time(tid: u64) -> Duration {
    cpu_time_from_stat(&format!("/proc/self/task/{tid}/stat"))
}

/// CPU time (user + system) another process has used, from
/// `/proc/PID/stat`.
pub fn pid_cpu_time(pid: u32) -> Duration {
    cpu_time_from_stat(&format!("/proc/{pid}/stat"))
}

/// The calling thread's Linux thread id.
pub fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

/// CPU time (user + system) the whole process has used, from
/// `/proc/self/stat`.
pub fn process_cpu_time() -> Duration {
    cpu_time_from_stat("/proc/self/stat")
}

/// The server's core in every two-core benchmark.
pub const SERVER_CORE: usize = 0;
/// The load's core in every two-core benchmark.
pub const LOAD_CORE: usize = 1;

/// The core a peer server binary pins itself to: its first argument
/// (`tokio-echo CORE`), 0 when absent or not a number.
pub fn peer_core() -> usize {
    std::env::args()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Whether a two-core benchmark runs: not when cargo only lists benches
/// (`--list`), and not without cores 0 and 1 (said on stderr).
pub fn two_cores_available() -> bool {
    if std::env::args().any(|a| a == "--list") {
        return false;
    }
    let cores = torsion::cores::allowed_cores().unwrap_or_default();
    if !cores.contains(&SERVER_CORE) || !cores.contains(&LOAD_CORE) {
        eprintln!("needs cores 0 and 1; skipping");
        return false;
    }
    true
}

/// Pins the calling thread to `core` (a warning if it cannot).
pub fn pin(core: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        eprintln!("warning: could not pin to core {core}");
    }
}

/// Closed-loop echo clients: `connections` plain blocking threads pinned to
/// [`LOAD_CORE`], each writing `size` bytes and reading them back (checked)
/// until `duration` has passed. Returns the completed round trips and the
/// time from the clients' start to their end.
pub fn closed_loop_echo(
    addr: SocketAddr,
    connections: usize,
    size: usize,
    duration: Duration,
) -> (u64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..connections)
        .map(|i| {
            let (done, stop) = (done.clone(), stop.clone());
            std::thread::spawn(move || {
                pin(LOAD_CORE);
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let payload: Vec<u8> = (0..size).map(|j| (i + j) as u8).collect();
                let mut back = vec![0u8; size];
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    s.write_all(&payload).unwrap();
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, payload, "echo corrupted data");
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    (done.load(Ordering::Relaxed), start.elapsed())
}

/// The peer servers' echo loop for one connection (tokio's and glommio's
/// alike: `read` into a buffer of `$size` bytes, `write_all` it back, until
/// EOF or an error). `$sock` needs the runtime's read/write extension
/// traits in scope.
#[macro_export]
macro_rules! echo_until_closed {
    ($sock:expr, $size:expr) => {{
        let mut buf = vec![0u8; $size];
        loop {
            match $sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if $sock.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    }};
}

/// Makes `cmd`'s process run on [`SERVER_CORE`], with room for 65,536
/// descriptors.
pub fn pin_to_server_core(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
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
}

/// Starts a peer server process pinned to [`SERVER_CORE`] (with room for
/// 65,536 descriptors) that prints its port on its first stdout line, and
/// returns it (killed when dropped).
pub fn spawn_peer(mut cmd: std::process::Command) -> torsion_tests::ServerProcess {
    use std::io::BufRead;
    cmd.stdout(std::process::Stdio::piped())
        .env("RUST_LOG", "warn");
    pin_to_server_core(&mut cmd);
    let mut child = cmd.spawn().expect("spawn server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the port line");
    let port: u16 = line.trim().parse().expect("server printed its port");
    torsion_tests::ServerProcess {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        shards: 1,
    }
}

/// The `main` of a tokio peer binary: pins to [`peer_core`], runs a tokio
/// current-thread runtime, binds 127.0.0.1:0, prints the port and hands the
/// listener to `serve`.
pub fn run_tokio_peer<F, Fut>(serve: F)
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    pin(peer_core());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("addr").port());
        serve(listener).await
    });
}
