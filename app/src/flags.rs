//! [`ServeFlags`]: the flags every app gets, and the builder they make.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use torsion::DEFAULT_LAG_PROBE;
use torsion::{cores, Endpoint, Policies, Server, ServerBuilder};

use crate::args::{parse_count, parse_duration_or_off, parse_size, PlacementArgs};

/// Flags common to every `serve` app.
#[derive(Debug, Args, Clone)]
pub struct ServeFlags {
    /// Where to listen, in Twisted's endpoint syntax: tcp:PORT[:interface=IP],
    /// tcp6:…, tls:PORT:certKey=…:privateKey=…, udp:PORT (default: the
    /// app's, shown in its --help).
    #[arg(long, value_name = "ENDPOINT")]
    pub listen: Option<String>,

    /// Close connections with no reads or writes for this long (e.g. 30s;
    /// 0 or off, the default: never).
    #[arg(long, value_name = "DUR", default_value = "off", value_parser = parse_duration_or_off)]
    pub idle_timeout: Duration,

    /// Most connections open at once over all shards (split evenly between
    /// shards). Default: the fd limit minus 64.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Most connections open at once from one IP address.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N")]
    pub max_per_ip: Option<usize>,

    /// Most bytes per second read from one connection (e.g. 64KiB); reading
    /// pauses rather than buffering.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_read_rate: Option<usize>,

    /// Outbound queue hard cap per connection (e.g. 1MiB, 65536): a client
    /// whose unread output passes it is disconnected as a slow consumer.
    /// Default: the app's (1MiB for chat, 4MiB otherwise).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_outbound: Option<usize>,

    #[command(flatten)]
    pub placement: PlacementArgs,

    /// How long shutdown waits for connections to flush and close before
    /// aborting them (e.g. 5s, 500ms; 0 or off: abort at once).
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration_or_off)]
    pub drain_timeout: Duration,

    /// Serve Prometheus metrics at GET /metrics on this endpoint (e.g.
    /// tcp:9100:interface=127.0.0.1; tcp:, tcp6: or tls:): per-shard
    /// connections, bytes, panics, reactor lag, the bus, the blocking pool,
    /// and the app's own. Served by a shard of its own on the first
    /// shard's core; a second stdout line says where.
    #[arg(long, value_name = "ENDPOINT")]
    pub metrics: Option<String>,
}

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

impl ServeFlags {
    /// The listening endpoint (`--listen`, else `default_listen`).
    pub fn endpoint(&self, default_listen: &str) -> Result<Endpoint> {
        let listen = self.listen.as_deref().unwrap_or(default_listen);
        listen
            .parse()
            .with_context(|| format!("bad --listen \"{listen}\""))
    }

    /// `--metrics`, checked: a stream endpoint (the scrape is HTTP).
    pub fn metrics_endpoint(&self) -> Result<Option<Endpoint>> {
        let Some(text) = &self.metrics else {
            return Ok(None);
        };
        let endpoint: Endpoint = text
            .parse()
            .with_context(|| format!("bad --metrics \"{text}\""))?;
        if endpoint.is_datagram() {
            anyhow::bail!(
                "bad --metrics \"{text}\": metrics are served over HTTP: use a tcp:, tcp6: or tls: endpoint"
            );
        }
        Ok(Some(endpoint))
    }

    /// A builder for `endpoint` with these flags' placement, policies and
    /// drain timeout (and the reactor-lag probe when `with_lag_probe`).
    pub fn builder(&self, endpoint: Endpoint, with_lag_probe: bool) -> Result<ServerBuilder> {
        if self.max_connections == Some(0) || self.max_per_ip == Some(0) {
            anyhow::bail!("--max-connections and --max-per-ip must be at least 1");
        }
        let builder = Server::builder()
            .listen(endpoint)
            .drain_timeout(self.drain_timeout)
            .policies(
                Policies::default()
                    .with_idle_timeout(Some(self.idle_timeout).filter(|d| !d.is_zero()))
                    .with_max_connections(self.max_connections)
                    .with_max_per_ip(self.max_per_ip)
                    .with_max_read_rate(self.max_read_rate.map(|r| r as u64)),
            )
            .reactor_lag_probe(with_lag_probe.then_some(DEFAULT_LAG_PROBE));
        apply_placement(builder, &self.placement)
    }
}
