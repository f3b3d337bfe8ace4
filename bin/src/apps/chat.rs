//! `serve chat`: the docs' chat server, sharded.

use std::time::Duration;

use clap::Args;
use torsion::ServerHandle;
use torsion_protocols::chat::{start_chat_server, ChatConfig, ChatMetrics, DEFAULT_MAX_OUTBOUND};

use crate::app::{App, ServeContext};
use crate::cli::{parse_duration_or_off, parse_size};

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
            .with_max_outbound(ctx.max_outbound.unwrap_or(DEFAULT_MAX_OUTBOUND))
            .with_metrics(chat_metrics);
        Ok(start_chat_server(ctx.builder, config)?)
    }
}
