//! One framing layer over `Protocol` for every codec (Twisted's
//! `basic.LineReceiver`, `NetstringReceiver` and `IntNStringReceiver`, as
//! one generic type).
//!
//! [`Framed<D, H>`] cuts a connection's input into frames with a
//! [`Decoder`] `D` and hands each to a [`FrameHandler`] `H`; the handler
//! sends frames through the [`FramedConnection`] it is given (a cheap clone
//! it may keep for timers), framed by the same codec. The receivers Twisted
//! users know are aliases: [`LineReceiver`], [`NetstringReceiver`],
//! [`IntNStringReceiver`].
//!
//! As in Twisted:
//!
//! * once the handler closes the connection, the remaining frames of the
//!   same read are not delivered;
//! * [`FramedConnection::set_raw_mode`] from inside `frame_received`
//!   delivers the rest of the buffer, and everything after, to
//!   `raw_data_received` (Twisted's `setRawMode`; any codec, not only
//!   lines); [`FramedConnection::set_frame_mode`]`(extra)` switches back and
//!   treats `extra` as input (processed right after the current callback
//!   returns; Twisted's `setLineMode`);
//! * input the codec cannot frame calls `frame_error`, whose default closes
//!   the connection: an over-long line (`lineLengthExceeded`), a length over
//!   the limit (`lengthLimitExceeded`), a malformed netstring. An override
//!   that keeps the connection gets what the codec can still frame: the next
//!   lines (a line codec skips the rest of the long line), nothing more for
//!   length-framed codecs (a length-framed stream cannot be resynchronised);
//! * while the transport's reading is paused (`Transport::pause_reading`,
//!   from a callback or from anywhere else) no further frame or raw data is
//!   delivered: the rest stays in the connection's buffer and is delivered,
//!   in order, once reading resumes (`pauseProducing`/`resumeProducing`);
//! * at the peer's EOF the codec's `decode_eof` frames what is left: a
//!   partial frame is reported to `frame_error` as
//!   [`FrameError::Truncated`] (Twisted drops it silently), then
//!   `eof_received` is called.
//!
//! The layer owns no buffer: it decodes in place in the connection's read
//! buffer (frames are split off it, no copy), and resets the codec whenever
//! raw mode takes bytes away from under it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use torsion::{DisconnectReason, Protocol, Transport};

use crate::codec::{
    Decoder, Encoder, FrameError, IntPrefixedCodec, LineCodec, NetstringCodec, PrefixWidth,
};
use torsion::codec::{send_frame, send_frame_bytes, SendError};

/// The code that handles a framed connection. `F` is what the codec's
/// decoder yields (`Bytes` for every codec here), `E` its error.
pub trait FrameHandler<F = Bytes, E = FrameError>: 'static {
    /// The connection is open.
    fn connection_made(&mut self, conn: &FramedConnection) {
        let _ = conn;
    }

    /// A whole frame arrived: a line without its delimiter, a string
    /// without its prefix (Twisted's `lineReceived`, `stringReceived`).
    fn frame_received(&mut self, conn: &FramedConnection, frame: F);

    /// Bytes arrived in raw mode. The default discards them.
    fn raw_data_received(&mut self, conn: &FramedConnection, data: Bytes) {
        let _ = (conn, data);
    }

    /// Input that cannot be framed: over the length limit (Twisted's
    /// `lineLengthExceeded`, `lengthLimitExceeded`), malformed, or cut short
    /// by the peer's EOF. The default closes the connection.
    fn frame_error(&mut self, conn: &FramedConnection, error: &E) {
        let _ = error;
        conn.transport().close();
    }

    /// The peer half-closed (after every whole frame was delivered). The
    /// default closes after flushing.
    fn eof_received(&mut self, conn: &FramedConnection) {
        conn.transport().close();
    }

    /// Output passed the high-water mark.
    fn pause_writing(&mut self, conn: &FramedConnection) {
        let _ = conn;
    }

    /// Output drained to the low-water mark.
    fn resume_writing(&mut self, conn: &FramedConnection) {
        let _ = conn;
    }

    /// The server is shutting down. The default stops reading and closes
    /// after flushing once no work marked with `Transport::in_flight` is
    /// left ([`Transport::close_when_idle`]).
    fn shutdown_requested(&mut self, conn: &FramedConnection) {
        conn.transport().close_when_idle();
    }

    /// The connection ended; called exactly once.
    fn connection_lost(&mut self, reason: &DisconnectReason) {
        let _ = reason;
    }

    /// Polls work the handler runs on its connection's task (a request
    /// to another shard, say): [`Protocol::poll_future`]'s contract. The
    /// default has nothing to run.
    fn poll_future(&mut self, conn: &FramedConnection, cx: &mut Context<'_>) -> Poll<()> {
        let _ = (conn, cx);
        Poll::Ready(())
    }
}

struct Mode {
    raw: Cell<bool>,
    /// Bytes handed to `set_frame_mode`, to be processed as input.
    extra: RefCell<BytesMut>,
}

/// A framed connection: send frames, switch modes, reach the transport.
#[derive(Clone)]
pub struct FramedConnection {
    transport: Transport,
    encoder: Rc<dyn Encoder>,
    mode: Rc<Mode>,
}

impl fmt::Debug for FramedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramedConnection")
            .field("transport", &self.transport)
            .field("raw", &self.mode.raw.get())
            .finish()
    }
}

impl FramedConnection {
    fn new(transport: Transport, encoder: Rc<dyn Encoder>) -> FramedConnection {
        FramedConnection {
            transport,
            encoder,
            mode: Rc::new(Mode {
                raw: Cell::new(false),
                extra: RefCell::new(BytesMut::new()),
            }),
        }
    }

    /// Sends `payload` as one frame (Twisted's `sendLine`, `sendString`).
    /// A payload the codec cannot frame (a line containing the delimiter, a
    /// string too long for the prefix) is refused, never sent as two or
    /// truncated.
    pub fn send(&self, payload: &[u8]) -> Result<(), SendError> {
        send_frame(&self.transport, &*self.encoder, payload)
    }

    /// Like [`FramedConnection::send`], queueing a large payload by
    /// reference.
    pub fn send_bytes(&self, payload: Bytes) -> Result<(), SendError> {
        send_frame_bytes(&self.transport, &*self.encoder, payload)
    }

    /// The underlying transport (raw writes, close, addresses, clock).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// From now on deliver input to `raw_data_received`.
    pub fn set_raw_mode(&self) {
        self.mode.raw.set(true);
    }

    /// Back to frames; `extra` is processed as input first.
    pub fn set_frame_mode(&self, extra: &[u8]) {
        self.mode.raw.set(false);
        self.mode.extra.borrow_mut().extend_from_slice(extra);
    }

    /// True in raw mode.
    pub fn is_raw_mode(&self) -> bool {
        self.mode.raw.get()
    }

    fn has_extra(&self) -> bool {
        !self.mode.extra.borrow().is_empty()
    }
}

/// A [`Protocol`] that frames input with codec `D` for handler `H`.
pub struct Framed<D, H> {
    codec: D,
    handler: H,
    conn: Option<FramedConnection>,
    /// The peer's EOF arrived while reading was paused: `eof_received` is
    /// owed once the rest of the input is delivered.
    eof_owed: bool,
}

/// Twisted's `LineReceiver`.
pub type LineReceiver<H> = Framed<LineCodec, H>;

/// Twisted's `NetstringReceiver`.
pub type NetstringReceiver<H> = Framed<NetstringCodec, H>;

/// Twisted's `IntNStringReceiver` (the width is chosen at construction).
pub type IntNStringReceiver<H> = Framed<IntPrefixedCodec, H>;

impl<H> Framed<LineCodec, H> {
    /// `\r\n` lines of at most 16384 bytes (Twisted's defaults). A bare
    /// `\n` does not end a line here (what `nc` and most scripts send):
    /// for those, [`Framed::lf_or_crlf`]. The codec logs a warning the first
    /// time it meets one.
    pub fn new(handler: H) -> Self {
        Self::with_codec(handler, LineCodec::new())
    }

    /// Lines ending with `\n` or `\r\n` (sent with `\r\n`), of at most
    /// 16384 bytes: Twisted's `delimiter = b"\n"` that also takes `\r\n`.
    pub fn lf_or_crlf(handler: H) -> Self {
        Self::with_codec(handler, LineCodec::lf_or_crlf())
    }
}

impl<H> Framed<NetstringCodec, H> {
    /// Netstrings of at most 99999 bytes.
    pub fn netstring(handler: H) -> Self {
        Self::with_codec(handler, NetstringCodec::new())
    }
}

impl<H> Framed<IntPrefixedCodec, H> {
    /// `Int8StringReceiver`: one-byte prefix.
    pub fn int8(handler: H) -> Self {
        Self::with_codec(handler, IntPrefixedCodec::new(PrefixWidth::U8))
    }

    /// `Int16StringReceiver`: two-byte prefix.
    pub fn int16(handler: H) -> Self {
        Self::with_codec(handler, IntPrefixedCodec::new(PrefixWidth::U16))
    }

    /// `Int32StringReceiver`: four-byte prefix.
    pub fn int32(handler: H) -> Self {
        Self::with_codec(handler, IntPrefixedCodec::new(PrefixWidth::U32))
    }
}

impl<D, H> Framed<D, H> {
    /// Frames as `codec` cuts them (delimiter, limits), for `handler`.
    pub fn with_codec(handler: H, codec: D) -> Self {
        Framed {
            codec,
            handler,
            conn: None,
            eof_owed: false,
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
}

impl<D, H> Framed<D, H>
where
    D: Decoder + Encoder + Clone + 'static,
    H: FrameHandler<D::Item, D::Error>,
{
    /// The handler, the codec and the connection (made on first use), as
    /// separate borrows: no clone per callback.
    fn parts(&mut self, transport: &Transport) -> (&mut H, &mut D, &FramedConnection) {
        let Framed {
            handler,
            codec,
            conn,
            ..
        } = self;
        let conn = conn.get_or_insert_with(|| {
            FramedConnection::new(transport.clone(), Rc::new(codec.clone()))
        });
        (handler, codec, conn)
    }

    /// Delivers what `data` holds as frames (or raw data); `at_eof` frames
    /// the end of the stream. Returns false when a pause stopped it early.
    fn deliver(&mut self, transport: &Transport, data: &mut BytesMut, at_eof: bool) -> bool {
        let (handler, codec, conn) = self.parts(transport);
        loop {
            {
                // Input handed back by set_frame_mode goes first.
                let mut extra = conn.mode.extra.borrow_mut();
                if !extra.is_empty() {
                    extra.extend_from_slice(data);
                    *data = extra.split();
                }
            }
            if transport.is_closing() {
                // As Twisted: nothing after the frame that closed.
                data.clear();
                return true;
            }
            if transport.is_reading_paused() {
                // The rest waits in the buffer; the driver offers it again
                // when reading resumes.
                return false;
            }
            if conn.is_raw_mode() {
                if data.is_empty() {
                    return true;
                }
                // The codec's scan position refers to bytes about to leave.
                codec.reset();
                handler.raw_data_received(conn, data.split().freeze());
                if !conn.has_extra() {
                    return true;
                }
                continue;
            }
            let decoded = if at_eof {
                codec.decode_eof(data)
            } else {
                codec.decode(data)
            };
            match decoded {
                Ok(Some(frame)) => handler.frame_received(conn, frame),
                Ok(None) if !conn.has_extra() => return true,
                Ok(None) => {}
                Err(e) => handler.frame_error(conn, &e),
            }
        }
    }

    /// Calls the handler's `eof_received`, unless the connection is closing.
    fn end_of_input(&mut self, transport: &Transport) {
        self.eof_owed = false;
        if !transport.is_closing() {
            let (handler, _, conn) = self.parts(transport);
            handler.eof_received(conn);
        }
    }
}

impl<D, H> Protocol for Framed<D, H>
where
    D: Decoder + Encoder + Clone + 'static,
    H: FrameHandler<D::Item, D::Error>,
{
    fn connection_made(&mut self, transport: &Transport) {
        let (handler, _, conn) = self.parts(transport);
        handler.connection_made(conn);
    }

    fn data_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        let at_eof = self.eof_owed;
        if self.deliver(transport, data, at_eof) && at_eof {
            self.end_of_input(transport);
        }
    }

    fn eof_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        self.eof_owed = true;
        if self.deliver(transport, data, true) {
            self.end_of_input(transport);
        }
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

    fn poll_future(
        &mut self,
        transport: &Transport,
        _input: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let (handler, _, conn) = self.parts(transport);
        handler.poll_future(conn, cx)
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

    impl FrameHandler for Recorder {
        fn frame_received(&mut self, conn: &FramedConnection, line: Bytes) {
            let text = String::from_utf8_lossy(&line).into_owned();
            self.log.borrow_mut().push(format!("line {text}"));
            if let Some(n) = text.strip_prefix("raw ") {
                self.raw_left = n.parse().unwrap();
                conn.set_raw_mode();
            } else if text == "quit" {
                conn.transport().close();
            } else {
                conn.send(&line).unwrap();
            }
        }
        fn raw_data_received(&mut self, conn: &FramedConnection, data: Bytes) {
            let take = self.raw_left.min(data.len());
            self.log
                .borrow_mut()
                .push(format!("raw {}", String::from_utf8_lossy(&data[..take])));
            self.raw_left -= take;
            if self.raw_left == 0 {
                conn.set_frame_mode(&data[take..]);
            }
        }
        fn frame_error(&mut self, conn: &FramedConnection, error: &FrameError) {
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
    /// callback, as a timer holding a `FramedConnection` would.
    #[derive(Default)]
    struct Outside {
        conn: Rc<RefCell<Option<FramedConnection>>>,
        lines: Rc<RefCell<Vec<String>>>,
        raw: Rc<RefCell<Vec<u8>>>,
    }

    impl FrameHandler for Outside {
        fn connection_made(&mut self, conn: &FramedConnection) {
            *self.conn.borrow_mut() = Some(conn.clone());
        }
        fn frame_received(&mut self, _conn: &FramedConnection, line: Bytes) {
            self.lines
                .borrow_mut()
                .push(String::from_utf8_lossy(&line).into_owned());
        }
        fn raw_data_received(&mut self, _conn: &FramedConnection, data: Bytes) {
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
        c.set_frame_mode(b"");
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

    impl FrameHandler for OneAtATime {
        fn frame_received(&mut self, conn: &FramedConnection, line: Bytes) {
            self.0
                .borrow_mut()
                .push(String::from_utf8_lossy(&line).into_owned());
            conn.transport().pause_reading();
        }
        fn frame_error(&mut self, conn: &FramedConnection, error: &FrameError) {
            self.0.borrow_mut().push(format!("error: {error}"));
            conn.transport().close();
        }
        fn eof_received(&mut self, _conn: &FramedConnection) {
            self.0.borrow_mut().push("eof".into());
        }
    }

    #[test]
    fn frames_held_by_a_pause_at_eof_arrive_before_eof_received() {
        let got = Rc::new(RefCell::new(Vec::new()));
        let mut h = ProtocolHarness::new(LineReceiver::new(OneAtATime(got.clone())));
        h.receive(b"a\r\nb\r\nc\r\n");
        h.receive_eof();
        assert_eq!(*got.borrow(), ["a"]);
        h.transport().resume_reading();
        h.take_written();
        assert_eq!(*got.borrow(), ["a", "b"]);
        h.transport().resume_reading();
        h.take_written();
        h.transport().resume_reading();
        h.take_written();
        assert_eq!(*got.borrow(), ["a", "b", "c", "eof"]);
        assert!(h.is_open(), "this eof_received keeps the connection");
    }

    #[test]
    fn a_partial_frame_at_eof_is_reported_not_dropped() {
        type Make = fn(OneAtATime) -> Box<dyn Protocol>;
        let cases: [(Make, &[u8]); 3] = [
            (|h| Box::new(LineReceiver::new(h)), b"ab"),
            (|h| Box::new(NetstringReceiver::netstring(h)), b"2:a"),
            (|h| Box::new(IntNStringReceiver::int16(h)), b"\x00"),
        ];
        for (make, input) in cases {
            let got = Rc::new(RefCell::new(Vec::new()));
            let mut h = ProtocolHarness::new(make(OneAtATime(got.clone())));
            h.receive(input);
            h.receive_eof();
            let want = format!(
                "error: the stream ended inside a frame ({} bytes left over)",
                input.len()
            );
            assert_eq!(*got.borrow(), [want]);
            assert_eq!(h.lost_reason(), Some(&DisconnectReason::Closed));
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
        let conn = FramedConnection::new(h.transport().clone(), Rc::new(LineCodec::new()));
        assert_eq!(
            conn.send(b"a\r\nb"),
            Err(SendError::Frame(FrameError::DelimiterInPayload))
        );
        conn.send_bytes(Bytes::from(vec![b'x'; 10_000])).unwrap();
        assert_eq!(h.transport().buffered_len(), 10_002);
    }

    struct StringRecorder {
        log: Log,
        keep_open: bool,
    }

    impl FrameHandler for StringRecorder {
        fn frame_received(&mut self, conn: &FramedConnection, s: Bytes) {
            self.log
                .borrow_mut()
                .push(format!("got {}", String::from_utf8_lossy(&s)));
            conn.send(&s).unwrap();
        }
        fn frame_error(&mut self, conn: &FramedConnection, e: &FrameError) {
            if e.is_length_exceeded() {
                self.log.borrow_mut().push(format!("limit: {e}"));
                if self.keep_open {
                    return;
                }
            } else {
                self.log.borrow_mut().push(format!("bad: {e}"));
            }
            conn.transport().close();
        }
    }

    fn recorder(keep_open: bool) -> (StringRecorder, Log) {
        let log = Log::default();
        (
            StringRecorder {
                log: log.clone(),
                keep_open,
            },
            log,
        )
    }

    #[test]
    fn netstrings_echo_in_every_chunking() {
        let input = b"5:hello,0:,3:abc,";
        for size in 1..=input.len() {
            let (r, log) = recorder(false);
            let mut h = ProtocolHarness::new(NetstringReceiver::netstring(r));
            for chunk in input.chunks(size) {
                h.receive(chunk);
            }
            assert_eq!(*log.borrow(), ["got hello", "got ", "got abc"]);
            assert_eq!(h.take_written(), input);
        }
    }

    #[test]
    fn int_prefixed_strings_echo_for_every_width() {
        for (make, wire) in [
            (
                IntNStringReceiver::int8
                    as fn(StringRecorder) -> IntNStringReceiver<StringRecorder>,
                &b"\x02hi"[..],
            ),
            (IntNStringReceiver::int16, b"\x00\x02hi"),
            (IntNStringReceiver::int32, b"\x00\x00\x00\x02hi"),
        ] {
            for size in 1..=wire.len() {
                let (r, log) = recorder(false);
                let mut h = ProtocolHarness::new(make(r));
                for chunk in wire.chunks(size) {
                    h.receive(chunk);
                }
                assert_eq!(*log.borrow(), ["got hi"]);
                assert_eq!(h.take_written(), wire);
            }
        }
    }

    #[test]
    fn the_limit_hook_closes_by_default_and_input_after_it_is_ignored() {
        let (r, log) = recorder(false);
        let mut h = ProtocolHarness::new(Framed::with_codec(
            r,
            IntPrefixedCodec::new(PrefixWidth::U16).max_length(3),
        ));
        h.receive(b"\x00\x04abcd\x00\x01x");
        assert_eq!(
            *log.borrow(),
            ["limit: frame of 4 bytes is over the 3-byte limit"]
        );
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::Closed));
    }

    #[test]
    fn an_overridden_limit_hook_keeps_the_connection_but_stops_decoding() {
        let (r, log) = recorder(true);
        let mut h =
            ProtocolHarness::new(Framed::with_codec(r, NetstringCodec::new().max_length(3)));
        h.receive(b"4:abcd,1:x,");
        h.receive(b"1:y,");
        assert_eq!(log.borrow().len(), 1);
        assert!(h.is_open());
        assert!(h.take_written().is_empty());
    }

    #[test]
    fn malformed_netstrings_call_frame_error() {
        let (r, log) = recorder(false);
        let mut h = ProtocolHarness::new(NetstringReceiver::netstring(r));
        h.receive(b"1:a,2:bc;");
        assert_eq!(
            *log.borrow(),
            ["got a", "bad: netstring not terminated by ',' (found 0x3b)"]
        );
        assert!(!h.is_open());
    }

    #[test]
    fn sending_too_long_for_the_prefix_is_refused() {
        let (r, _log) = recorder(false);
        let h = ProtocolHarness::new(IntNStringReceiver::int8(r));
        let conn = FramedConnection::new(
            h.transport().clone(),
            Rc::new(IntPrefixedCodec::new(PrefixWidth::U8)),
        );
        assert!(matches!(
            conn.send(&[0u8; 256]),
            Err(SendError::Frame(FrameError::TooLongForPrefix { .. }))
        ));
        assert_eq!(h.transport().buffered_len(), 0);
    }
}
