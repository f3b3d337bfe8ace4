//! Is the load generator the bottleneck? Its closed-loop maximum from one
//! load core against a plain thread-per-connection blocking client (write,
//! then read, per connection per thread — the design of rust_echo_bench),
//! in the same run, against the same torsion echo server.
//!
//! Server: 1 shard on core 0. Load: core 1 for both clients. With one
//! server core both clients can saturate the server, so requests/s alone
//! would measure the server; the figure that says whether the *client* is
//! the bottleneck is its capacity per load core: requests/s divided by the
//! share of a core the client used (process CPU minus the server thread's).
//! `cargo bench -p torsion-benches --bench loadgen [-- --connections 50 --size 64 --seconds 5]`
//! Goal (issue 5): the generator does at least 1.5× the blocking client's
//! requests/s.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use torsion::Server;
use torsion_benches::{process_cpu_time, thread_cpu_time};
use torsion_cli::load::echo::{EchoLoad, Rate};
use torsion_cli::load::{run_echo, Outputs};
use torsion_protocols::{EchoFactory, Framing};

fn arg(name: &str, default: u64) -> u64 {
    torsion_benches::arg(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn blocking_client(addr: SocketAddr, connections: usize, size: usize, secs: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..connections)
        .map(|i| {
            let (done, stop) = (done.clone(), stop.clone());
            std::thread::spawn(move || {
                core_affinity::set_for_current(core_affinity::CoreId { id: 1 });
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let payload: Vec<u8> = (0..size).map(|j| (i + j) as u8).collect();
                let mut back = vec![0u8; size];
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    s.write_all(&payload).unwrap();
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, payload);
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let connections = arg("--connections", 50) as usize;
    let size = arg("--size", 64) as usize;
    let secs = arg("--seconds", 5);
    let cores = torsion::cores::allowed_cores().unwrap();
    if !cores.contains(&0) || !cores.contains(&1) {
        eprintln!("needs cores 0 and 1; skipping");
        return;
    }
    let server = Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .unwrap()
        .cores(vec![0])
        .serve(|_| EchoFactory)
        .unwrap();
    let tid = server.stats()[0].thread_id;
    let addr = server.local_addr();

    let (cpu0, proc0) = (thread_cpu_time(tid), process_cpu_time());
    let blocking = blocking_client(addr, connections, size, secs);
    let server_cpu = thread_cpu_time(tid) - cpu0;
    let blocking_server_cpu = server_cpu.as_secs_f64() / secs as f64;
    let blocking_client_cpu = (process_cpu_time() - proc0)
        .saturating_sub(server_cpu)
        .as_secs_f64()
        / secs as f64;

    // The generator's closed loop on load core 1, `pipeline` in flight per connection.
    let generator = |pipeline: usize| {
        run_echo(
            EchoLoad {
                target: addr,
                connections,
                rate: Rate::Max,
                pipeline,
                duration: Duration::from_secs(secs),
                warmup: Duration::from_secs(1),
                size,
                framing: Framing::Raw,
                connect_timeout: Duration::from_secs(3),
                drain: Duration::from_secs(3),
                udp: false,
                tls: None,
            },
            &[1],
            Arc::new(AtomicBool::new(false)),
            &Outputs::default(),
        )
        .unwrap()
    };
    let pipelined = generator(8);
    assert!(!pipelined.has_errors(), "{:?}", pipelined.errors);

    let (cpu0, proc0) = (thread_cpu_time(tid), process_cpu_time());
    let report = generator(1);
    let server_cpu = thread_cpu_time(tid) - cpu0;
    let gen_server_cpu = server_cpu.as_secs_f64() / (secs + 1) as f64;
    let gen_client_cpu = (process_cpu_time() - proc0)
        .saturating_sub(server_cpu)
        .as_secs_f64()
        / (secs + 1) as f64;
    assert!(!report.has_errors(), "{:?}", report.errors);
    server.stop().unwrap();

    println!();
    println!("closed loop, {connections} connections, {size} B, {secs} s; server: torsion 1 shard on core 0; load on core 1");
    let gen_capacity = report.achieved_rate / gen_client_cpu.max(1e-6);
    let blocking_capacity = blocking / blocking_client_cpu.max(1e-6);
    println!(
        "{:<44} {:>11} {:>10} {:>10} {:>16}",
        "client", "req/s", "server %", "client %", "req/s per core"
    );
    println!(
        "{:<44} {:>11.0} {:>9.0}% {:>9.0}% {:>16.0}",
        "torsion load (1 load shard)",
        report.achieved_rate,
        gen_server_cpu * 100.0,
        gen_client_cpu * 100.0,
        gen_capacity
    );
    println!(
        "{:<44} {:>11.0} {:>9.0}% {:>9.0}% {:>16.0}",
        format!("blocking, thread per connection ({connections})"),
        blocking,
        blocking_server_cpu * 100.0,
        blocking_client_cpu * 100.0,
        blocking_capacity
    );
    println!(
        "{:<44} {:>11.0}",
        "torsion load, --pipeline 8 (1 load shard)", pipelined.achieved_rate
    );
    println!(
        "generator ÷ blocking: pipeline 1: requests/s {:.2}x, per client core {:.2}x; \
         pipeline 8 (its closed-loop maximum): requests/s {:.2}x (goal ≥ 1.5x)",
        report.achieved_rate / blocking,
        gen_capacity / blocking_capacity,
        pipelined.achieved_rate / blocking
    );
}
