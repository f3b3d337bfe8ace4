//! Starting a sharded chat server: one room per shard, one bus between them.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;

use torsion::{
    Bus, BusError, Factory, RpcMessage, ServerBuilder, ServerError, ServerHandle, ShardInfo,
};

use super::client::ChatClient;
use super::connection::ChatConnection;
use super::message::ChatMessage;
use super::requests::{RoomAnswer, RoomRequest, RoomRpc};
use super::room::{self, ChatConfig, Room};
use crate::codec::LineCodec;
use crate::framed::LineReceiver;

/// Builds chat clients for one shard's room.
pub struct ChatFactory {
    room: Rc<Room>,
}

impl ChatFactory {
    /// The shard's room.
    pub fn room(&self) -> &Rc<Room> {
        &self.room
    }
}

impl ChatFactory {
    /// A line client of the room.
    fn line_client(&self) -> LineReceiver<ChatClient> {
        let codec = LineCodec::lf_or_crlf().max_length(self.room.config().max_line);
        LineReceiver::with_codec(ChatClient::new(self.room.clone()), codec)
    }
}

impl Factory for ChatFactory {
    type Protocol = ChatConnection;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<ChatConnection> {
        Some(ChatConnection::Lines(self.line_client()))
    }

    /// The first listener takes lines; with the `websocket` feature, every
    /// other listener (`also_listen`) takes WebSocket clients (and serves
    /// the chat page).
    fn build_protocol_on(&mut self, listener: usize, _peer: SocketAddr) -> Option<ChatConnection> {
        #[cfg(feature = "websocket")]
        if listener > 0 {
            return Some(ChatConnection::WebSocket(
                super::websocket::WsChatClient::new(self.room.clone()),
            ));
        }
        let _ = listener;
        Some(ChatConnection::Lines(self.line_client()))
    }

    fn over_capacity(&mut self, _peer: SocketAddr) -> Option<Bytes> {
        Some(Bytes::from_static(b"Server full, try again later.\r\n"))
    }

    /// On a WebSocket listener the goodbye is an HTTP answer a browser can
    /// show: `503 Service Unavailable`.
    fn over_capacity_on(&mut self, listener: usize, peer: SocketAddr) -> Option<Bytes> {
        #[cfg(feature = "websocket")]
        if listener > 0 {
            return Some(Bytes::from_static(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
                  content-length: 30\r\nconnection: close\r\n\r\nServer full, try again later.\n",
            ));
        }
        let _ = listener;
        self.over_capacity(peer)
    }
}

/// The buses between a chat server's shards: what they tell each other
/// (lines, acknowledgements, releases) and what they ask and await
/// (claims, `/who`). Cheap to clone; one per server.
#[derive(Debug, Clone)]
pub struct ChatBuses {
    /// Lines, acknowledgements, releases.
    pub messages: Bus<ChatMessage>,
    /// Claims and `/who` ([`RoomRpc`]).
    pub requests: Bus<RpcMessage<RoomRequest, RoomAnswer>>,
}

impl ChatBuses {
    /// Buses for the shards `builder` will start.
    pub fn for_server(builder: &ServerBuilder) -> Result<ChatBuses, ServerError> {
        Ok(ChatBuses {
            messages: builder.bus()?,
            requests: builder.bus()?,
        })
    }
}

/// On a shard: its room, attached to `buses`.
pub fn chat_factory(
    shard: &ShardInfo,
    buses: &ChatBuses,
    config: ChatConfig,
) -> Result<ChatFactory, BusError> {
    let room = Room::new(shard.id, shard.count, config);
    // Weak: the room owns its bus handle; the handler must not own the room.
    let receiver = Rc::downgrade(&room);
    let handle = buses.messages.attach(shard, move |msg| {
        if let Some(room) = receiver.upgrade() {
            room.on_message(msg);
        }
    })?;
    room.set_bus(handle);
    let served = Rc::downgrade(&room);
    room.set_rpc(RoomRpc::attach(
        &buses.requests,
        shard,
        move |from, request| room::serve(served.clone(), from, request),
    )?);
    Ok(ChatFactory { room })
}

/// Starts a chat server on `builder`'s shards: one room per shard, one bus
/// between them. Line clients on the builder's first listener; with the
/// `websocket` feature, WebSocket clients (and the chat page) on each
/// listener added with `also_listen`, in the same rooms. Each client's outbound hard cap is `config.max_outbound`;
/// the builder's other flow limits (water marks, read bound, linger) are
/// kept. A shard that cannot attach to the bus fails the start with an
/// error, not a panic.
pub fn start_chat_server(
    builder: ServerBuilder,
    config: ChatConfig,
) -> Result<ServerHandle, ServerError> {
    let limits = builder.current_limits().with_hard_cap(config.max_outbound);
    let buses = ChatBuses::for_server(&builder)?;
    config.metrics.attach_bus(&buses.messages);
    builder
        .limits(limits)
        .serve(move |shard| chat_factory(shard, &buses, config.clone()))
}
