//! Shared by the codec fuzz targets: decode the same input in one piece and
//! in fuzzer-chosen chunks; both must agree, never panic, and never hold
//! more than a frame's worth of bytes while waiting.

use bytes::BytesMut;
use torsion_protocols::codec::{Decoder, FrameError};

pub type Outcome = Vec<Result<Vec<u8>, FrameError>>;

/// Decodes `chunks` in order; stops at the first unrecoverable error.
/// `bound` is the most bytes the decoder may leave buffered when it asks
/// for more.
pub fn decode_chunks<D: Decoder>(mut codec: D, chunks: &[&[u8]], bound: usize) -> Outcome {
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

/// Splits the fuzz input: the first byte picks a limit, the next two a
/// chunking seed; the rest is the stream, cut into chunks of 1..=17 bytes.
pub fn split(data: &[u8]) -> Option<(usize, Vec<&[u8]>, &[u8])> {
    if data.len() < 3 {
        return None;
    }
    let limit = usize::from(data[0]) + 1;
    let mut seed = u16::from_le_bytes([data[1], data[2]]) as usize;
    let stream = &data[3..];
    let mut chunks = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = (seed % 17 + 1).min(rest.len());
        seed = seed.wrapping_mul(31).wrapping_add(7);
        chunks.push(&rest[..n]);
        rest = &rest[n..];
    }
    Some((limit, chunks, stream))
}
