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

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use torsion::Server;
use torsion_benches::{closed_loop_echo, process_cpu_time, thread_cpu_time, two_cores_available};
use torsion_cli::load::echo::{EchoLoad, Rate};
use torsion_cli::load::target::LoadTarget;
use torsion_cli::load::{run_echo, Outputs};
use torsion_protocols::{EchoFactory, Framing};

use torsion_benches::arg_or as arg;

/// The blocking client's requests/s.
fn blocking_client(addr: SocketAddr, connections: usize, size: usize, secs: u64) -> f64 {
    let (done, elapsed) = closed_loop_echo(addr, connections, size, Duration::from_secs(secs));
    done as f64 / elapsed.as_secs_f64()
}

fn main() {
    if !two_cores_available() {
        return;
    }
    let connections = arg("--connections", 50) as usize;
    let size = arg("--size", 64) as usize;
    let secs = arg("--seconds", 5);
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
                targets: vec![LoadTarget::plain(addr)],
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
                http: None,
                redis: None,
                websocket: None,
                churn: 0.0,
                batches: false,
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
