//! The `Protocol` and `Factory` traits (Twisted's `IProtocol` and `Factory`).
//!
//! A protocol instance serves one connection and lives on the shard that
//! accepted it, so it may hold `Rc`/`RefCell` state freely: it is never
//! shared between threads and never locked. Every method has a default, as
//! in Twisted. Callbacks receive the connection's [`Transport`]; keep a clone
//! of it to write from timers or other tasks.
//!
//! A factory is built once per shard, on that shard, by the `Send + Sync`
//! closure given to [`ServerBuilder::serve`](crate::ServerBuilder::serve), so
//! per-shard state (a room, a cache) needs no locks either.

use std::net::SocketAddr;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};

use crate::connection::reason::DisconnectReason;
use crate::connection::transport::Transport;
use crate::shard::ShardInfo;

/// The code that handles one connection.
///
/// Order of calls: `connection_made` once, then any number of
/// `data_received`, `eof_received`, `pause_writing`/`resume_writing` and
/// `shutdown_requested`, then `connection_lost` exactly once, whatever ended
/// the connection (even a panic in an earlier callback). `poll_future` is
/// called after each of them and whenever the connection's task is woken
/// (and after `connection_lost` while it says `Pending`).
pub trait Protocol: 'static {
    /// The connection is open (Twisted's `connectionMade`).
    fn connection_made(&mut self, transport: &Transport) {
        let _ = transport;
    }

    /// Bytes arrived (Twisted's `dataReceived`). `data` holds every byte
    /// received and not yet consumed: take what you handle (`data.split()`
    /// for all of it, or a codec's `decode`); what you leave stays in place
    /// and the next call sees it with new bytes appended, so framing can wait
    /// for a whole frame without copying. More than
    /// [`FlowLimits::max_read_buffer`](crate::FlowLimits::max_read_buffer)
    /// bytes left unconsumed closes the connection. The default discards.
    fn data_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        let _ = transport;
        data.clear();
    }

    /// The peer closed its sending side (a half-close; Twisted's
    /// `readConnectionLost`). `data` holds the input left unconsumed (a
    /// partial frame: it will never be completed); what a framing layer
    /// leaves there when it returns is dropped. Data written after this
    /// still reaches the peer. The default closes our side after flushing.
    fn eof_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        let _ = data;
        transport.close();
    }

    /// The outbound queue passed the high-water mark: stop producing until
    /// `resume_writing` (Twisted's `pauseProducing` on the producer).
    fn pause_writing(&mut self, transport: &Transport) {
        let _ = transport;
    }

    /// The outbound queue drained to the low-water mark.
    fn resume_writing(&mut self, transport: &Transport) {
        let _ = transport;
    }

    /// The server is shutting down: no new connections are accepted. Say
    /// goodbye if the protocol has something to say; pending writes are
    /// flushed until the drain deadline, then the connection is aborted. The
    /// default stops reading and closes (flushing first) as soon as no work
    /// marked with [`Transport::in_flight`] is left
    /// ([`Transport::close_when_idle`]): at once for a protocol that marks
    /// none.
    fn shutdown_requested(&mut self, transport: &Transport) {
        transport.close_when_idle();
    }

    /// The connection ended (Twisted's `connectionLost`). Called exactly once.
    fn connection_lost(&mut self, reason: &DisconnectReason) {
        let _ = reason;
    }

    /// Polls work the protocol runs on its connection's own task (the
    /// async connection's future runs here, see [`AsyncProtocol`]; a
    /// callback protocol may run a request's future here too): called with
    /// that task's context after `connection_made`, after every other
    /// callback and whenever the task is woken. `Ready` says nothing is
    /// running now; `Pending` that work is under way, and if it still is
    /// when the connection ends, the polls go on (after `connection_lost`)
    /// until it is `Ready`. `input` is what `data_received` left
    /// unconsumed, for the future to take from (the async connection
    /// decodes its frames from it in place). Writes made here are sent when
    /// it returns, as from any callback; a panic here ends the connection
    /// with [`DisconnectReason::Panic`]. The default has nothing to run.
    ///
    /// [`AsyncProtocol`]: crate::AsyncProtocol
    fn poll_future(
        &mut self,
        transport: &Transport,
        input: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let _ = (transport, input, cx);
        Poll::Ready(())
    }
}

/// A boxed protocol is a protocol, so one factory can serve several kinds
/// (`Box<dyn Protocol>`).
impl<P: Protocol + ?Sized> Protocol for Box<P> {
    fn connection_made(&mut self, transport: &Transport) {
        (**self).connection_made(transport)
    }
    fn data_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        (**self).data_received(transport, data)
    }
    fn eof_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        (**self).eof_received(transport, data)
    }
    fn pause_writing(&mut self, transport: &Transport) {
        (**self).pause_writing(transport)
    }
    fn resume_writing(&mut self, transport: &Transport) {
        (**self).resume_writing(transport)
    }
    fn shutdown_requested(&mut self, transport: &Transport) {
        (**self).shutdown_requested(transport)
    }
    fn connection_lost(&mut self, reason: &DisconnectReason) {
        (**self).connection_lost(reason)
    }
    fn poll_future(
        &mut self,
        transport: &Transport,
        input: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        (**self).poll_future(transport, input, cx)
    }
}

/// Builds protocols for one shard (Twisted's `Factory`).
pub trait Factory: 'static {
    /// The protocol this factory builds.
    type Protocol: Protocol;

    /// The shard started (Twisted's `startFactory`); runs once per shard,
    /// before the first connection.
    fn start(&mut self, shard: &ShardInfo) {
        let _ = shard;
    }

    /// A protocol for a connection from `peer`, or `None` to refuse it (the
    /// connection is closed at once and counted as refused).
    fn build_protocol(&mut self, peer: SocketAddr) -> Option<Self::Protocol>;

    /// A protocol for a connection from `peer` that came in on listener
    /// `listener` of a server with several
    /// ([`ServerBuilder::also_listen`](crate::ServerBuilder::also_listen);
    /// 0 is the first endpoint, 1… the others in the order given), so one
    /// factory, and the shard state it holds, can serve each listener its
    /// own protocol. The default ignores the listener.
    fn build_protocol_on(&mut self, listener: usize, peer: SocketAddr) -> Option<Self::Protocol> {
        let _ = listener;
        self.build_protocol(peer)
    }

    /// A connection from `peer` is over a connection cap and will be closed
    /// at once. Return a last message to send first (best effort, never
    /// waited for), e.g. `Server full, try again later.`. Default: none.
    fn over_capacity(&mut self, peer: SocketAddr) -> Option<Bytes> {
        let _ = peer;
        None
    }

    /// [`Factory::over_capacity`] for a connection on listener `listener`
    /// (see [`Factory::build_protocol_on`]), so each listener's goodbye
    /// can be in its own protocol. The default ignores the listener.
    fn over_capacity_on(&mut self, listener: usize, peer: SocketAddr) -> Option<Bytes> {
        let _ = listener;
        self.over_capacity(peer)
    }

    /// The shard is stopping (Twisted's `stopFactory`); runs once per shard
    /// after its last connection ended.
    fn stop(&mut self) {}
}

/// A [`Factory`] made from a closure: `FnFactory(|peer| Some(Echo))`.
pub struct FnFactory<F>(pub F);

impl<F, P> Factory for FnFactory<F>
where
    F: FnMut(SocketAddr) -> Option<P> + 'static,
    P: Protocol,
{
    type Protocol = P;

    fn build_protocol(&mut self, peer: SocketAddr) -> Option<P> {
        (self.0)(peer)
    }
}
