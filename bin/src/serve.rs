//! `torsion serve`: start the shards, print the listening line, wait for a
//! signal, drain, exit.

use std::io::Write;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use torsion::{cores, Endpoint, Policies, Server, ServerBuilder};
use torsion_protocols::chat::{start_chat_server, ChatConfig, DEFAULT_MAX_OUTBOUND};
use torsion_protocols::echo::{DatagramEcho, EchoFactory, FramedEchoFactory};
use torsion_protocols::http::{start_http_server, HttpConfig, StaticDir};
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
            start_chat_server(builder, config)?
        }
        ServeProtocol::Http if datagram => anyhow::bail!("http needs a tcp: or tls: endpoint"),
        ServeProtocol::Http => {
            let config = HttpConfig::default().with_max_body(args.max_body);
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
