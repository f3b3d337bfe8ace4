//! Echo: Twisted's `wire.Echo`, with producer/consumer flow control.
//!
//! Each chunk received is written straight back by reference (no copy: the
//! read buffer's bytes are frozen into a `Bytes` and queued). When the peer
//! reads slower than it writes, the outbound queue passes the high-water mark
//! and echo pauses reading until the queue drains, so a slow reader slows the
//! writer through TCP instead of growing the server's memory.

use std::net::SocketAddr;

use bytes::BytesMut;
use torsion::{Factory, Protocol, Transport};

/// Writes back every byte it receives.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Protocol for Echo {
    fn data_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        // Closed or over the cap: the connection is ending; the runtime
        // reports why through connection_lost.
        let _ = transport.write_bytes(data.split().freeze());
    }

    fn pause_writing(&mut self, transport: &Transport) {
        transport.pause_reading();
    }

    fn resume_writing(&mut self, transport: &Transport) {
        transport.resume_reading();
    }
}

/// Builds an [`Echo`] for every connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoFactory;

impl Factory for EchoFactory {
    type Protocol = Echo;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Echo> {
        Some(Echo)
    }
}
