//! `serve websocket`: echo over WebSocket (every message back as it came),
//! for `torsion load ws` and for trying clients against.

use clap::Args;
use torsion::ServerHandle;
use torsion_protocols::websocket::{start_websocket_server, WsConfig, WsHandler};

use crate::cli::{parse_on_off, parse_size};
use torsion_app::{App, ServeContext};

/// `serve websocket`'s own flags.
#[derive(Debug, Args)]
pub struct WebSocketFlags {
    /// The longest message taken, inflated (longer: closed with 1009).
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_size)]
    pub max_message: usize,

    /// Take a client's permessage-deflate offer.
    #[arg(long, value_name = "on|off", default_value = "off", action = clap::ArgAction::Set,
          value_parser = parse_on_off)]
    pub deflate: bool,
}

/// WebSocket echo.
#[derive(Debug)]
pub struct WebSocketApp;

impl App for WebSocketApp {
    type Flags = WebSocketFlags;

    fn name(&self) -> &'static str {
        "websocket"
    }

    fn about(&self) -> &'static str {
        "Echo over WebSocket (RFC 6455; permessage-deflate with --deflate on)."
    }

    fn default_listen(&self) -> &'static str {
        "tcp:9001:interface=127.0.0.1"
    }

    fn describe(&self, flags: &WebSocketFlags) -> String {
        format!(
            "max_message={} deflate={}",
            flags.max_message, flags.deflate
        )
    }

    fn start(&self, flags: WebSocketFlags, ctx: ServeContext) -> anyhow::Result<ServerHandle> {
        if ctx.endpoint.is_datagram() {
            anyhow::bail!("websocket needs a tcp:, tcp6: or tls: endpoint");
        }
        let config = WsConfig {
            max_message: flags.max_message,
            deflate: flags.deflate,
            ..WsConfig::default()
        };
        Ok(start_websocket_server(ctx.builder, config, |_shard| {
            WsHandler::echo()
        })?)
    }
}
