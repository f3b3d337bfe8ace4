//! HTTP/1.1 plaintext, side by side: torsion (`torsion-http`: `serve http`'s
//! route on one shard), hyper 1.x on a tokio current-thread runtime
//! (`hyper-http`, built as hyper's examples: `http1::Builder` with
//! `pipeline_flush`, `TCP_NODELAY`) and Twisted's `twisted.web.server.Site`
//! on epoll (`peers/twisted_web.py`; skipped with a note when `import
//! twisted` fails) — each a process pinned to core 0, loaded by `wrk -t1`
//! pinned to core 1, `GET /plaintext`, in the same run.
//!
//! Scenarios: 8 and 64 connections one request at a time, and 64
//! connections with 16 requests pipelined on each (wrk's pipeline script).
//! Rounds are interleaved (each round runs every scenario on every server,
//! the servers' order rotating), and each figure is the median of the
//! rounds with its range. For each server: requests/s and server CPU
//! microseconds per request (the process's utime+stime from `/proc` over
//! the run); for torsion, its CPU per request ÷ hyper's and ÷ Twisted's per
//! round. wrk's own errors (socket errors, non-2xx) are printed; a run with
//! any is marked.
//!
//! `cargo bench -p torsion-benches --bench http [-- --seconds 4 --rounds 3]`
//! (needs `wrk`: `apt-get install wrk`).

use std::process::Command;

use torsion_benches::{median, spawn_peer, LOAD_CORE};
use torsion_tests::{process_cpu, ServerProcess};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Torsion,
    Hyper,
    Twisted,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Torsion => "torsion (1 shard)",
            Kind::Hyper => "hyper 1.x (tokio current-thread)",
            Kind::Twisted => "Twisted web (epoll)",
        }
    }
}

fn spawn(kind: Kind) -> ServerProcess {
    let core = torsion_benches::SERVER_CORE.to_string();
    let cmd = match kind {
        Kind::Torsion => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_torsion-http"));
            c.arg(&core);
            c
        }
        Kind::Hyper => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_hyper-http"));
            c.arg(&core);
            c
        }
        Kind::Twisted => {
            let mut c = Command::new("python3");
            c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/peers/twisted_web.py"));
            c
        }
    };
    spawn_peer(cmd)
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    connections: usize,
    pipeline: usize,
}

impl Scenario {
    fn label(self) -> String {
        if self.pipeline > 1 {
            format!("{} conns × {} pipelined", self.connections, self.pipeline)
        } else {
            format!("{} conns", self.connections)
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Run {
    requests_per_sec: f64,
    cpu_us_per_request: f64,
    errors: bool,
}

const PIPELINE_LUA: &str = r#"
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, "/plaintext")
  end
  req = table.concat(r)
end
request = function()
  return req
end
"#;

fn wrk(server: &ServerProcess, scenario: Scenario, secs: u64, script: &std::path::Path) -> Run {
    let url = format!("http://{}/plaintext", server.addr);
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &LOAD_CORE.to_string(), "wrk", "-t1"])
        .arg(format!("-c{}", scenario.connections))
        .arg(format!("-d{secs}s"));
    if scenario.pipeline > 1 {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(&url);
    if scenario.pipeline > 1 {
        cmd.args(["--", &scenario.pipeline.to_string()]);
    }
    let pid = server.child.id();
    let before = process_cpu(pid);
    let out = cmd.output().expect("run wrk");
    let cpu = process_cpu(pid) - before;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let requests: f64 = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    let rps: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let errors =
        !out.status.success() || text.contains("Socket errors") || text.contains("Non-2xx");
    if errors {
        eprintln!("wrk reported errors against {url}:\n{text}");
    }
    Run {
        requests_per_sec: rps,
        cpu_us_per_request: if requests > 0.0 {
            cpu.as_secs_f64() * 1e6 / requests
        } else {
            f64::NAN
        },
        errors,
    }
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn main() {
    if !torsion_benches::two_cores_available() {
        return;
    }
    if !Command::new("sh")
        .args(["-c", "command -v wrk"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("the HTTP bench needs wrk (apt-get install wrk); skipping");
        return;
    }
    let secs: u64 = torsion_benches::arg_or("--seconds", 4);
    let rounds: usize = torsion_benches::arg_or("--rounds", 3);
    let mut kinds = vec![Kind::Torsion, Kind::Hyper];
    if Command::new("python3")
        .args(["-c", "import twisted"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        kinds.push(Kind::Twisted);
    } else {
        eprintln!(
            "Twisted is not importable (python3 -m pip install twisted): its column is skipped"
        );
    }
    let scenarios = [
        Scenario {
            connections: 8,
            pipeline: 1,
        },
        Scenario {
            connections: 64,
            pipeline: 1,
        },
        Scenario {
            connections: 64,
            pipeline: 16,
        },
    ];
    let script =
        std::env::temp_dir().join(format!("torsion-wrk-pipeline-{}.lua", std::process::id()));
    std::fs::write(&script, PIPELINE_LUA).expect("write the wrk script");
    let servers: Vec<(Kind, ServerProcess)> = kinds.iter().map(|&k| (k, spawn(k))).collect();
    // Warm-up: every server, every scenario, once, for a second.
    for (_, server) in &servers {
        for &s in &scenarios {
            let _ = wrk(server, s, 1, &script);
        }
    }
    // results[scenario][server] = runs
    let mut results = vec![vec![Vec::<Run>::new(); servers.len()]; scenarios.len()];
    for round in 0..rounds {
        for (si, &scenario) in scenarios.iter().enumerate() {
            for k in 0..servers.len() {
                let i = (k + round) % servers.len();
                let run = wrk(&servers[i].1, scenario, secs, &script);
                println!(
                    "round {} {:<24} {:<34} {:>10.0} req/s {:>7.2} µs CPU/request{}",
                    round + 1,
                    scenario.label(),
                    servers[i].0.name(),
                    run.requests_per_sec,
                    run.cpu_us_per_request,
                    if run.errors {
                        "  (wrk reported errors)"
                    } else {
                        ""
                    }
                );
                results[si][i].push(run);
            }
        }
    }
    let _ = std::fs::remove_file(&script);
    println!();
    println!(
        "HTTP/1.1 GET /plaintext, wrk -t1 on core {LOAD_CORE}, server on core {}, {secs} s per run, medians of {rounds} interleaved rounds (ranges)",
        torsion_benches::SERVER_CORE
    );
    for (si, scenario) in scenarios.iter().enumerate() {
        println!("\n{}", scenario.label());
        for (i, (kind, _)) in servers.iter().enumerate() {
            let rps: Vec<f64> = results[si][i].iter().map(|r| r.requests_per_sec).collect();
            let cpu: Vec<f64> = results[si][i]
                .iter()
                .map(|r| r.cpu_us_per_request)
                .collect();
            let (rlo, rhi) = range(&rps);
            let (clo, chi) = range(&cpu);
            println!(
                "  {:<34} {:>10.0} req/s ({:.0}–{:.0})   {:>6.2} µs CPU/request ({:.2}–{:.2}){}",
                kind.name(),
                median(rps.clone()),
                rlo,
                rhi,
                median(cpu.clone()),
                clo,
                chi,
                if results[si][i].iter().any(|r| r.errors) {
                    "  errors in some runs"
                } else {
                    ""
                }
            );
        }
        let torsion = &results[si][0];
        for (i, (kind, _)) in servers.iter().enumerate().skip(1) {
            let ratios: Vec<f64> = torsion
                .iter()
                .zip(&results[si][i])
                .map(|(t, p)| t.cpu_us_per_request / p.cpu_us_per_request)
                .collect();
            let (lo, hi) = range(&ratios);
            println!(
                "  CPU per request, torsion ÷ {}: {:.2}x ({lo:.2}–{hi:.2}x)",
                kind.name(),
                median(ratios.clone())
            );
        }
    }
}
