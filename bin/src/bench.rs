//! `torsion bench echo|chat|http`: the server shards and the load generator in
//! one process on disjoint cores (defaults: server on core 0, load on core
//! 1). Echo and HTTP: a warm-up, a saturated closed-loop run, then an open-loop run
//! at a fraction of the saturated rate. Chat: open-loop runs at the given
//! message rates. Prints each report.

use std::time::Duration;

use anyhow::{Context, Result};
use torsion::{cores, Server, ServerHandle};
use torsion_protocols::chat::{start_chat_server, ChatConfig};
use torsion_protocols::http::{start_http_server, HttpConfig};
use torsion_protocols::EchoFactory;

use crate::cli::{BenchArgs, BenchProtocol};
use crate::load::chat::ChatLoad;
use crate::load::echo::{EchoLoad, Rate};
use crate::load::http_wire::{Accept, HttpLoad, HttpTarget, RequestSpec};
use crate::load::target::LoadTarget;
use crate::load::{self, Outputs};
use crate::load_cmd::{outputs, stop_flag};

fn core_list(s: &str, what: &str) -> Result<Vec<usize>> {
    let list = cores::parse_core_list(s).with_context(|| format!("bad {what}"))?;
    let allowed = cores::allowed_cores()?;
    cores::plan_cores(&allowed, None, Some(&list)).with_context(|| format!("bad {what}"))
}

fn start_server(args: &BenchArgs, server_cores: Vec<usize>) -> Result<ServerHandle> {
    let builder = Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")?
        .cores(server_cores);
    Ok(match args.protocol {
        BenchProtocol::Echo => builder.serve(|_| EchoFactory)?,
        BenchProtocol::Chat => start_chat_server(builder, ChatConfig::default())?,
        BenchProtocol::Http => start_http_server(builder, HttpConfig::default(), |_| {
            crate::http_site::router(None)
        })?,
    })
}

/// Runs `torsion bench`; returns the exit status.
pub fn run(args: BenchArgs) -> Result<i32> {
    let server_cores = core_list(&args.server_cores, "--server-cores")?;
    let load_cores = core_list(&args.load_cores, "--load-cores")?;
    if server_cores.iter().any(|c| load_cores.contains(c)) {
        eprintln!("torsion bench: warning: server and load share a core; figures will mix");
    }
    if !(args.fraction > 0.0 && args.fraction <= 1.0) {
        anyhow::bail!("--fraction must be in (0, 1]");
    }
    let server = start_server(&args, server_cores.clone())?;
    let target = server.local_addr();
    println!(
        "torsion bench {:?}: server on cores {server_cores:?}, load on cores {load_cores:?}, target {target}",
        args.protocol
    );
    let stop = stop_flag()?;
    let mut failed = false;
    match args.protocol {
        BenchProtocol::Echo | BenchProtocol::Http => {
            let http = (args.protocol == BenchProtocol::Http).then(|| {
                let url = HttpTarget::parse(&format!("http://{target}/plaintext"))
                    .expect("the server's own address is a URL");
                HttpLoad {
                    requests: vec![url.request(&RequestSpec::default())],
                    accept: Accept::default(),
                    head_request: false,
                }
            });
            let base = EchoLoad {
                targets: vec![LoadTarget::plain(target)],
                connections: args.connections,
                rate: Rate::Max,
                pipeline: 1,
                duration: args.duration,
                warmup: args.warmup,
                size: args.size,
                framing: torsion_protocols::Framing::Raw,
                connect_timeout: Duration::from_secs(3),
                drain: Duration::from_secs(3),
                udp: false,
                http,
                redis: None,
                websocket: None,
                churn: 0.0,
                batches: false,
            };
            println!("\n== saturated (closed loop)");
            let saturated = load::run_echo(
                base.clone(),
                &load_cores,
                stop.clone(),
                &Outputs {
                    live: !args.output.quiet,
                    ..Outputs::default()
                },
            )?;
            print!("{}", saturated.render());
            failed |= saturated.has_errors();
            let rate = (saturated.achieved_rate * args.fraction).max(1.0);
            println!(
                "\n== fixed rate: {:.0}% of saturated = {rate:.0} requests/s (open loop)",
                args.fraction * 100.0
            );
            let fixed = load::run_echo(
                EchoLoad {
                    rate: Rate::PerSecond(rate),
                    ..base
                },
                &load_cores,
                stop,
                &outputs(&args.output),
            )?;
            print!("{}", fixed.render());
            failed |= fixed.has_errors();
        }
        BenchProtocol::Chat => {
            let rates: Vec<f64> = args
                .rates
                .split(',')
                .map(|r| {
                    r.trim()
                        .parse::<f64>()
                        .map_err(|_| anyhow::anyhow!("bad --rates entry \"{r}\""))
                })
                .collect::<Result<_>>()?;
            for (i, rate) in rates.iter().enumerate() {
                println!(
                    "\n== chat: {} clients, {} senders, {rate:.0} messages/s",
                    args.clients, args.senders
                );
                let last = i + 1 == rates.len();
                let out = if last {
                    outputs(&args.output)
                } else {
                    Outputs {
                        live: !args.output.quiet,
                        ..Outputs::default()
                    }
                };
                let report = load::run_chat(
                    ChatLoad {
                        targets: vec![target],
                        clients: args.clients,
                        senders: args.senders,
                        rate: *rate,
                        duration: args.duration,
                        warmup: args.warmup,
                        connect_timeout: Duration::from_secs(5),
                        drain: Duration::from_secs(3),
                        websocket: false,
                    },
                    &load_cores,
                    stop.clone(),
                    &out,
                )?;
                print!("{}", report.render());
                failed |= report.has_errors();
            }
        }
    }
    let totals = server.total_stats();
    println!(
        "\nserver: {} connections accepted, {} slow consumers cut, {} panics",
        totals.accepted,
        totals.closed_by(&torsion::DisconnectReason::SlowConsumer),
        totals.panics
    );
    server.stop()?;
    Ok(if failed { 1 } else { 0 })
}
