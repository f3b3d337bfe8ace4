//! WebSocket (RFC 6455), with `permessage-deflate` (RFC 7692): the frames
//! and messages, the handshake, and a connection to `.await` on.
//!
//! | file | what |
//! |---|---|
//! | `frame.rs` | [`Frame`], [`read_frame`], [`write_header`], masking: one frame, any chunking |
//! | `close_code.rs` | [`CloseCode`]: the codes, and which a peer may send |
//! | `close.rs` | [`Close`]: the close frame's payload |
//! | `utf8.rs` | [`Utf8Stream`]: text checked piece by piece, across fragments |
//! | `deflate.rs` | [`DeflateParams`], [`Deflater`], [`Inflater`]: the offer and answer, messages compressed and inflated under a bound |
//! | `message.rs` | [`Message`], [`Assembler`]: frames in, messages out |
//! | `handshake.rs` | [`accept`], [`client_request`], [`check_answer`]: the opening handshake |
//! | `socket.rs` | [`WebSocket`], [`WsConfig`]: one connection to await on, either end; pings answered, the close handshake |
//! | `server.rs` | [`start_websocket_server`], [`WsHandler`]: a listener that upgrades, or serves a page |
//! | `client.rs` | [`connect`]: `ws://` and `wss://` from a shard |
//! | `error.rs` | [`WsError`]: the close code and why |

mod client;
mod close;
mod close_code;
mod deflate;
mod error;
mod frame;
mod handshake;
mod message;
mod server;
mod socket;
mod utf8;

pub use client::connect;
pub use close::Close;
pub use close_code::CloseCode;
pub use deflate::{DeflateParams, Deflater, Inflater};
pub use error::WsError;
pub use frame::{
    apply_mask, read_frame, server_frame, write_header, Frame, Opcode, Role, MAX_HEADER,
};
pub use handshake::{
    accept, accept_key, check_answer, check_origin, client_key, client_request, is_upgrade,
    Accepted, Refusal,
};
pub use message::{Assembler, Message};
pub use server::{serve_connection, start_websocket_server, WsHandler};
pub use socket::{WebSocket, WsConfig};
pub use utf8::Utf8Stream;
