//! Echo: Twisted's `wire.Echo`, in every framing, with producer/consumer
//! flow control.
//!
//! Raw echo writes each chunk straight back by reference (the read buffer's
//! bytes are frozen into a `Bytes` and queued, no copy). Framed echo sends
//! each received frame back as one frame of the same framing. When the peer
//! reads slower than it writes, the outbound queue passes the high-water mark
//! and echo pauses reading until the queue drains, so a slow reader slows the
//! writer through TCP instead of growing the server's memory.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use torsion::{Factory, Protocol, Transport};

use crate::framed::{
    FrameHandler, FramedConnection, IntNStringReceiver, LineReceiver, NetstringReceiver,
};
use crate::framing::Framing;

/// Writes back every byte it receives.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Protocol for Echo {
    fn data_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        // Closed or over the cap: the connection is ending; the runtime
        // reports why through connection_lost.
        // Err: the connection is closing, and its end reason says why.
        let _ = transport.write_bytes(data.split().freeze());
    }

    fn pause_writing(&mut self, transport: &Transport) {
        transport.pause_reading();
    }

    fn resume_writing(&mut self, transport: &Transport) {
        transport.resume_reading();
    }
}

/// Sends every frame back as a frame of the same framing.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameEcho;

impl FrameHandler for FrameEcho {
    fn frame_received(&mut self, conn: &FramedConnection, frame: Bytes) {
        // Err: the connection is closing, and its end reason says why.
        let _ = conn.send_bytes(frame);
    }
    fn pause_writing(&mut self, conn: &FramedConnection) {
        conn.transport().pause_reading();
    }
    fn resume_writing(&mut self, conn: &FramedConnection) {
        conn.transport().resume_reading();
    }
}

/// Echoes every datagram to its sender (UDP).
#[derive(Debug, Default, Clone, Copy)]
pub struct DatagramEcho;

impl torsion::DatagramProtocol for DatagramEcho {
    fn datagram_received(
        &mut self,
        transport: &torsion::DatagramTransport,
        data: &[u8],
        from: std::net::SocketAddr,
    ) {
        // UDP is lossy by nature: a datagram the socket cannot take now is
        // dropped, as the kernel would.
        // Err: the connection is closing, and its end reason says why.
        let _ = transport.write_to(data, from);
    }
}

/// An echo protocol for `framing`.
pub fn echo_protocol(framing: Framing) -> Box<dyn Protocol> {
    match framing {
        Framing::Raw => Box::new(Echo),
        Framing::Line => Box::new(LineReceiver::new(FrameEcho)),
        Framing::Netstring => Box::new(NetstringReceiver::netstring(FrameEcho)),
        Framing::Int8 => Box::new(IntNStringReceiver::int8(FrameEcho)),
        Framing::Int16 => Box::new(IntNStringReceiver::int16(FrameEcho)),
        Framing::Int32 => Box::new(IntNStringReceiver::int32(FrameEcho)),
    }
}

/// Builds raw [`Echo`] for every connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoFactory;

impl Factory for EchoFactory {
    type Protocol = Echo;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Echo> {
        Some(Echo)
    }
}

/// Builds echo in a chosen framing for every connection.
#[derive(Debug, Clone, Copy)]
pub struct FramedEchoFactory(pub Framing);

impl Factory for FramedEchoFactory {
    type Protocol = Box<dyn Protocol>;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Box<dyn Protocol>> {
        Some(echo_protocol(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Encoder, IntPrefixedCodec, LineCodec, NetstringCodec, PrefixWidth};
    use torsion::testing::ProtocolHarness;
    use torsion::DisconnectReason;

    fn frame(framing: Framing, payload: &[u8]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        match framing {
            Framing::Raw => dst.extend_from_slice(payload),
            Framing::Line => LineCodec::new().encode(payload, &mut dst).unwrap(),
            Framing::Netstring => NetstringCodec::new().encode(payload, &mut dst).unwrap(),
            Framing::Int8 => IntPrefixedCodec::new(PrefixWidth::U8)
                .encode(payload, &mut dst)
                .unwrap(),
            Framing::Int16 => IntPrefixedCodec::new(PrefixWidth::U16)
                .encode(payload, &mut dst)
                .unwrap(),
            Framing::Int32 => IntPrefixedCodec::new(PrefixWidth::U32)
                .encode(payload, &mut dst)
                .unwrap(),
        }
        dst.to_vec()
    }

    #[test]
    fn every_framing_echoes_frames_at_every_size_up_to_the_limit() {
        for framing in Framing::ALL {
            let max = framing.max_message().unwrap_or(70_000);
            for size in [0usize, 1, 100, max] {
                let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
                let wire = frame(framing, &payload);
                let mut h = ProtocolHarness::new(echo_protocol(framing));
                for chunk in wire.chunks(997) {
                    h.receive(chunk);
                }
                assert_eq!(h.take_written(), wire, "{framing} {size}");
                assert!(h.is_open());
            }
        }
    }

    #[test]
    fn an_over_long_frame_closes_the_connection() {
        // (int8 and int16 prefixes cannot announce more than their default limit.)
        for framing in [Framing::Line, Framing::Netstring, Framing::Int32] {
            let max = framing.max_message().unwrap();
            let mut wire = BytesMut::new();
            match framing {
                Framing::Line => LineCodec::new()
                    .max_length(max + 1)
                    .encode(&vec![b'x'; max + 1], &mut wire)
                    .unwrap(),
                Framing::Netstring => NetstringCodec::new()
                    .encode(&vec![b'x'; max + 1], &mut wire)
                    .unwrap(),
                _ => wire.extend_from_slice(&frame(framing, &vec![b'x'; max + 1])),
            }
            let mut h = ProtocolHarness::new(echo_protocol(framing));
            h.receive(&wire);
            assert!(h.take_written().is_empty(), "{framing}");
            assert_eq!(
                h.lost_reason(),
                Some(&DisconnectReason::Closed),
                "{framing}"
            );
        }
    }

    #[test]
    fn raw_echo_pauses_reading_while_its_peer_is_not_reading() {
        let mut h = ProtocolHarness::new(Echo);
        h.set_peer_reading(false);
        h.receive(&vec![1u8; 100 * 1024]);
        assert!(h.transport().is_reading_paused());
        h.receive(b"more");
        assert_eq!(
            h.transport().buffered_len(),
            100 * 1024,
            "paused: not read yet"
        );
        h.set_peer_reading(true);
        assert!(!h.transport().is_reading_paused());
        assert_eq!(h.take_written().len(), 100 * 1024 + 4);
    }
}
