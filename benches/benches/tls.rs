//! What TLS costs: torsion's echo over `tls:` against the same echo over
//! plain `tcp:`, in the same run — server CPU µs per request and requests/s,
//! server on core 0 (1 shard), `torsion load` on core 1 (50 connections,
//! 64 B, closed loop; TLS 1.3 via rustls with the ring provider, ECDSA P-256
//! certificate made at run time).
//!
//! `cargo bench -p torsion-benches --bench tls [-- --seconds N]`

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use torsion::Server;
use torsion_benches::thread_cpu_time;
use torsion_cli::load::echo::{EchoLoad, Rate};
use torsion_cli::load::io::TlsClient;
use torsion_cli::load::target::LoadTarget;
use torsion_cli::load::{run_echo, Outputs};
use torsion_protocols::{EchoFactory, Framing};

fn main() {
    if !torsion_benches::two_cores_available() {
        return;
    }
    let secs: u64 = torsion_benches::arg_or("--seconds", 4);
    let certs = torsion_tests::Certs::new("bench");

    let mut rows = Vec::new();
    for tls in [false, true] {
        let endpoint = if tls {
            certs.endpoint(&certs.key)
        } else {
            "tcp:0:interface=127.0.0.1".to_string()
        };
        let server = Server::builder()
            .listen_on(&endpoint)
            .unwrap()
            .cores(vec![0])
            .serve(|_| EchoFactory)
            .unwrap();
        let tid = server.stats()[0].thread_id;
        let client = tls.then(|| TlsClient {
            config: torsion::tls::client_config(Some(&certs.cert), false).unwrap(),
            server_name: rustls::pki_types::ServerName::try_from("localhost").unwrap(),
        });
        let load = |secs| EchoLoad {
            targets: vec![LoadTarget {
                tls: client.clone(),
                ..LoadTarget::plain(server.local_addr())
            }],
            connections: 50,
            rate: Rate::Max,
            pipeline: 1,
            duration: Duration::from_secs(secs),
            warmup: Duration::ZERO,
            size: 64,
            framing: Framing::Raw,
            connect_timeout: Duration::from_secs(5),
            drain: Duration::from_secs(3),
            udp: false,
            http: None,
            redis: None,
            websocket: None,
            churn: 0.0,
            batches: false,
        };
        let stop = Arc::new(AtomicBool::new(false));
        run_echo(load(1), &[1], stop.clone(), &Outputs::default()).unwrap();
        let cpu0 = thread_cpu_time(tid);
        let r = run_echo(load(secs), &[1], stop, &Outputs::default()).unwrap();
        let cpu = thread_cpu_time(tid) - cpu0;
        assert!(!r.has_errors(), "{:?}", r.errors);
        rows.push((
            if tls {
                "tls (rustls, TLS 1.3)"
            } else {
                "plain tcp"
            },
            r.achieved_rate,
            cpu.as_secs_f64() * 1e6 / r.completed.max(1) as f64,
            r.corrected.p99_us,
        ));
        server.stop().unwrap();
    }
    println!();
    println!("echo over TLS vs plain TCP: 1 shard on core 0, load on core 1, 50 conns × 64 B, closed loop, {secs} s");
    println!(
        "{:<24} {:>10} {:>12} {:>10}",
        "server", "req/s", "CPU µs/req", "p99 µs"
    );
    for (name, rps, cpu, p99) in &rows {
        println!("{name:<24} {rps:>10.0} {cpu:>12.2} {p99:>10.1}");
    }
    println!(
        "TLS ÷ plain: CPU per request {:.2}x, requests/s {:.2}x",
        rows[1].2 / rows[0].2,
        rows[1].1 / rows[0].1
    );
}
