//! Pure framing codecs over `BytesMut` (Twisted's `protocols.basic`, as
//! synchronous functions), for the runtime's `torsion::codec::Decoder`
//! and `torsion::codec::Encoder` traits (one path each: they live in the
//! runtime, where both kinds of connection frame with them).
//!
//! The [`Decoder`] trait has tokio-util's shape: `decode` takes the bytes
//! received so far and returns `Ok(Some(item))` for a whole frame
//! (consuming it), `Ok(None)` when it needs more bytes (consuming nothing it
//! will need again), or an error for input that can never become a valid
//! frame; `decode_eof` frames the end of the stream (a partial frame left
//! at EOF is [`FrameError::Truncated`]); `reset` forgets what the decoder
//! knows about a buffer whose bytes were taken away. The codecs here yield
//! `Bytes` split off the input buffer (no copy) and fail with
//! [`FrameError`].
//!
//! After an error a decoder carries on where it can: a line codec skips the
//! rest of the over-long line and frames the next ones; a length-framed
//! stream cannot be resynchronised, so the length-prefixed codecs discard
//! everything after an error (until `reset`).
//!
//! Every decoder is linear in its input: bytes already scanned are never
//! scanned again however the input is chunked (Twisted's O(n²) bug #6357).
//!
//! Encoders are split into a header and a trailer around the payload, so a
//! sender can queue a large payload by reference between them.
//!
//! [`testing`] feeds a decoder its input in every chunking (the codecs' own
//! tests and the fuzz targets use it; so can a codec of yours).

mod int_prefixed;
mod line;
mod netstring;
#[cfg(feature = "resp")]
pub mod resp;
pub mod testing;

use bytes::{Bytes, BytesMut};

pub use int_prefixed::{IntPrefixedCodec, PrefixWidth, DEFAULT_MAX_PREFIXED_LENGTH};
pub use line::{LineCodec, LineDelimiter, DEFAULT_MAX_LINE_LENGTH};
pub use netstring::{NetstringCodec, DEFAULT_MAX_NETSTRING_LENGTH};

pub(crate) use torsion::codec::{Decoder, Encoder, FrameError, MAX_HEADER};

/// A codec whose frames are announced by a length (netstrings, length
/// prefixes). After an error the stream cannot be resynchronised, so its
/// [`Decoder`] discards all input until `reset`.
pub(crate) trait LengthFramed {
    /// Where the codec remembers that it reported an error.
    fn failed(&mut self) -> &mut bool;

    /// Forgets a frame header parsed earlier (for `reset`).
    fn forget_frame(&mut self) {}

    /// One frame, as [`Decoder::decode`], on a stream without an error yet.
    fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError>;
}

/// [`Decoder::decode`] of a [`LengthFramed`] codec: one frame, or nothing
/// once the stream failed.
pub(crate) fn decode_length_framed<T: LengthFramed>(
    codec: &mut T,
    buf: &mut BytesMut,
) -> Result<Option<Bytes>, FrameError> {
    if *codec.failed() {
        buf.clear();
        return Ok(None);
    }
    let result = codec.decode_frame(buf);
    *codec.failed() = result.is_err();
    result
}
