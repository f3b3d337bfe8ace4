//! `NetstringReceiver` and `Int8/16/32StringReceiver`: length-framed
//! strings as a layer over `Protocol` (Twisted's `basic.NetstringReceiver`
//! and `basic.IntNStringReceiver`).
//!
//! Wrap a [`StringHandler`] in a [`StringReceiver`] and it receives whole
//! strings and sends them with [`StringConnection::send_string`]. Input over
//! the length limit calls `length_limit_exceeded`; malformed input (a bad
//! netstring) calls `frame_error`. Both close the connection by default, as
//! Twisted does; a length-framed stream cannot be resynchronised, so after
//! either the receiver ignores the rest of the input.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use torsion::{DisconnectReason, Protocol, Transport};

use crate::codec::{Decoder, Encoder, FrameError, IntPrefixedCodec, NetstringCodec, PrefixWidth};
use crate::send::{send_frame, send_frame_bytes, SendError};

/// A codec a [`StringReceiver`] can use.
pub trait StringCodec: Decoder + Encoder + Clone + 'static {}
impl<T: Decoder + Encoder + Clone + 'static> StringCodec for T {}

/// The code that handles a string protocol's connection.
pub trait StringHandler: 'static {
    /// The connection is open.
    fn connection_made(&mut self, conn: &StringConnection) {
        let _ = conn;
    }

    /// A whole string arrived (Twisted's `stringReceived`).
    fn string_received(&mut self, conn: &StringConnection, string: Bytes);

    /// A string over the limit was announced (Twisted's
    /// `lengthLimitExceeded`). The default closes the connection.
    fn length_limit_exceeded(&mut self, conn: &StringConnection, error: &FrameError) {
        let _ = error;
        conn.transport().close();
    }

    /// Malformed framing (e.g. a netstring without its comma). The default
    /// closes the connection.
    fn frame_error(&mut self, conn: &StringConnection, error: &FrameError) {
        let _ = error;
        conn.transport().close();
    }

    /// The peer half-closed. The default closes after flushing.
    fn eof_received(&mut self, conn: &StringConnection) {
        conn.transport().close();
    }

    /// Output passed the high-water mark.
    fn pause_writing(&mut self, conn: &StringConnection) {
        let _ = conn;
    }

    /// Output drained to the low-water mark.
    fn resume_writing(&mut self, conn: &StringConnection) {
        let _ = conn;
    }

    /// The server is shutting down. The default closes after flushing.
    fn shutdown_requested(&mut self, conn: &StringConnection) {
        conn.transport().close();
    }

    /// The connection ended; called exactly once.
    fn connection_lost(&mut self, reason: &DisconnectReason) {
        let _ = reason;
    }
}

/// A string connection: send strings, reach the transport.
#[derive(Clone)]
pub struct StringConnection {
    transport: Transport,
    encoder: Rc<dyn Encoder>,
}

impl std::fmt::Debug for StringConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StringConnection")
            .field("transport", &self.transport)
            .finish()
    }
}

impl StringConnection {
    /// Sends one framed string (Twisted's `sendString`). A string too long
    /// for the prefix is refused, never truncated.
    pub fn send_string(&self, string: &[u8]) -> Result<(), SendError> {
        send_frame(&self.transport, &*self.encoder, string)
    }

    /// Like [`StringConnection::send_string`], queueing a large string by
    /// reference.
    pub fn send_string_bytes(&self, string: Bytes) -> Result<(), SendError> {
        send_frame_bytes(&self.transport, &*self.encoder, string)
    }

    /// The underlying transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }
}

/// A [`Protocol`] that frames strings with codec `C` for handler `H`.
pub struct StringReceiver<C: StringCodec, H: StringHandler> {
    codec: C,
    handler: H,
    conn: Option<StringConnection>,
    broken: bool,
}

/// Twisted's `NetstringReceiver`.
pub type NetstringReceiver<H> = StringReceiver<NetstringCodec, H>;

/// Twisted's `IntNStringReceiver` (the width is chosen at construction).
pub type IntNStringReceiver<H> = StringReceiver<IntPrefixedCodec, H>;

impl<H: StringHandler> StringReceiver<NetstringCodec, H> {
    /// Netstrings of at most 99999 bytes.
    pub fn netstring(handler: H) -> Self {
        Self::with_codec(handler, NetstringCodec::new())
    }
}

impl<H: StringHandler> StringReceiver<IntPrefixedCodec, H> {
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

impl<C: StringCodec, H: StringHandler> StringReceiver<C, H> {
    /// Strings framed by `codec` (which sets the limit).
    pub fn with_codec(handler: H, codec: C) -> Self {
        StringReceiver {
            codec,
            handler,
            conn: None,
            broken: false,
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

    /// The handler, the codec, the broken flag and the connection (made on
    /// first use), as separate borrows: no clone per callback.
    fn parts(&mut self, transport: &Transport) -> (&mut H, &mut C, &mut bool, &StringConnection) {
        let StringReceiver {
            codec,
            handler,
            conn,
            broken,
        } = self;
        let conn = conn.get_or_insert_with(|| StringConnection {
            transport: transport.clone(),
            encoder: Rc::new(codec.clone()),
        });
        (handler, codec, broken, conn)
    }
}

impl<C: StringCodec, H: StringHandler> Protocol for StringReceiver<C, H> {
    fn connection_made(&mut self, transport: &Transport) {
        let (handler, _, _, conn) = self.parts(transport);
        handler.connection_made(conn);
    }

    fn data_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        let (handler, codec, broken, conn) = self.parts(transport);
        while !*broken && !transport.is_closing() && !transport.is_reading_paused() {
            match codec.decode(data) {
                Ok(Some(s)) => handler.string_received(conn, s),
                Ok(None) => return,
                Err(e) => {
                    *broken = true;
                    if e.is_length_exceeded() {
                        handler.length_limit_exceeded(conn, &e);
                    } else {
                        handler.frame_error(conn, &e);
                    }
                }
            }
        }
        if *broken || transport.is_closing() {
            data.clear();
        }
    }

    fn eof_received(&mut self, transport: &Transport) {
        let (handler, _, _, conn) = self.parts(transport);
        handler.eof_received(conn);
    }

    fn pause_writing(&mut self, transport: &Transport) {
        let (handler, _, _, conn) = self.parts(transport);
        handler.pause_writing(conn);
    }

    fn resume_writing(&mut self, transport: &Transport) {
        let (handler, _, _, conn) = self.parts(transport);
        handler.resume_writing(conn);
    }

    fn shutdown_requested(&mut self, transport: &Transport) {
        let (handler, _, _, conn) = self.parts(transport);
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
    use torsion::testing::ProtocolHarness;

    type Log = Rc<RefCell<Vec<String>>>;

    struct Recorder {
        log: Log,
        keep_open: bool,
    }

    impl StringHandler for Recorder {
        fn string_received(&mut self, conn: &StringConnection, s: Bytes) {
            self.log
                .borrow_mut()
                .push(format!("got {}", String::from_utf8_lossy(&s)));
            conn.send_string(&s).unwrap();
        }
        fn length_limit_exceeded(&mut self, conn: &StringConnection, e: &FrameError) {
            self.log.borrow_mut().push(format!("limit: {e}"));
            if !self.keep_open {
                conn.transport().close();
            }
        }
        fn frame_error(&mut self, conn: &StringConnection, e: &FrameError) {
            self.log.borrow_mut().push(format!("bad: {e}"));
            conn.transport().close();
        }
    }

    fn recorder(keep_open: bool) -> (Recorder, Log) {
        let log = Log::default();
        (
            Recorder {
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
                IntNStringReceiver::int8 as fn(Recorder) -> IntNStringReceiver<Recorder>,
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
        let mut h = ProtocolHarness::new(StringReceiver::with_codec(
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
        let mut h = ProtocolHarness::new(StringReceiver::with_codec(
            r,
            NetstringCodec::new().max_length(3),
        ));
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
        let conn = StringConnection {
            transport: h.transport().clone(),
            encoder: Rc::new(IntPrefixedCodec::new(PrefixWidth::U8)),
        };
        assert!(matches!(
            conn.send_string(&[0u8; 256]),
            Err(SendError::Frame(FrameError::TooLongForPrefix { .. }))
        ));
        assert_eq!(h.transport().buffered_len(), 0);
    }
}
