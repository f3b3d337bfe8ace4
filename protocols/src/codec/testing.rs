//! Test helpers for codecs (these crate's own tests, the fuzz targets, and
//! anyone writing a codec): feed input in every chunking, and decode it
//! chunk by chunk.

use bytes::BytesMut;

use super::{Decoder, FrameError};

/// What decoding a stream gave: every frame and error, in order.
pub type Decoded = Vec<Result<Vec<u8>, FrameError>>;

/// Feeds `chunks` one after another, decoding all it can after each;
/// returns every frame and error in order. Decoding stops at the first
/// error that cannot be recovered from (anything but an over-long line).
pub fn decode_all<D: Decoder>(codec: D, chunks: &[&[u8]]) -> Decoded {
    decode_bounded(codec, chunks, usize::MAX)
}

/// [`decode_all`], asserting (panicking otherwise) that whenever the
/// decoder asks for more bytes it holds at most `bound` of them: a decoder
/// must not buffer more than a frame's worth while it waits.
pub fn decode_bounded<D: Decoder>(mut codec: D, chunks: &[&[u8]], bound: usize) -> Decoded {
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => out.push(Ok(frame.to_vec())),
                Ok(None) => {
                    assert!(
                        buf.len() <= bound,
                        "decoder holds {} bytes waiting, bound {bound}",
                        buf.len()
                    );
                    break;
                }
                Err(e) => {
                    let recoverable = matches!(e, FrameError::LineTooLong { .. });
                    out.push(Err(e));
                    if !recoverable {
                        return out;
                    }
                }
            }
        }
    }
    out
}

/// Calls `f` with `input` cut into every fixed chunk size from 1 byte to
/// the whole, every two-piece split, and (for short inputs) every
/// three-piece split.
pub fn every_chunking(input: &[u8], mut f: impl FnMut(&[&[u8]])) {
    for size in 1..=input.len().max(1) {
        let chunks: Vec<&[u8]> = input.chunks(size).collect();
        f(&chunks);
    }
    for i in 0..=input.len() {
        f(&[&input[..i], &input[i..]]);
    }
    if input.len() <= 40 {
        for i in 0..=input.len() {
            for j in i..=input.len() {
                f(&[&input[..i], &input[i..j], &input[j..]]);
            }
        }
    }
}

/// Cuts `input` at the given points (taken modulo its length + 1).
pub fn split_at_points<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for c in cuts {
        chunks.push(&input[start..c]);
        start = c;
    }
    chunks.push(&input[start..]);
    chunks
}
