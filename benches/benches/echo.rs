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

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use torsion::Server;
use torsion_benches::{
    arg_or, closed_loop_echo, echo_until_closed, spawn_tokio_server, thread_cpu_time,
    two_cores_available, SERVER_CORE,
};
use torsion_protocols::EchoFactory;

#[derive(Clone, Copy)]
struct Args {
    connections: usize,
    size: usize,
    seconds: u64,
}

fn args() -> Args {
    Args {
        connections: arg_or("--connections", 8),
        size: arg_or("--size", 64),
        seconds: arg_or("--seconds", 5),
    }
}

/// Runs the closed-loop clients; returns completed round trips.
fn load(addr: SocketAddr, a: &Args) -> u64 {
    closed_loop_echo(addr, a.connections, a.size, Duration::from_secs(a.seconds)).0
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
    let (addr, tid) = spawn_tokio_server(SERVER_CORE, |listener| async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            sock.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                echo_until_closed!(sock, 64 * 1024)
            });
        }
    });
    measure(addr, tid, a)
}

fn main() {
    let a = args();
    if !two_cores_available() {
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
