//! # torsion-protocols
//!
//! Protocols that run on the torsion runtime, and the framing layers they
//! are built from (Twisted's `twisted.protocols.basic`).
//!
//! | module | what | Twisted |
//! |---|---|---|
//! | [`chat`] | the sharded chat server: [`chat::Room`] per shard, names and fan-out over the bus | the docs' `chat.py` |
//! | [`codec`] | pure framing codecs over `BytesMut`: line, netstring, int8/16/32 | the parsing inside `basic` |
//! | `framed.rs` (at the root) | [`Framed`]`<codec, handler>` + one [`FrameHandler`] trait: whole frames from any decoder, raw mode; [`LineReceiver`], [`NetstringReceiver`], [`IntNStringReceiver`] are its aliases | `basic.LineReceiver`, `basic.NetstringReceiver`, `basic.Int32StringReceiver`… |
//! | `framing.rs` (at the root) | [`Framing`]: the names `raw`, `line`, `netstring`, `int8`… | — |
//! | `echo.rs` (at the root) | [`Echo`] and echo in every framing | `wire.Echo` |
//! | [`metrics_endpoint`] | [`metrics_endpoint::serve_metrics`]: `GET /metrics` (Prometheus) over torsion's HTTP | — |
//! | [`http`] | HTTP/1.1: [`http::Router`] of sync or async handlers, [`http::HttpConnection`], limits and smuggling refusals; (feature `http-client`) [`http::client::HttpClient`], a client with a per-shard pool | `twisted.web`: `Site`, `Resource`, `HTTPChannel`; `Agent`, `HTTPConnectionPool` |
//! | [`websocket`] | (feature `websocket`) RFC 6455 with `permessage-deflate`: frames, messages, the handshake, a connection to await | Autobahn's `WebSocketServerProtocol` |
//!
//! Protocol state lives on its shard (`Rc`/`RefCell`) and is never shared
//! between threads; what shards must share travels as bus messages
//! (clippy's `disallowed-types`, configured in `protocols/clippy.toml`, keeps it that way in CI).

#[cfg(feature = "chat")]
pub mod chat;
pub mod codec;
mod echo;
mod framed;
mod framing;
#[cfg(feature = "http")]
pub mod http;
#[cfg(all(feature = "http", feature = "metrics"))]
pub mod metrics_endpoint;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use echo::{echo_protocol, DatagramEcho, Echo, EchoFactory, FrameEcho, FramedEchoFactory};
pub use framed::{
    FrameHandler, Framed, FramedConnection, IntNStringReceiver, LineReceiver, NetstringReceiver,
};
pub use framing::{Framing, UnknownFraming};
