//! `torsion serve`: start the shards, print the listening line, wait for a
//! signal, drain, exit.

use std::io::Write;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use torsion::metrics::{Metrics, DEFAULT_LAG_PROBE};
use torsion::{cores, Endpoint, Policies, Server, ServerBuilder, ServerHandle};
use torsion_protocols::chat::{start_chat_server, ChatConfig, ChatMetrics, DEFAULT_MAX_OUTBOUND};
use torsion_protocols::echo::{DatagramEcho, EchoFactory, FramedEchoFactory};
use torsion_protocols::http::{start_http_server, HttpConfig, HttpMetrics, StaticDir};
use torsion_protocols::metrics_endpoint::serve_metrics;
use torsion_protocols::Framing;

use crate::cli::{PlacementArgs, ServeArgs, ServeProtocol};

/// Applies `--shards` / `--cores` to a builder.
pub fn apply_placement(builder: ServerBuilder, placement: &PlacementArgs) -> Result<ServerBuilder> {
    let mut builder = builder;
    if let Some(n) = placement.shards {
        builder = builder.shards(n);
    }
    if let Some(list) = &placement.cores {
        builder = builder.cores(cores::parse_core_list(list)?);
    }
    Ok(builder)
}

/// Runs `torsion serve`.
pub fn run(args: ServeArgs) -> Result<()> {
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| args.protocol.default_listen().to_string());
    let endpoint: Endpoint = listen
        .parse()
        .with_context(|| format!("bad --listen \"{listen}\""))?;
    if args.max_connections == Some(0) || args.max_per_ip == Some(0) {
        anyhow::bail!("--max-connections and --max-per-ip must be at least 1");
    }
    let datagram = endpoint.is_datagram();
    let metrics_endpoint = match &args.metrics {
        Some(text) => Some(parse_metrics_endpoint(text)?),
        None => None,
    };
    let metrics = metrics_endpoint.as_ref().map(|_| Metrics::new());
    let builder = Server::builder()
        .listen(endpoint)
        .drain_timeout(args.drain_timeout)
        .policies(
            Policies::default()
                .with_idle_timeout(Some(args.idle_timeout).filter(|d| !d.is_zero()))
                .with_max_connections(args.max_connections)
                .with_max_per_ip(args.max_per_ip)
                .with_max_read_rate(args.max_read_rate.map(|r| r as u64)),
        );
    let builder = apply_placement(builder, &args.placement)?;
    let builder = match &metrics {
        Some(_) => builder.reactor_lag_probe(Some(DEFAULT_LAG_PROBE)),
        None => builder,
    };

    // Block the signals before any shard thread exists, so they are
    // delivered to the signal thread and never interrupt a shard.
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;

    let server = match args.protocol {
        ServeProtocol::Echo if datagram => {
            if args.framing != Framing::Raw {
                anyhow::bail!("--framing applies to stream endpoints; UDP echo sends datagrams back as they are");
            }
            builder.serve_datagram(|_shard| DatagramEcho)?
        }
        ServeProtocol::Chat if datagram => anyhow::bail!("chat needs a tcp: endpoint"),
        ServeProtocol::Chat => {
            let config = ChatConfig::default()
                .with_max_line(args.max_line)
                .with_register_timeout(args.register_timeout)
                .with_stall_timeout(args.stall_timeout)
                .with_flush_window(args.flush_window)
                .with_max_outbound(args.max_outbound.unwrap_or(DEFAULT_MAX_OUTBOUND));
            let chat_metrics = ChatMetrics::new();
            if let Some(m) = &metrics {
                m.register_collector(chat_metrics.clone());
            }
            start_chat_server(builder, config.with_metrics(chat_metrics))?
        }
        ServeProtocol::Http if datagram => anyhow::bail!("http needs a tcp: or tls: endpoint"),
        ServeProtocol::Http => {
            let mut config = HttpConfig::default().with_max_body(args.max_body);
            if let Some(m) = &metrics {
                let http_metrics = HttpMetrics::new();
                m.register_collector(http_metrics.clone());
                config = config.with_metrics(http_metrics);
            }
            let dir = match &args.dir {
                Some(path) => Some(
                    StaticDir::new(path)
                        .with_context(|| format!("bad --dir \"{}\"", path.display()))?,
                ),
                None => None,
            };
            start_http_server(builder, config, move |_shard| {
                crate::http_site::router(dir.as_ref())
            })?
        }
        ServeProtocol::Echo => {
            let builder = match args.max_outbound {
                Some(cap) => {
                    let limits = builder.current_limits().with_hard_cap(cap);
                    builder.limits(limits)
                }
                None => builder,
            };
            if args.framing == Framing::Raw {
                builder.serve(|_shard| EchoFactory)?
            } else {
                let framing = args.framing;
                builder.serve(move |_shard| FramedEchoFactory(framing))?
            }
        }
    };

    {
        let mut out = std::io::stdout().lock();
        let n = server.shard_count();
        writeln!(
            out,
            "torsion: listening on {} ({n} shard{})",
            server.local_addr(),
            if n == 1 { "" } else { "s" }
        )?;
        out.flush()?;
    }
    let metrics_server = match (metrics, metrics_endpoint) {
        (Some(metrics), Some(endpoint)) => Some(start_metrics(&server, metrics, endpoint)?),
        _ => None,
    };
    let cores = server.shards().iter().map(|s| s.core).collect::<Vec<_>>();
    // The framing is echo's setting: the other protocols do not log it.
    if args.protocol == ServeProtocol::Echo {
        tracing::info!(
            protocol = ?args.protocol,
            framing = %args.framing,
            addr = %server.local_addr(),
            shards = server.shard_count(),
            cores = ?cores,
            "serving"
        );
    } else {
        tracing::info!(
            protocol = ?args.protocol,
            addr = %server.local_addr(),
            shards = server.shard_count(),
            cores = ?cores,
            "serving"
        );
    }

    let trigger = server.trigger();
    let handle = signals.handle();
    let signal_thread = std::thread::Builder::new()
        .name("torsion-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                seen += 1;
                if seen == 1 {
                    tracing::info!(signal, "shutting down: draining connections");
                    trigger.shutdown();
                } else {
                    tracing::warn!(signal, "second signal: exiting without draining");
                    std::process::exit(1);
                }
            }
        })
        .context("cannot start the signal thread")?;

    let stats = server.stats_reader();
    let result = server.join();
    handle.close();
    let _ = signal_thread.join();
    if let Some(metrics_server) = metrics_server {
        metrics_server.stop()?;
    }
    result?;
    let total = stats.total();
    tracing::info!(
        accepted = total.accepted,
        refused = total.refused,
        panics = total.panics,
        bytes_in = total.bytes_in,
        bytes_out = total.bytes_out,
        "stopped"
    );
    Ok(())
}

/// Parses `--metrics`: a stream endpoint (the scrape is HTTP).
fn parse_metrics_endpoint(text: &str) -> Result<Endpoint> {
    let endpoint: Endpoint = text
        .parse()
        .with_context(|| format!("bad --metrics \"{text}\""))?;
    if endpoint.is_datagram() {
        anyhow::bail!("bad --metrics \"{text}\": metrics are served over HTTP: use a tcp:, tcp6: or tls: endpoint");
    }
    Ok(endpoint)
}

/// Registers the server's own collectors and starts the scrape endpoint on
/// one shard, on the first serving shard's core; prints where it listens.
fn start_metrics(
    server: &ServerHandle,
    metrics: Metrics,
    endpoint: Endpoint,
) -> Result<ServerHandle> {
    metrics.register_server(server.stats_reader());
    metrics.register_default_blocking_pool();
    let scheme = match endpoint {
        Endpoint::Tls { .. } => "https",
        _ => "http",
    };
    let core = server.shards().first().map_or(0, |s| s.core);
    let builder = Server::builder()
        .listen(endpoint)
        .shards(1)
        .cores(vec![core]);
    let metrics_server = serve_metrics(builder, metrics).context("cannot serve --metrics")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "torsion: metrics on {scheme}://{}/metrics",
        metrics_server.local_addr()
    )?;
    out.flush()?;
    Ok(metrics_server)
}
