//! The framing traits every codec implements, and sending one frame.
//!
//! The [`Decoder`] trait has tokio-util's shape: `decode` takes the bytes
//! received so far and returns `Ok(Some(item))` for a whole frame
//! (consuming it), `Ok(None)` when it needs more bytes (consuming nothing it
//! will need again), or an error for input that can never become a valid
//! frame; `decode_eof` frames the end of the stream (a partial frame left
//! at EOF is [`FrameError::Truncated`]); `reset` forgets what the decoder
//! knows about a buffer whose bytes were taken away.
//!
//! Encoders are split into a header and a trailer around the payload, so a
//! sender can queue a large payload by reference between them
//! ([`send_frame_bytes`]).
//!
//! The traits live here, at the bottom, so that both kinds of connection
//! frame with them: a callback protocol through `torsion_protocols`'
//! `Framed` receiver, an async one through [`Connection::framed`]. The
//! codecs themselves (lines, netstrings, length prefixes, RESP) are in
//! `torsion_protocols::codec`.
//!
//! [`Connection::framed`]: crate::Connection::framed

mod error;
mod send;

use bytes::BytesMut;

pub use error::FrameError;
pub use send::{send_frame, send_frame_bytes, SendError};

/// Longest header any encoder writes (a netstring length and its colon).
pub const MAX_HEADER: usize = 24;

/// Splits whole frames off a byte stream.
pub trait Decoder {
    /// What one frame decodes to.
    type Item;
    /// Why input cannot be framed (the end of the stream inside a frame is
    /// one such reason, hence the conversion from [`FrameError`]).
    type Error: From<FrameError>;

    /// One whole frame from the front of `buf`, `Ok(None)` for "need more
    /// bytes", or an error for input that cannot be framed.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error>;

    /// Like `decode`, when no more bytes will come (the peer's EOF): a
    /// whole frame, `Ok(None)` once `buf` is used up, or an error. The
    /// default decodes what it can and reports bytes left over as
    /// [`FrameError::Truncated`] (clearing them).
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None if buf.is_empty() => Ok(None),
            None => {
                let remaining = buf.len();
                buf.clear();
                self.reset();
                Err(FrameError::Truncated { remaining }.into())
            }
        }
    }

    /// Forgets what the decoder knows about the buffer it was given (how far
    /// it scanned, a frame it was skipping, an error it stopped at): call it
    /// when that buffer's bytes are taken away by something else (raw
    /// mode). The default does nothing (for decoders that keep no state).
    fn reset(&mut self) {}
}

/// Wraps payloads into frames.
pub trait Encoder {
    /// Writes the bytes that go before a payload of `len` bytes into
    /// `header`; returns how many. Errors if the payload cannot be framed.
    fn header(&self, len: usize, header: &mut [u8; MAX_HEADER]) -> Result<usize, FrameError>;

    /// The bytes that go after every payload.
    fn trailer(&self) -> &[u8];

    /// Checks a payload before framing (e.g. a line must not contain the
    /// delimiter). The default accepts everything.
    fn check_payload(&self, payload: &[u8]) -> Result<(), FrameError> {
        let _ = payload;
        Ok(())
    }

    /// Appends the whole frame for `payload` to `dst`.
    fn encode(&self, payload: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        self.check_payload(payload)?;
        let mut header = [0u8; MAX_HEADER];
        let n = self.header(payload.len(), &mut header)?;
        let trailer = self.trailer();
        dst.reserve(n + payload.len() + trailer.len());
        dst.extend_from_slice(&header[..n]);
        dst.extend_from_slice(payload);
        dst.extend_from_slice(trailer);
        Ok(())
    }
}
