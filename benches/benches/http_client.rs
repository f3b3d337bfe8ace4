//! The HTTP client, side by side: torsion's `HttpClient` on one torsion
//! executor against hyper 1.x's pooled client (`hyper_util`'s `Client` with
//! its `HttpConnector`) on a tokio current-thread runtime — each on a
//! thread pinned to core 1, 64 requests in flight over keep-alive
//! connections (64 per client), `GET /plaintext`, against the same server:
//! `hyper-http` pinned to core 0, in the same run.
//!
//! Rounds are interleaved (each round runs both clients, their order
//! alternating); each figure is the median of the rounds with its range:
//! requests/s and the client thread's CPU microseconds per request
//! (`CLOCK_THREAD_CPUTIME_ID` over the run), and torsion's CPU per request
//! ÷ hyper's.
//!
//! `cargo bench -p torsion-benches --bench http_client [-- --seconds 3 --rounds 3]`

use std::cell::Cell;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use torsion_benches::{median, pin, spawn_peer, LOAD_CORE};
use torsion_protocols::http::client::{ClientConfig, HttpClient};

const IN_FLIGHT: usize = 64;

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// One run's result: requests answered and the client thread's CPU time.
#[derive(Debug, Clone, Copy)]
struct Run {
    requests: u64,
    secs: f64,
    cpu: Duration,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.secs
    }
    fn cpu_us_per_request(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
}

fn torsion_client(url: String, secs: f64) -> Run {
    std::thread::spawn(move || {
        pin(LOAD_CORE);
        torsion::block_on(async move {
            let client = HttpClient::new(ClientConfig {
                max_per_origin: IN_FLIGHT,
                max_idle_per_origin: IN_FLIGHT,
                ..ClientConfig::default()
            });
            // Connections up first, outside the measurement.
            let warm: Vec<_> = (0..IN_FLIGHT)
                .map(|_| {
                    let (client, url) = (client.clone(), url.clone());
                    torsion::spawn_local(async move {
                        let r = client.get(&url).send().await.expect("warm-up request");
                        r.bytes().await.expect("warm-up body");
                    })
                })
                .collect();
            for w in warm {
                w.await;
            }
            let done = Rc::new(Cell::new(0u64));
            let (start, cpu0) = (Instant::now(), thread_cpu());
            let end = start + Duration::from_secs_f64(secs);
            let tasks: Vec<_> = (0..IN_FLIGHT)
                .map(|_| {
                    let (client, url, done) = (client.clone(), url.clone(), done.clone());
                    torsion::spawn_local(async move {
                        while Instant::now() < end {
                            let r = client.get(&url).send().await.expect("request");
                            let body = r.bytes().await.expect("body");
                            assert_eq!(&body[..], b"Hello, World!");
                            done.set(done.get() + 1);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
            Run {
                requests: done.get(),
                secs: start.elapsed().as_secs_f64(),
                cpu: thread_cpu() - cpu0,
            }
        })
        .expect("torsion executor")
    })
    .join()
    .expect("torsion client thread")
}

fn hyper_client(url: String, secs: f64) -> Run {
    std::thread::spawn(move || {
        pin(LOAD_CORE);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async move {
            let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
            connector.set_nodelay(true);
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_max_idle_per_host(IN_FLIGHT)
                    .build::<_, Empty<Bytes>>(connector);
            let uri: hyper::Uri = url.parse().expect("a URI");
            let get = |client: hyper_util::client::legacy::Client<_, Empty<Bytes>>,
                       uri: hyper::Uri| async move {
                let r = client.get(uri).await.expect("request");
                r.into_body().collect().await.expect("body").to_bytes()
            };
            let warm: Vec<_> = (0..IN_FLIGHT)
                .map(|_| tokio::spawn(get(client.clone(), uri.clone())))
                .collect();
            for w in warm {
                w.await.expect("warm-up");
            }
            let (start, cpu0) = (Instant::now(), thread_cpu());
            let end = start + Duration::from_secs_f64(secs);
            let tasks: Vec<_> = (0..IN_FLIGHT)
                .map(|_| {
                    let (client, uri) = (client.clone(), uri.clone());
                    tokio::spawn(async move {
                        let mut n = 0u64;
                        while Instant::now() < end {
                            let body = get(client.clone(), uri.clone()).await;
                            assert_eq!(&body[..], b"Hello, World!");
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            let mut requests = 0;
            for t in tasks {
                requests += t.await.expect("task");
            }
            Run {
                requests,
                secs: start.elapsed().as_secs_f64(),
                cpu: thread_cpu() - cpu0,
            }
        })
    })
    .join()
    .expect("hyper client thread")
}

fn range(v: &[f64]) -> String {
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.2}–{hi:.2}")
}

fn main() {
    let secs: f64 = torsion_benches::arg_or("--seconds", 3.0);
    let rounds: usize = torsion_benches::arg_or("--rounds", 3);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hyper-http"));
    cmd.arg(torsion_benches::SERVER_CORE.to_string());
    let server = spawn_peer(cmd);
    let url = format!("http://{}/plaintext", server.addr);
    println!(
        "HTTP client: {IN_FLIGHT} requests in flight, keep-alive, GET /plaintext from hyper-http \
         (core {}), each client on core {LOAD_CORE}, {secs} s × {rounds} rounds",
        torsion_benches::SERVER_CORE
    );
    let (mut torsion_runs, mut hyper_runs, mut ratios) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let (t, h) = if round % 2 == 0 {
            let t = torsion_client(url.clone(), secs);
            (t, hyper_client(url.clone(), secs))
        } else {
            let h = hyper_client(url.clone(), secs);
            (torsion_client(url.clone(), secs), h)
        };
        println!(
            "round {}: torsion {:.0} req/s {:.2} µs CPU/req · hyper {:.0} req/s {:.2} µs CPU/req · CPU ratio {:.2}",
            round + 1,
            t.rate(),
            t.cpu_us_per_request(),
            h.rate(),
            h.cpu_us_per_request(),
            t.cpu_us_per_request() / h.cpu_us_per_request()
        );
        ratios.push(t.cpu_us_per_request() / h.cpu_us_per_request());
        torsion_runs.push(t);
        hyper_runs.push(h);
    }
    for (name, runs) in [
        ("torsion HttpClient", &torsion_runs),
        ("hyper legacy Client", &hyper_runs),
    ] {
        let rates: Vec<f64> = runs.iter().map(Run::rate).collect();
        let cpus: Vec<f64> = runs.iter().map(Run::cpu_us_per_request).collect();
        println!(
            "{name:<20} {:>9.0} req/s ({:.0}–{:.0})   {:.2} µs CPU/req ({})",
            median(rates.clone()),
            rates.iter().cloned().fold(f64::INFINITY, f64::min),
            rates.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            median(cpus.clone()),
            range(&cpus)
        );
    }
    println!(
        "torsion CPU per request ÷ hyper's: {:.2} (range {})",
        median(ratios.clone()),
        range(&ratios)
    );
}
