//! [`WebSocket`]: one WebSocket connection to `.await` on, either end,
//! over torsion's async [`Connection`].
//!
//! `recv` gives text and binary messages; pings are answered with pongs
//! and pongs are taken, on the way. A frame that breaks the rules ends the
//! connection with the close code the RFC names (sent to the peer, and
//! returned as the error); the peer's close frame is answered (the close
//! handshake) and `recv` then returns `None`. A server's messages go out as
//! the frame header and the payload itself (`Bytes`, no copy: a room can
//! send one payload to every member); a client's are masked, so copied
//! once. Writes wait while the peer is behind (back-pressure), as every
//! write on a [`Connection`] does.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use torsion::Connection;

use super::close::Close;
use super::close_code::CloseCode;
use super::deflate::{DeflateParams, Deflater, Inflater};
use super::error::WsError;
use super::frame::{apply_mask, write_header, Opcode, Role};
use super::handshake::fill_random;
use super::message::{Assembler, Message};

/// Limits and options of a WebSocket connection.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// A message, inflated, at most (default 1 MiB; over it: 1009).
    pub max_message: usize,
    /// Take (server) or offer (client) `permessage-deflate` (default off).
    pub deflate: bool,
    /// Messages shorter than this are sent uncompressed even with
    /// `permessage-deflate` (default 64 bytes).
    pub deflate_min: usize,
    /// Subprotocols: the server's to choose from, the client's to offer.
    pub protocols: Vec<String>,
    /// The opening handshake, at most (default 10 s; then the connection
    /// is closed).
    pub handshake_timeout: Duration,
    /// After sending a close frame, how long to wait for the peer's
    /// (default 5 s; then the connection is closed anyway).
    pub close_timeout: Duration,
    /// The handshake's request head, at most (default 16 KiB).
    pub max_head: usize,
    /// The web origins whose pages may open the server's WebSockets
    /// (empty, the default: any; see [`check_origin`](super::check_origin)).
    pub allowed_origins: Vec<String>,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            max_message: 1024 * 1024,
            deflate: false,
            deflate_min: 64,
            protocols: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            max_head: 16 * 1024,
            allowed_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Our close frame is sent; the peer's is awaited.
    CloseSent,
    Closed,
}

/// Random bytes kept for masks (64 masks per refill).
const RANDOM_POOL: usize = 256;

/// One WebSocket connection.
pub struct WebSocket {
    conn: Connection,
    role: Role,
    assembler: Assembler,
    deflater: Option<Deflater>,
    deflate_min: usize,
    close_timeout: Duration,
    protocol: Option<String>,
    state: State,
    peer_close: Option<Close>,
    scratch: BytesMut,
    random: [u8; RANDOM_POOL],
    random_used: usize,
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.role)
            .field("peer", &self.conn.peer_addr())
            .field("protocol", &self.protocol)
            .field("deflate", &self.deflater.is_some())
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    /// A WebSocket over `conn` once the handshake is done: `role` is this
    /// end's, `deflate` what was agreed, `protocol` the subprotocol.
    pub fn new(
        conn: Connection,
        role: Role,
        config: &WsConfig,
        protocol: Option<String>,
        deflate: Option<DeflateParams>,
    ) -> WebSocket {
        // Each side's "no context takeover" is about its own compressor.
        let (ours_reset, theirs_reset) = match (role, deflate) {
            (_, None) => (false, false),
            (Role::Server, Some(p)) => (p.server_no_context_takeover, p.client_no_context_takeover),
            (Role::Client, Some(p)) => (p.client_no_context_takeover, p.server_no_context_takeover),
        };
        WebSocket {
            conn,
            role,
            assembler: Assembler::new(
                role,
                config.max_message,
                deflate.map(|_| Inflater::new(theirs_reset)),
            ),
            deflater: deflate.map(|_| Deflater::new(ours_reset)),
            deflate_min: config.deflate_min,
            close_timeout: config.close_timeout,
            protocol,
            state: State::Open,
            peer_close: None,
            scratch: BytesMut::new(),
            random: [0; RANDOM_POOL],
            random_used: RANDOM_POOL,
        }
    }

    /// The subprotocol agreed, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Whether `permessage-deflate` is on.
    pub fn is_compressed(&self) -> bool {
        self.deflater.is_some()
    }

    /// The connection underneath (its peer, shard, clock, shutdown).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The peer's close frame, once it came.
    pub fn peer_close(&self) -> Option<&Close> {
        self.peer_close.as_ref()
    }

    /// The next text or binary message; `None` once the connection is
    /// closed (after the close handshake, or after an error returned
    /// here: a broken frame's, whose code was sent to the peer, or 1006
    /// when the connection ended without a close frame).
    pub async fn recv(&mut self) -> Option<Result<Message, WsError>> {
        loop {
            if self.state == State::Closed {
                return None;
            }
            let assembler = &mut self.assembler;
            let next = self
                .conn
                .read_with(|buf, at_end| match assembler.read(buf) {
                    Ok(None) if at_end && !buf.is_empty() => Err(WsError::new(
                        CloseCode::ABNORMAL,
                        "the connection ended inside a frame",
                    )),
                    other => other,
                })
                .await;
            match next {
                // The server is shutting down: this end says so (1001) and
                // the handler's loop ends.
                None if self.conn.is_shutting_down() && self.role == Role::Server => {
                    if self.state == State::Open {
                        self.queue_close(CloseCode::GOING_AWAY, "server shutting down");
                    }
                    self.state = State::Closed;
                    self.conn.close();
                    return None;
                }
                None => {
                    self.state = State::Closed;
                    return Some(Err(WsError::new(
                        CloseCode::ABNORMAL,
                        "the connection ended without a close frame",
                    )));
                }
                Some(Err(e)) => {
                    if self.state == State::Open {
                        self.queue_close(e.code, &e.reason);
                    }
                    self.state = State::Closed;
                    self.conn.close();
                    return Some(Err(e));
                }
                Some(Ok(Message::Ping(payload))) => {
                    if self.state == State::Open {
                        // Err: the connection is closing; the next read says so.
                        let _ = self.write_frame(Opcode::Pong, payload, false).await;
                    }
                }
                Some(Ok(Message::Pong(_))) => {}
                Some(Ok(Message::Close(close))) => {
                    if self.state == State::Open {
                        let code = if close.code == CloseCode::NO_STATUS {
                            CloseCode::NORMAL
                        } else {
                            close.code
                        };
                        self.queue_close(code, "");
                    }
                    self.peer_close = Some(close);
                    self.state = State::Closed;
                    self.conn.close();
                    return None;
                }
                Some(Ok(message)) => {
                    if self.state == State::Open {
                        return Some(Ok(message));
                    }
                    // Closing: what still arrives is dropped.
                }
            }
        }
    }

    /// Sends a message (a text or binary message, a ping or pong; a close
    /// message starts the close handshake, as [`WebSocket::close`]).
    pub async fn send(&mut self, message: Message) -> Result<(), WsError> {
        if self.state != State::Open {
            return Err(WsError::new(CloseCode::ABNORMAL, "the WebSocket is closed"));
        }
        match message {
            Message::Text(payload) => self.send_data(Opcode::Text, payload).await,
            Message::Binary(payload) => self.send_data(Opcode::Binary, payload).await,
            Message::Ping(payload) => self.send_control(Opcode::Ping, payload).await,
            Message::Pong(payload) => self.send_control(Opcode::Pong, payload).await,
            Message::Close(c) => self.close(c.code, &c.reason).await,
        }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), WsError> {
        self.send(Message::text(text)).await
    }

    async fn send_control(&mut self, opcode: Opcode, payload: Bytes) -> Result<(), WsError> {
        if payload.len() > 125 {
            return Err(WsError::protocol(format!(
                "a control frame of {} bytes (at most 125)",
                payload.len()
            )));
        }
        self.write_frame(opcode, payload, false).await
    }

    async fn send_data(&mut self, opcode: Opcode, payload: Bytes) -> Result<(), WsError> {
        match self.deflater.as_mut() {
            Some(d) if payload.len() >= self.deflate_min => {
                let packed = d.compress(&payload);
                self.write_frame(opcode, packed, true).await
            }
            _ => self.write_frame(opcode, payload, false).await,
        }
    }

    /// Starts the close handshake with `code` and `reason`, waits (at most
    /// the close timeout) for the peer's close frame, dropping any
    /// messages still arriving, and closes the connection.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), WsError> {
        if self.state == State::Open {
            self.state = State::CloseSent;
            // Queued without waiting on a peer that does not read: the
            // whole close is bounded by the close timeout.
            if self.queue_close(code, reason) {
                let clock = self.conn.clock();
                let timeout = self.close_timeout;
                let wait = async { while self.recv().await.is_some() {} };
                futures_lite::future::or(wait, async {
                    clock.sleep(timeout).await;
                })
                .await;
            }
        }
        self.state = State::Closed;
        self.conn.close();
        Ok(())
    }

    /// Queues a close frame with `code` (none for a code that may not be
    /// sent, such as 1005 or 1006: then the frame is empty) without
    /// waiting for the queue to drain; false if the connection takes no
    /// more.
    fn queue_close(&mut self, code: CloseCode, reason: &str) -> bool {
        let payload = if code.may_be_sent() {
            Close::payload(code, reason)
        } else {
            Bytes::new()
        };
        let mask = (self.role == Role::Client).then(|| self.next_mask());
        self.scratch.clear();
        write_header(
            &mut self.scratch,
            true,
            false,
            Opcode::Close,
            payload.len(),
            mask,
        );
        let start = self.scratch.len();
        self.scratch.extend_from_slice(&payload);
        if let Some(mask) = mask {
            apply_mask(&mut self.scratch[start..], mask, 0);
        }
        self.conn.transport().write(&self.scratch).is_ok()
    }

    /// Writes one frame: a server's as header then payload (no copy of a
    /// large payload), a client's masked (a copy).
    async fn write_frame(
        &mut self,
        opcode: Opcode,
        payload: Bytes,
        compressed: bool,
    ) -> Result<(), WsError> {
        let closed = |_| WsError::new(CloseCode::ABNORMAL, "the connection is closed");
        let mask = (self.role == Role::Client).then(|| self.next_mask());
        self.scratch.clear();
        write_header(
            &mut self.scratch,
            true,
            compressed,
            opcode,
            payload.len(),
            mask,
        );
        match mask {
            None if payload.len() > 512 => {
                self.conn.transport().write(&self.scratch).map_err(closed)?;
                self.conn.write_bytes(payload).await.map_err(closed)
            }
            None => {
                self.scratch.extend_from_slice(&payload);
                self.conn.write(&self.scratch).await.map_err(closed)
            }
            Some(mask) => {
                let start = self.scratch.len();
                self.scratch.extend_from_slice(&payload);
                apply_mask(&mut self.scratch[start..], mask, 0);
                self.conn.write(&self.scratch).await.map_err(closed)
            }
        }
    }

    fn next_mask(&mut self) -> [u8; 4] {
        if self.random_used + 4 > RANDOM_POOL {
            fill_random(&mut self.random);
            self.random_used = 0;
        }
        let at = self.random_used;
        self.random_used += 4;
        [
            self.random[at],
            self.random[at + 1],
            self.random[at + 2],
            self.random[at + 3],
        ]
    }
}
