//! Test helpers for codecs: feed input in every chunking.

use bytes::BytesMut;

use super::{Decoder, FrameError};

/// Feeds `chunks` one after another, decoding all it can after each;
/// returns every frame and error in order. Decoding stops at the first
/// error that cannot be recovered from (anything but an over-long line).
pub(crate) fn decode_all<D: Decoder>(
    mut codec: D,
    chunks: &[&[u8]],
) -> Vec<Result<Vec<u8>, FrameError>> {
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => out.push(Ok(frame.to_vec())),
                Ok(None) => break,
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
pub(crate) fn every_chunking(input: &[u8], mut f: impl FnMut(&[&[u8]])) {
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
pub(crate) fn split_at_points<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
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
