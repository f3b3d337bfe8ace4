//! `serve echo`: Twisted's Echo, raw or framed, over TCP, TLS or UDP.

use clap::Args;
use torsion::ServerHandle;
use torsion_protocols::Framing;
use torsion_protocols::{DatagramEcho, EchoFactory, FramedEchoFactory};

use crate::cli::parse_framing;
use torsion_app::{App, ServeContext};

/// `serve echo`'s own flags.
#[derive(Debug, Args)]
pub struct EchoFlags {
    /// How echo frames messages: raw, line, netstring, int8, int16 or int32
    /// (each received frame is sent back as one frame; raw echoes bytes as
    /// they arrive).
    #[arg(long, value_name = "FRAMING", default_value = "raw", value_parser = parse_framing)]
    pub framing: Framing,
}

/// Twisted's Echo.
#[derive(Debug)]
pub struct EchoApp;

impl App for EchoApp {
    type Flags = EchoFlags;

    fn name(&self) -> &'static str {
        "echo"
    }

    fn about(&self) -> &'static str {
        "Twisted's Echo: writes back what it receives (TCP, TLS or UDP)."
    }

    fn default_listen(&self) -> &'static str {
        "tcp:7000:interface=127.0.0.1"
    }

    fn describe(&self, flags: &EchoFlags) -> String {
        format!("framing={}", flags.framing)
    }

    fn start(&self, flags: EchoFlags, ctx: ServeContext) -> anyhow::Result<ServerHandle> {
        let ServeContext {
            builder,
            endpoint,
            max_outbound,
            ..
        } = ctx;
        if endpoint.is_datagram() {
            if flags.framing != Framing::Raw {
                anyhow::bail!("--framing applies to stream endpoints; UDP echo sends datagrams back as they are");
            }
            return Ok(builder.serve_datagram(|_shard| DatagramEcho)?);
        }
        let builder = match max_outbound {
            Some(cap) => {
                let limits = builder.current_limits().with_hard_cap(cap);
                builder.limits(limits)
            }
            None => builder,
        };
        Ok(if flags.framing == Framing::Raw {
            builder.serve(|_shard| EchoFactory)?
        } else {
            let framing = flags.framing;
            builder.serve(move |_shard| FramedEchoFactory(framing))?
        })
    }
}
