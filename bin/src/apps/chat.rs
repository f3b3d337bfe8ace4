//! `serve chat`: the docs' chat server, sharded.

use std::time::Duration;

use clap::Args;
use torsion::ServerHandle;
use torsion_protocols::chat::cluster::{start_chat_node, ClusterConfig};
use torsion_protocols::chat::{start_chat_server, ChatConfig, ChatMetrics, DEFAULT_MAX_OUTBOUND};

use anyhow::Context;

use crate::cli::{parse_duration, parse_duration_or_off, parse_on_off, parse_size};
use torsion_app::{App, ServeContext};

/// `serve chat`'s own flags.
#[derive(Debug, Args)]
pub struct ChatFlags {
    /// Longest input line in bytes; longer ones get "Line too long." and
    /// the connection is closed.
    #[arg(long, value_name = "BYTES", default_value = "4096", value_parser = parse_size)]
    pub max_line: usize,

    /// How long a client may stay nameless before it is disconnected (0 or
    /// off: no limit).
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration_or_off)]
    pub register_timeout: Duration,

    /// How long a reader whose output is above the high-water mark may hold
    /// the room's senders back before the room stops waiting for it (it is
    /// then cut if its unread output reaches --max-outbound). 0 or off:
    /// never wait for slow readers.
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = parse_duration_or_off)]
    pub stall_timeout: Duration,

    /// How long lines to a reader may wait so that several messages' lines
    /// leave in one send (less CPU per delivery, up to this much more
    /// latency). 0 or off: send each message at once.
    #[arg(long, value_name = "DUR", default_value = "1250us", value_parser = parse_duration_or_off)]
    pub flush_window: Duration,

    /// While a flush window is open, sleep through single wake-ups (each
    /// readable socket) and read what came together when it closes: less
    /// CPU per delivery, the same latency bound. Other work on the shard
    /// (a new client's greeting) waits with it: up to one window, at most
    /// 5 ms. No effect without a window.
    #[arg(long, value_name = "on|off", default_value = "on", action = clap::ArgAction::Set,
          value_parser = parse_on_off)]
    pub coalesce_wakeups: bool,

    /// Also serve browsers: a WebSocket listener on ENDPOINT (e.g.
    /// tcp:8124:interface=127.0.0.1), in the same room as the line
    /// clients; one text message is one chat line, and a plain GET / gets
    /// the chat page.
    #[arg(long, value_name = "ENDPOINT")]
    pub websocket: Option<String>,

    /// A web origin whose pages may open the WebSocket listener (e.g.
    /// http://chat.example:8124); repeat it for more. Without one, any
    /// page may: name yours so other sites cannot open the chat from a
    /// visitor's browser.
    #[arg(long, value_name = "ORIGIN", requires = "websocket")]
    pub websocket_origin: Vec<String>,

    /// Be one node of a chat spread over several servers, through this
    /// Redis (6.2 or later): lines, names and /who cross nodes. Without it
    /// the server is on its own.
    #[arg(long, value_name = "redis://HOST:PORT[/DB]")]
    pub cluster: Option<String>,

    /// This node's name in Redis and in logs (default: host name and pid).
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub node_id: Option<String>,

    /// How long a node's names outlive it when it dies without leaving
    /// (e.g. kill -9); it renews them every quarter of this while it runs.
    #[arg(long, value_name = "DUR", default_value = "10s", requires = "cluster", value_parser = parse_duration)]
    pub cluster_lease: Duration,

    /// How long a Redis outage the node rides out without losing lines;
    /// lines it could not send for longer are dropped, counted and logged.
    #[arg(long, value_name = "DUR", default_value = "30s", requires = "cluster", value_parser = parse_duration)]
    pub cluster_outage: Duration,
}

/// The chat server.
#[derive(Debug)]
pub struct ChatApp;

impl App for ChatApp {
    type Flags = ChatFlags;

    fn name(&self) -> &'static str {
        "chat"
    }

    fn about(&self) -> &'static str {
        "The docs' chat server, sharded: names and messages across all shards."
    }

    fn default_listen(&self) -> &'static str {
        "tcp:8123:interface=127.0.0.1"
    }

    fn start(&self, flags: ChatFlags, ctx: ServeContext) -> anyhow::Result<ServerHandle> {
        if ctx.endpoint.is_datagram() {
            anyhow::bail!("chat needs a tcp: endpoint");
        }
        let chat_metrics = ChatMetrics::new();
        if let Some(metrics) = &ctx.metrics {
            metrics.register_collector(chat_metrics.clone());
        }
        let config = ChatConfig::default()
            .with_max_line(flags.max_line)
            .with_register_timeout(flags.register_timeout)
            .with_stall_timeout(flags.stall_timeout)
            .with_flush_window(flags.flush_window)
            .with_coalesce_wakeups(flags.coalesce_wakeups)
            .with_max_outbound(ctx.max_outbound.unwrap_or(DEFAULT_MAX_OUTBOUND))
            .with_websocket_origins(flags.websocket_origin.clone())
            .with_metrics(chat_metrics);
        let builder = match flags.websocket.as_deref() {
            None => ctx.builder,
            Some(text) => {
                let endpoint: torsion::Endpoint = text
                    .parse()
                    .with_context(|| format!("bad --websocket \"{text}\""))?;
                if endpoint.is_datagram() {
                    anyhow::bail!("bad --websocket \"{text}\": WebSocket needs a tcp:, tcp6: or tls: endpoint");
                }
                ctx.builder.also_listen(endpoint)
            }
        };
        let Some(url) = flags.cluster else {
            return Ok(start_chat_server(builder, config)?);
        };
        let mut cluster = ClusterConfig::new(url)
            .with_lease(flags.cluster_lease)
            .with_outage(flags.cluster_outage);
        if let Some(id) = flags.node_id {
            cluster = cluster.with_node_id(id);
        }
        Ok(start_chat_node(builder, config, cluster)?)
    }
}
