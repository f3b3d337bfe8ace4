//! Echo round trips: torsion (1 shard) against a tokio current-thread echo
//! server, in the same run.
//!
//! Server pinned to core 0, clients pinned to core 1: `--connections` plain
//! blocking client threads, each writing `--size` bytes and reading them
//! back, closed loop, for `--seconds`. Prints requests/s and the server
//! thread's CPU microseconds per request (utime+stime from /proc), and
//! torsion ÷ tokio ratios. A quick figure; the full suite (latency at a
//! fixed rate, chat, memory) is a later issue.
//!
//! `cargo bench -p torsion-benches --bench echo [-- --connections 8 --size 64 --seconds 5]`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use torsion::Server;
use torsion_benches::{gettid, thread_cpu_time};
use torsion_protocols::EchoFactory;

const SERVER_CORE: usize = 0;
const CLIENT_CORE: usize = 1;

struct Args {
    connections: usize,
    size: usize,
    seconds: u64,
}

fn args() -> Args {
    let mut a = Args {
        connections: 8,
        size: 64,
        seconds: 5,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (argv[i].as_str(), value) {
            ("--connections", Some(v)) => a.connections = v as usize,
            ("--size", Some(v)) => a.size = v as usize,
            ("--seconds", Some(v)) => a.seconds = v,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn pin(core: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        eprintln!("warning: could not pin to core {core}");
    }
}

/// Runs the closed-loop clients; returns completed round trips.
fn load(addr: SocketAddr, a: &Args) -> u64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..a.connections)
        .map(|i| {
            let (done, stop, size) = (done.clone(), stop.clone(), a.size);
            std::thread::spawn(move || {
                pin(CLIENT_CORE);
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
    std::thread::sleep(Duration::from_secs(a.seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed)
}

struct Result {
    rps: f64,
    cpu_us_per_req: f64,
}

fn measure(addr: SocketAddr, server_tid: u64, a: &Args) -> Result {
    // Warm up, then measure.
    load(addr, &Args { seconds: 1, ..*a });
    let cpu0 = thread_cpu_time(server_tid);
    let t0 = Instant::now();
    let n = load(addr, a);
    let elapsed = t0.elapsed();
    let cpu = thread_cpu_time(server_tid) - cpu0;
    Result {
        rps: n as f64 / elapsed.as_secs_f64(),
        cpu_us_per_req: cpu.as_secs_f64() * 1e6 / n as f64,
    }
}

fn torsion_run(a: &Args) -> Result {
    let server = Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .cores(vec![SERVER_CORE])
        .serve(|_| EchoFactory)
        .unwrap();
    let tid = server.stats()[0].thread_id;
    let r = measure(server.local_addr(), tid, a);
    server.stop().unwrap();
    r
}

fn tokio_run(a: &Args) -> Result {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        pin(SERVER_CORE);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((listener.local_addr().unwrap(), gettid())).unwrap();
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                sock.set_nodelay(true).unwrap();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if sock.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
    });
    let (addr, tid) = rx.recv().unwrap();
    measure(addr, tid, a)
}

fn main() {
    let a = args();
    if std::env::args().any(|x| x == "--list") {
        return;
    }
    let cores = torsion::cores::allowed_cores().unwrap();
    if !cores.contains(&SERVER_CORE) || !cores.contains(&CLIENT_CORE) {
        eprintln!("needs cores 0 and 1; skipping");
        return;
    }
    let t = torsion_run(&a);
    let k = tokio_run(&a);
    println!();
    println!(
        "echo, 1 server core, {} blocking client connections on core 1, {} B, {} s closed loop",
        a.connections, a.size, a.seconds
    );
    println!(
        "{:<28} {:>12} {:>16}",
        "server", "requests/s", "server CPU µs/req"
    );
    println!(
        "{:<28} {:>12.0} {:>16.2}",
        "torsion (1 shard)", t.rps, t.cpu_us_per_req
    );
    println!(
        "{:<28} {:>12.0} {:>16.2}",
        "tokio current-thread", k.rps, k.cpu_us_per_req
    );
    println!(
        "torsion ÷ tokio: requests/s {:.2}x, CPU per request {:.2}x (lower is better)",
        t.rps / k.rps,
        t.cpu_us_per_req / k.cpu_us_per_req
    );
}
