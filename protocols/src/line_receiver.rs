//! `LineReceiver`: line framing as a layer over `Protocol` (Twisted's
//! `basic.LineReceiver`), with raw mode.
//!
//! Wrap a [`LineHandler`] in a [`LineReceiver`] and it receives whole lines;
//! it sends through the [`LineConnection`] it is given (a cheap clone it may
//! keep for timers). As in Twisted:
//!
//! * once the handler closes the connection, the remaining lines of the same
//!   read are not delivered;
//! * `set_raw_mode` from inside `line_received` delivers the rest of the
//!   buffer, and everything after, to `raw_data_received`;
//!   `set_line_mode(extra)` switches back and treats `extra` as input (it is
//!   processed right after the current callback returns);
//! * an over-long line calls `line_length_exceeded`, whose default closes the
//!   connection; an override that keeps it open gets the next lines;
//! * while the transport's reading is paused (`Transport::pause_reading`,
//!   from a callback or from anywhere else) no further line or raw data is
//!   delivered: the rest stays buffered and is delivered, in order, once
//!   reading resumes (Twisted's `pauseProducing`/`resumeProducing`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use torsion::{DisconnectReason, Protocol, Transport};

use crate::codec::{Decoder, FrameError, LineCodec};
use crate::send::{send_frame, send_frame_bytes, SendError};

/// The code that handles a line protocol's connection.
pub trait LineHandler: 'static {
    /// The connection is open.
    fn connection_made(&mut self, conn: &LineConnection) {
        let _ = conn;
    }

    /// A whole line arrived (without its delimiter).
    fn line_received(&mut self, conn: &LineConnection, line: Bytes);

    /// Bytes arrived in raw mode. The default discards them.
    fn raw_data_received(&mut self, conn: &LineConnection, data: Bytes) {
        let _ = (conn, data);
    }

    /// A line over the limit arrived (Twisted's `lineLengthExceeded`).
    /// The default closes the connection; if an override keeps it open, the
    /// rest of the long line is skipped and the next lines are delivered.
    fn line_length_exceeded(&mut self, conn: &LineConnection, error: &FrameError) {
        let _ = error;
        conn.transport().close();
    }

    /// The peer half-closed. The default closes after flushing.
    fn eof_received(&mut self, conn: &LineConnection) {
        conn.transport().close();
    }

    /// Output passed the high-water mark.
    fn pause_writing(&mut self, conn: &LineConnection) {
        let _ = conn;
    }

    /// Output drained to the low-water mark.
    fn resume_writing(&mut self, conn: &LineConnection) {
        let _ = conn;
    }

    /// The server is shutting down. The default closes after flushing.
    fn shutdown_requested(&mut self, conn: &LineConnection) {
        conn.transport().close();
    }

    /// The connection ended; called exactly once.
    fn connection_lost(&mut self, reason: &DisconnectReason) {
        let _ = reason;
    }
}

struct Mode {
    raw: Cell<bool>,
    /// Bytes handed to `set_line_mode`, to be processed as input.
    extra: RefCell<BytesMut>,
}

/// A line connection: send lines, switch modes, reach the transport.
#[derive(Clone)]
pub struct LineConnection {
    transport: Transport,
    encoder: Rc<LineCodec>,
    mode: Rc<Mode>,
}

impl std::fmt::Debug for LineConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineConnection")
            .field("transport", &self.transport)
            .field("raw", &self.mode.raw.get())
            .finish()
    }
}

impl LineConnection {
    /// Sends `line` followed by the delimiter (Twisted's `sendLine`).
    /// A line containing the delimiter is refused, not sent as two.
    pub fn send_line(&self, line: &[u8]) -> Result<(), SendError> {
        send_frame(&self.transport, &*self.encoder, line)
    }

    /// Like [`LineConnection::send_line`], queueing a large line by reference.
    pub fn send_line_bytes(&self, line: Bytes) -> Result<(), SendError> {
        send_frame_bytes(&self.transport, &*self.encoder, line)
    }

    /// The underlying transport (raw writes, close, addresses, clock).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// From now on deliver input to `raw_data_received`.
    pub fn set_raw_mode(&self) {
        self.mode.raw.set(true);
    }

    /// Back to lines; `extra` is processed as input first.
    pub fn set_line_mode(&self, extra: &[u8]) {
        self.mode.raw.set(false);
        self.mode.extra.borrow_mut().extend_from_slice(extra);
    }

    /// True in raw mode.
    pub fn is_raw_mode(&self) -> bool {
        self.mode.raw.get()
    }
}

/// A [`Protocol`] that frames lines for a [`LineHandler`].
pub struct LineReceiver<H: LineHandler> {
    handler: H,
    codec: LineCodec,
    conn: Option<LineConnection>,
}

impl<H: LineHandler> LineReceiver<H> {
    /// `\r\n` lines of at most 16384 bytes (Twisted's defaults).
    pub fn new(handler: H) -> Self {
        Self::with_codec(handler, LineCodec::new())
    }

    /// Lines as `codec` frames them (delimiter, `max_length`).
    pub fn with_codec(handler: H, codec: LineCodec) -> Self {
        LineReceiver {
            handler,
            codec,
            conn: None,
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The handler, the codec and the connection (made on first use), as
    /// separate borrows: no clone per callback.
    fn parts(&mut self, transport: &Transport) -> (&mut H, &mut LineCodec, &LineConnection) {
        let LineReceiver {
            handler,
            codec,
            conn,
        } = self;
        let conn = conn.get_or_insert_with(|| LineConnection {
            transport: transport.clone(),
            encoder: Rc::new(codec.clone()),
            mode: Rc::new(Mode {
                raw: Cell::new(false),
                extra: RefCell::new(BytesMut::new()),
            }),
        });
        (handler, codec, conn)
    }
}

impl<H: LineHandler> Protocol for LineReceiver<H> {
    fn connection_made(&mut self, transport: &Transport) {
        let (handler, _, conn) = self.parts(transport);
        handler.connection_made(conn);
    }

    fn data_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        let (handler, codec, conn) = self.parts(transport);
        loop {
            {
                // Input handed back by set_line_mode goes first.
                let mut extra = conn.mode.extra.borrow_mut();
                if !extra.is_empty() {
                    extra.extend_from_slice(data);
                    *data = extra.split();
                }
            }
            if transport.is_closing() {
                // As Twisted: nothing after the line that closed.
                data.clear();
                return;
            }
            if transport.is_reading_paused() {
                // As Twisted's pauseProducing: the rest waits in the buffer
                // and is offered again when reading resumes.
                return;
            }
            if conn.is_raw_mode() {
                if data.is_empty() {
                    return;
                }
                // The codec's scan position refers to bytes about to leave.
                codec.reset();
                handler.raw_data_received(conn, data.split().freeze());
                if conn.mode.extra.borrow().is_empty() {
                    return;
                }
                continue;
            }
            match codec.decode(data) {
                Ok(Some(line)) => handler.line_received(conn, line),
                Ok(None) => {
                    if conn.mode.extra.borrow().is_empty() {
                        return;
                    }
                }
                Err(e) => handler.line_length_exceeded(conn, &e),
            }
        }
    }

    fn eof_received(&mut self, transport: &Transport) {
        let (handler, _, conn) = self.parts(transport);
        handler.eof_received(conn);
    }

    fn pause_writing(&mut self, transport: &Transport) {
        let (handler, _, conn) = self.parts(transport);
        handler.pause_writing(conn);
    }

    fn resume_writing(&mut self, transport: &Transport) {
        let (handler, _, conn) = self.parts(transport);
        handler.resume_writing(conn);
    }

    fn shutdown_requested(&mut self, transport: &Transport) {
        let (handler, _, conn) = self.parts(transport);
        handler.shutdown_requested(conn);
    }

    fn connection_lost(&mut self, reason: &DisconnectReason) {
        self.handler.connection_lost(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use torsion::testing::ProtocolHarness;

    type Log = Rc<RefCell<Vec<String>>>;

    /// Echoes lines; `raw N` switches to raw mode for N bytes, then back.
    struct Recorder {
        log: Log,
        raw_left: usize,
        keep_open_on_long_lines: bool,
    }

    impl LineHandler for Recorder {
        fn line_received(&mut self, conn: &LineConnection, line: Bytes) {
            let text = String::from_utf8_lossy(&line).into_owned();
            self.log.borrow_mut().push(format!("line {text}"));
            if let Some(n) = text.strip_prefix("raw ") {
                self.raw_left = n.parse().unwrap();
                conn.set_raw_mode();
            } else if text == "quit" {
                conn.transport().close();
            } else {
                conn.send_line(&line).unwrap();
            }
        }
        fn raw_data_received(&mut self, conn: &LineConnection, data: Bytes) {
            let take = self.raw_left.min(data.len());
            self.log
                .borrow_mut()
                .push(format!("raw {}", String::from_utf8_lossy(&data[..take])));
            self.raw_left -= take;
            if self.raw_left == 0 {
                conn.set_line_mode(&data[take..]);
            }
        }
        fn line_length_exceeded(&mut self, conn: &LineConnection, error: &FrameError) {
            self.log.borrow_mut().push(format!("too long: {error}"));
            if !self.keep_open_on_long_lines {
                conn.transport().close();
            }
        }
    }

    fn harness(keep_open: bool, max: usize) -> (ProtocolHarness<LineReceiver<Recorder>>, Log) {
        let log = Log::default();
        let receiver = LineReceiver::with_codec(
            Recorder {
                log: log.clone(),
                raw_left: 0,
                keep_open_on_long_lines: keep_open,
            },
            LineCodec::new().max_length(max),
        );
        (ProtocolHarness::new(receiver), log)
    }

    #[test]
    fn lines_are_delivered_and_sent_in_every_chunking() {
        let input = b"hello\r\nworld\r\n";
        for size in 1..=input.len() {
            let (mut h, log) = harness(false, 100);
            for chunk in input.chunks(size) {
                h.receive(chunk);
            }
            assert_eq!(*log.borrow(), ["line hello", "line world"]);
            assert_eq!(h.take_written(), b"hello\r\nworld\r\n");
        }
    }

    #[test]
    fn raw_mode_switches_mid_buffer_and_back() {
        let (mut h, log) = harness(false, 100);
        h.receive(b"raw 5\r\nABCDEnext\r\n");
        assert_eq!(*log.borrow(), ["line raw 5", "raw ABCDE", "line next"]);
        assert_eq!(h.take_written(), b"next\r\n");
        // Split at every point, the same story.
        let input = b"a\r\nraw 3\r\nxyzb\r\n";
        for cut in 0..=input.len() {
            let (mut h, log) = harness(false, 100);
            h.receive(&input[..cut]);
            h.receive(&input[cut..]);
            let raw: String = log
                .borrow()
                .iter()
                .filter_map(|l| l.strip_prefix("raw "))
                .collect();
            assert_eq!(raw, "xyz", "cut {cut}: {:?}", log.borrow());
            assert_eq!(log.borrow().first().unwrap(), "line a");
            assert_eq!(log.borrow().last().unwrap(), "line b");
        }
    }

    /// Keeps its connection so the test can switch modes from outside any
    /// callback, as a timer holding a `LineConnection` would.
    #[derive(Default)]
    struct Outside {
        conn: Rc<RefCell<Option<LineConnection>>>,
        lines: Rc<RefCell<Vec<String>>>,
        raw: Rc<RefCell<Vec<u8>>>,
    }

    impl LineHandler for Outside {
        fn connection_made(&mut self, conn: &LineConnection) {
            *self.conn.borrow_mut() = Some(conn.clone());
        }
        fn line_received(&mut self, _conn: &LineConnection, line: Bytes) {
            self.lines
                .borrow_mut()
                .push(String::from_utf8_lossy(&line).into_owned());
        }
        fn raw_data_received(&mut self, _conn: &LineConnection, data: Bytes) {
            self.raw.borrow_mut().extend_from_slice(&data);
        }
    }

    #[test]
    fn switching_modes_outside_a_callback_keeps_lines_whole() {
        let handler = Outside::default();
        let (conn, lines, raw) = (
            handler.conn.clone(),
            handler.lines.clone(),
            handler.raw.clone(),
        );
        let mut h = ProtocolHarness::new(LineReceiver::new(handler));
        h.receive(b"abcd"); // a partial line: the codec has scanned 4 bytes
        let c = conn.borrow().clone().unwrap();
        c.set_raw_mode();
        h.receive(b"e");
        assert_eq!(*raw.borrow(), b"abcde");
        c.set_line_mode(b"");
        h.receive(b"g\r\nh\r\n");
        assert_eq!(*lines.borrow(), ["g", "h"]);
    }

    #[test]
    fn no_line_is_delivered_while_reading_is_paused() {
        let handler = Outside::default();
        let (conn, lines) = (handler.conn.clone(), handler.lines.clone());
        let mut h = ProtocolHarness::new(LineReceiver::new(handler));
        let c = conn.borrow().clone().unwrap();
        c.transport().pause_reading();
        h.receive(b"one\r\ntwo\r\n");
        assert!(lines.borrow().is_empty());
        c.transport().resume_reading();
        h.take_written();
        assert_eq!(*lines.borrow(), ["one", "two"]);
    }

    /// Pauses its own reading at every line (as a server waiting on a
    /// reply before it reads the next command does).
    struct OneAtATime(Rc<RefCell<Vec<String>>>);

    impl LineHandler for OneAtATime {
        fn line_received(&mut self, conn: &LineConnection, line: Bytes) {
            self.0
                .borrow_mut()
                .push(String::from_utf8_lossy(&line).into_owned());
            conn.transport().pause_reading();
        }
    }

    #[test]
    fn a_pause_from_a_callback_holds_the_rest_of_the_read_until_resumed() {
        let input = b"a\r\nb\r\nc\r\n";
        for size in 1..=input.len() {
            let got = Rc::new(RefCell::new(Vec::new()));
            let mut h = ProtocolHarness::new(LineReceiver::new(OneAtATime(got.clone())));
            for chunk in input.chunks(size) {
                h.receive(chunk);
            }
            assert_eq!(*got.borrow(), ["a"], "chunks of {size}");
            for want in [&["a", "b"][..], &["a", "b", "c"]] {
                h.transport().resume_reading();
                h.take_written();
                assert_eq!(*got.borrow(), want, "chunks of {size}");
            }
        }
    }

    #[test]
    fn lines_after_a_close_in_the_same_read_are_dropped() {
        let (mut h, log) = harness(false, 100);
        h.receive(b"one\r\nquit\r\ntwo\r\n");
        assert_eq!(*log.borrow(), ["line one", "line quit"]);
        assert_eq!(h.take_written(), b"one\r\n");
        assert!(!h.is_open());
    }

    #[test]
    fn an_over_long_line_closes_by_default() {
        let (mut h, log) = harness(false, 4);
        h.receive(b"toolong\r\nok\r\n");
        assert_eq!(*log.borrow(), ["too long: line longer than 4 bytes"]);
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::Closed));
    }

    #[test]
    fn the_exceeded_hook_can_keep_the_connection() {
        let (mut h, log) = harness(true, 4);
        h.receive(b"toolong\r\nok\r\n");
        h.receive(b"waytoolongtoo");
        h.receive(b"\r\nfine\r\n");
        assert_eq!(
            *log.borrow(),
            [
                "too long: line longer than 4 bytes",
                "line ok",
                "too long: line longer than 4 bytes",
                "line fine"
            ]
        );
        assert!(h.is_open());
    }

    #[test]
    fn sending_a_line_with_the_delimiter_is_refused() {
        let (h, _log) = harness(false, 100);
        let conn = LineConnection {
            transport: h.transport().clone(),
            encoder: Rc::new(LineCodec::new()),
            mode: Rc::new(Mode {
                raw: Cell::new(false),
                extra: RefCell::new(BytesMut::new()),
            }),
        };
        assert_eq!(
            conn.send_line(b"a\r\nb"),
            Err(SendError::Frame(FrameError::DelimiterInPayload))
        );
        conn.send_line_bytes(Bytes::from(vec![b'x'; 10_000]))
            .unwrap();
        assert_eq!(h.transport().buffered_len(), 10_002);
    }
}
