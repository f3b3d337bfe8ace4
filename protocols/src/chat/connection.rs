//! [`ChatConnection`]: one chat client's connection, of either wire — a
//! line client on the chat server's first listener, a WebSocket client
//! (feature `websocket`) on the others — so one factory, and the shard's
//! one room, serves both.

use std::task::{Context, Poll};

use bytes::BytesMut;
use torsion::{DisconnectReason, Protocol, Transport};

use super::client::ChatClient;
#[cfg(feature = "websocket")]
use super::websocket::WsChatClient;
use crate::framed::LineReceiver;

/// A chat client's connection.
pub enum ChatConnection {
    /// `\r\n` lines.
    Lines(LineReceiver<ChatClient>),
    /// WebSocket text messages.
    #[cfg(feature = "websocket")]
    WebSocket(WsChatClient),
}

/// Calls `$method` on whichever connection it is.
macro_rules! each {
    ($self:ident, $p:ident => $call:expr) => {
        match $self {
            ChatConnection::Lines($p) => $call,
            #[cfg(feature = "websocket")]
            ChatConnection::WebSocket($p) => $call,
        }
    };
}

impl Protocol for ChatConnection {
    fn connection_made(&mut self, transport: &Transport) {
        each!(self, p => p.connection_made(transport))
    }
    fn data_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        each!(self, p => p.data_received(transport, data))
    }
    fn eof_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        each!(self, p => p.eof_received(transport, data))
    }
    fn pause_writing(&mut self, transport: &Transport) {
        each!(self, p => p.pause_writing(transport))
    }
    fn resume_writing(&mut self, transport: &Transport) {
        each!(self, p => p.resume_writing(transport))
    }
    fn shutdown_requested(&mut self, transport: &Transport) {
        each!(self, p => p.shutdown_requested(transport))
    }
    fn connection_lost(&mut self, reason: &DisconnectReason) {
        each!(self, p => p.connection_lost(reason))
    }
    fn poll_future(
        &mut self,
        transport: &Transport,
        input: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        each!(self, p => p.poll_future(transport, input, cx))
    }
}
