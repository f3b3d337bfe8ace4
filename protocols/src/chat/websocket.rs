//! [`WsChatClient`]: a chat client over WebSocket — one text message is
//! one chat line, both ways — in the same [`Room`] as the line clients:
//! the same greeting, names, commands, slow-consumer cut and flush window.
//! A request that is not an upgrade gets the chat page (`GET /`) or 404.
//!
//! It is a callback protocol, as the line client is, so the room's reading
//! pauses (a claim in flight, the room's hold) apply to it the same way:
//! while its reading is paused it takes no message off its input, and the
//! driver offers the rest again when reading resumes. A line over the
//! room's limit is a message over the WebSocket limit: closed with 1009.

use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use torsion::{DelayedCall, DisconnectReason, Protocol, Transport};

use super::requests::{poll_request, PendingRequest};
use super::room::Room;
use super::wire::ChatWire;
use crate::http::{parse_head, response, status_page, whole_response, HeadScanner, Response};
use crate::websocket::{
    accept, check_origin, is_upgrade, server_frame, Assembler, Close, CloseCode, Message, Opcode,
    Role,
};

/// The chat page: HTML and JavaScript, nothing fetched from elsewhere.
pub const CHAT_PAGE: &str = include_str!("page.html");

/// How long a connection may take to send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

enum Phase {
    Handshake(HeadScanner),
    Open { id: u64, assembler: Assembler },
    Done,
}

/// One WebSocket chat connection.
pub struct WsChatClient {
    room: Rc<Room>,
    phase: Phase,
    request: Option<PendingRequest>,
    handshake_timer: Option<DelayedCall>,
}

impl WsChatClient {
    /// A client of `room`.
    pub fn new(room: Rc<Room>) -> WsChatClient {
        WsChatClient {
            room,
            phase: Phase::Handshake(HeadScanner::default()),
            request: None,
            handshake_timer: None,
        }
    }

    fn id(&self) -> Option<u64> {
        match self.phase {
            Phase::Open { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Reads the handshake off `data`; true once the WebSocket is open.
    fn handshake(&mut self, transport: &Transport, data: &mut BytesMut) -> bool {
        let Phase::Handshake(scanner) = &mut self.phase else {
            return false;
        };
        let head = match scanner.scan(data, 16 * 1024) {
            Ok(None) => return false,
            Ok(Some(n)) => parse_head(data.split_to(n).freeze(), 100),
            Err(e) => Err(e),
        };
        let head = match head {
            Ok(head) => head,
            Err(e) => return self.answer(transport, status_page(e.status())),
        };
        if !is_upgrade(&head) {
            let path = head.parts.uri.path();
            let page = if path == "/" || path == "/index.html" {
                response(StatusCode::OK, "text/html; charset=utf-8", CHAT_PAGE)
            } else {
                status_page(StatusCode::NOT_FOUND)
            };
            return self.answer(transport, page);
        }
        let accepted = check_origin(&head, &self.room.config().websocket_origins)
            .and_then(|()| accept(&head, &[], false));
        match accepted {
            Ok(accepted) => {
                if let Some(t) = self.handshake_timer.take() {
                    t.cancel();
                }
                // Err: the connection is closing, and its end reason says why.
                let _ = transport.write(&accepted.response);
                let id = self.room.join(transport.clone(), ChatWire::WebSocket);
                let max = self.room.config().max_line;
                self.phase = Phase::Open {
                    id,
                    assembler: Assembler::new(Role::Server, max, None),
                };
                true
            }
            Err(refusal) => {
                let body = format!("{} {}\n", refusal.status.as_u16(), refusal.reason);
                self.answer(
                    transport,
                    response(refusal.status, "text/plain; charset=utf-8", body),
                )
            }
        }
    }

    /// Writes `r` and closes; false (not open).
    fn answer(&mut self, transport: &Transport, r: Response) -> bool {
        // Err: the connection is closing, and its end reason says why.
        let _ = transport.write(&whole_response(r));
        transport.close();
        self.phase = Phase::Done;
        false
    }

    /// Takes messages off `data` while reading is not paused.
    fn messages(&mut self, transport: &Transport, data: &mut BytesMut) {
        loop {
            if transport.is_reading_paused() {
                // The rest waits; the driver offers it again on resume.
                return;
            }
            let Phase::Open { id, assembler } = &mut self.phase else {
                data.clear();
                return;
            };
            let id = *id;
            match assembler.read(data) {
                Ok(None) => return,
                Ok(Some(Message::Text(line))) => {
                    if let Some(request) = self.room.on_line(id, line) {
                        self.request = Some(request);
                    }
                }
                Ok(Some(Message::Binary(_))) => {
                    return self.close(
                        transport,
                        CloseCode::UNSUPPORTED,
                        "chat lines are text messages",
                    );
                }
                Ok(Some(Message::Ping(payload))) => {
                    // Err: the connection is closing, and its end reason says why.
                    let _ = transport.write(&server_frame(Opcode::Pong, &payload));
                }
                Ok(Some(Message::Pong(_))) => {}
                Ok(Some(Message::Close(close))) => {
                    let code = if close.code == CloseCode::NO_STATUS {
                        CloseCode::NORMAL
                    } else {
                        close.code
                    };
                    return self.close(transport, code, "");
                }
                Err(e) => {
                    tracing::debug!(peer = %transport.peer_addr(), "chat over WebSocket: {e}");
                    return self.close(transport, e.code, &e.reason);
                }
            }
        }
    }

    /// Sends a close frame and closes (the peer's answer is not awaited:
    /// nothing more is read).
    fn close(&mut self, transport: &Transport, code: CloseCode, reason: &str) {
        if code.may_be_sent() {
            let payload = Close::payload(code, reason);
            // Err: the connection is closing, and its end reason says why.
            let _ = transport.write(&server_frame(Opcode::Close, &payload));
        }
        transport.close();
        if let Some(id) = self.id() {
            self.room.leave(id);
        }
        self.phase = Phase::Done;
    }
}

impl Protocol for WsChatClient {
    fn connection_made(&mut self, transport: &Transport) {
        let t = transport.clone();
        self.handshake_timer = Some(
            transport
                .clock()
                .call_later(HANDSHAKE_TIMEOUT, move || t.close()),
        );
    }

    fn data_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        if matches!(self.phase, Phase::Handshake(_)) && !self.handshake(transport, data) {
            return;
        }
        self.messages(transport, data);
    }

    fn eof_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        self.data_received(transport, data);
        transport.close();
    }

    fn pause_writing(&mut self, _transport: &Transport) {
        if let Some(id) = self.id() {
            self.room.recipient_congested(id);
        }
    }

    fn resume_writing(&mut self, _transport: &Transport) {
        if let Some(id) = self.id() {
            self.room.recipient_drained(id);
        }
    }

    fn shutdown_requested(&mut self, transport: &Transport) {
        if self.id().is_some() {
            let line = ChatWire::WebSocket.frame(&Bytes::from_static(b"Server shutting down.\r\n"));
            // Err: the connection is closing, and its end reason says why.
            let _ = transport.write_bytes(line);
            self.close(transport, CloseCode::GOING_AWAY, "server shutting down");
        } else {
            transport.close();
        }
    }

    fn connection_lost(&mut self, _reason: &DisconnectReason) {
        if let Some(t) = self.handshake_timer.take() {
            t.cancel();
        }
        if let Some(id) = self.id() {
            self.room.leave(id);
        }
        self.phase = Phase::Done;
    }

    fn poll_future(
        &mut self,
        _transport: &Transport,
        _input: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        poll_request(&mut self.request, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::testing::ManualChat;
    use crate::chat::{ChatClient, ChatConfig};
    use crate::codec::LineCodec;
    use crate::framed::LineReceiver;
    use crate::websocket::{apply_mask, read_frame, write_header, Frame};
    use torsion::testing::{HarnessOptions, ProtocolHarness};
    use torsion::ManualClock;

    const UPGRADE: &[u8] =
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    struct World {
        chat: ManualChat,
        clock: ManualClock,
    }

    impl World {
        fn new(shards: usize, config: ChatConfig) -> World {
            World {
                chat: ManualChat::new(shards, config),
                clock: ManualClock::new(),
            }
        }

        fn options(&self, shard: usize) -> HarnessOptions {
            HarnessOptions::default()
                .with_clock(self.clock.clone())
                .with_shard_id(shard)
        }

        fn browser(&self, shard: usize) -> ProtocolHarness<WsChatClient> {
            let mut h = ProtocolHarness::with_options(
                WsChatClient::new(self.chat.rooms[shard].clone()),
                self.options(shard),
            );
            h.receive(UPGRADE);
            let written = h.take_written();
            let end = written.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let head = String::from_utf8(written[..end].to_vec()).unwrap();
            assert!(
                head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
                "{head}"
            );
            // The greeting follows the 101 at once, as a text message.
            assert_eq!(&written[end..], b"\x81\x11What's your name?");
            h
        }

        fn line_client(&self, shard: usize) -> ProtocolHarness<LineReceiver<ChatClient>> {
            let room = self.chat.rooms[shard].clone();
            ProtocolHarness::with_options(
                LineReceiver::with_codec(ChatClient::new(room), LineCodec::lf_or_crlf()),
                self.options(shard),
            )
        }

        /// Moves the buses, and the clock past any flush window.
        fn pump(&self) {
            while self.chat.pump() > 0 {}
            self.clock.advance(Duration::from_millis(50));
            while self.chat.pump() > 0 {}
        }
    }

    /// A browser's frame: masked.
    fn masked(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        let mask = [0xA1, 0xB2, 0xC3, 0xD4];
        let mut out = BytesMut::new();
        write_header(&mut out, true, false, opcode, payload.len(), Some(mask));
        let mut p = payload.to_vec();
        apply_mask(&mut p, mask, 0);
        out.extend_from_slice(&p);
        out.to_vec()
    }

    /// The frames a browser was sent since the last look.
    fn frames(h: &mut ProtocolHarness<WsChatClient>) -> Vec<Frame> {
        let mut buf = BytesMut::from(&h.take_written()[..]);
        let mut out = Vec::new();
        while let Some(f) = read_frame(&mut buf, Role::Client, false, 1 << 20).unwrap() {
            out.push(f);
        }
        assert!(buf.is_empty(), "a partial frame: {buf:?}");
        out
    }

    fn texts(h: &mut ProtocolHarness<WsChatClient>) -> Vec<String> {
        frames(h)
            .into_iter()
            .map(|f| {
                assert_eq!(f.opcode, Opcode::Text);
                String::from_utf8(f.payload.to_vec()).unwrap()
            })
            .collect()
    }

    #[test]
    fn browsers_and_a_line_client_share_one_room_across_shards() {
        let w = World::new(2, ChatConfig::default());
        let mut ann = w.browser(0);
        let mut bob = w.browser(1);
        let mut cat = w.line_client(1);
        ann.receive(&masked(Opcode::Text, b"ann"));
        bob.receive(&masked(Opcode::Text, b"ann"));
        w.pump();
        assert_eq!(texts(&mut ann), ["Welcome, ann!"]);
        assert_eq!(texts(&mut bob), ["Name taken, please choose another."]);
        // The name arrives in two fragments of one message.
        let mut first = masked(Opcode::Text, b"bo");
        first[0] &= 0x7F; // not the last fragment
        bob.receive(&first);
        bob.receive(&masked(Opcode::Continuation, b"b"));
        cat.receive(b"cat\r\n");
        w.pump();
        assert_eq!(texts(&mut bob), ["Welcome, bob!"]);
        assert_eq!(
            String::from_utf8(cat.take_written()).unwrap(),
            "What's your name?\r\nWelcome, cat!\r\n"
        );

        ann.receive(&masked(Opcode::Text, "hello from a browser ✓".as_bytes()));
        w.pump();
        cat.receive(b"hi from a terminal\r\n");
        w.pump();
        assert_eq!(
            texts(&mut bob),
            ["<ann> hello from a browser ✓", "<cat> hi from a terminal"]
        );
        assert_eq!(texts(&mut ann), ["<cat> hi from a terminal"]);
        assert_eq!(
            String::from_utf8(cat.take_written()).unwrap(),
            "<ann> hello from a browser ✓\r\n"
        );
        ann.receive(&masked(Opcode::Text, b"/who"));
        w.pump();
        assert_eq!(texts(&mut ann), ["Users: ann bob cat"]);
        // /quit from a browser: a clean close (1000), not a dropped
        // connection the page would reconnect after.
        let mut leaver = w.browser(0);
        leaver.receive(&masked(Opcode::Text, b"dan"));
        w.pump();
        texts(&mut leaver);
        leaver.receive(&masked(Opcode::Text, b"/quit"));
        w.pump();
        let f = frames(&mut leaver);
        assert_eq!(f.last().map(|f| f.opcode), Some(Opcode::Close));
        assert_eq!(&f.last().unwrap().payload[..], b"\x03\xe8quit");
        assert!(leaver.is_closing() || !leaver.is_open());
        // A ping is answered; a clean close is answered and frees the name.
        ann.receive(&masked(Opcode::Ping, b"p"));
        let pong = frames(&mut ann);
        assert_eq!(
            (pong[0].opcode, &pong[0].payload[..]),
            (Opcode::Pong, &b"p"[..])
        );
        ann.receive(&masked(Opcode::Close, &[0x03, 0xE8]));
        let close = frames(&mut ann);
        assert_eq!(
            (close[0].opcode, &close[0].payload[..]),
            (Opcode::Close, &[0x03, 0xE8][..])
        );
        assert!(ann.is_closing() || !ann.is_open());
        w.pump();
        let mut again = w.browser(0);
        again.receive(&masked(Opcode::Text, b"ann"));
        w.pump();
        assert_eq!(texts(&mut again), ["Welcome, ann!"]);
    }

    #[test]
    fn what_a_browser_must_not_send_closes_it_with_the_rfc_code() {
        let w = World::new(1, ChatConfig::default().with_max_line(64));
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (masked(Opcode::Text, &[b'x'; 65]), 1009),
            (masked(Opcode::Binary, b"bytes"), 1003),
            (masked(Opcode::Text, b"\xff"), 1007),
            (b"\x81\x03abc".to_vec(), 1002), // not masked
        ];
        for (wire, code) in cases {
            let mut b = w.browser(0);
            texts(&mut b);
            b.receive(&wire);
            let f = frames(&mut b);
            assert_eq!(f.last().map(|f| f.opcode), Some(Opcode::Close));
            let p = &f.last().unwrap().payload;
            assert_eq!(u16::from_be_bytes([p[0], p[1]]), code);
            assert!(b.is_closing() || !b.is_open());
        }
    }

    #[test]
    fn a_plain_get_gets_the_page_and_anything_else_a_status() {
        let w = World::new(1, ChatConfig::default());
        let ask = |req: &[u8]| {
            let mut h = ProtocolHarness::with_options(
                WsChatClient::new(w.chat.rooms[0].clone()),
                w.options(0),
            );
            h.receive(req);
            String::from_utf8(h.take_written()).unwrap()
        };
        let page = ask(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(
            page.contains("content-type: text/html; charset=utf-8\r\n"),
            "{page}"
        );
        assert!(page.ends_with("</html>\n"));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "the page fetches nothing"
        );
        assert!(ask(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404 "));
        // With origins named, a page from elsewhere is refused.
        let strict = World::new(
            1,
            ChatConfig::default().with_websocket_origins(vec!["http://chat.test".into()]),
        );
        let mut h = ProtocolHarness::with_options(
            WsChatClient::new(strict.chat.rooms[0].clone()),
            strict.options(0),
        );
        let from_elsewhere = String::from_utf8(UPGRADE.to_vec())
            .unwrap()
            .replace("Host: x\r\n", "Host: x\r\nOrigin: http://evil.test\r\n");
        h.receive(from_elsewhere.as_bytes());
        let refused = String::from_utf8(h.take_written()).unwrap();
        assert!(
            refused.starts_with("HTTP/1.1 403 Forbidden\r\n"),
            "{refused}"
        );
        assert!(refused.contains("pages from http://evil.test may not open this WebSocket"));
        assert!(ask(b"BREW / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 "));
        // An upgraded connection outlives the handshake timeout.
        let mut upgraded =
            ProtocolHarness::with_options(WsChatClient::new(w.chat.rooms[0].clone()), w.options(0));
        upgraded.receive(UPGRADE);
        w.clock.advance(HANDSHAKE_TIMEOUT * 2);
        assert!(upgraded.is_open() && !upgraded.is_closing());
        // A handshake that never finishes is closed after the timeout.
        let mut slow =
            ProtocolHarness::with_options(WsChatClient::new(w.chat.rooms[0].clone()), w.options(0));
        slow.receive(b"GET / HTTP/1.1\r\n");
        w.clock.advance(HANDSHAKE_TIMEOUT);
        assert!(slow.is_closing() || !slow.is_open());
    }
}
