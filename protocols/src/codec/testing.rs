//! Test helpers for codecs (these crate's own tests, the fuzz targets, and
//! anyone writing a codec): feed input in every chunking, and decode it
//! chunk by chunk.

use bytes::{Bytes, BytesMut};

use super::{Decoder, Encoder, FrameError};

/// What decoding a stream gave: every frame and error, in order.
pub type Decoded = Vec<Result<Vec<u8>, FrameError>>;

/// A decoder of the kind this crate's codecs are: `Bytes` frames,
/// [`FrameError`]s.
pub trait BytesDecoder: Decoder<Item = Bytes, Error = FrameError> {}
impl<D: Decoder<Item = Bytes, Error = FrameError>> BytesDecoder for D {}

/// Feeds `chunks` one after another, decoding all it can after each;
/// returns every frame and error in order (after an error the decoder goes
/// on as it chooses: a line codec recovers, a length-framed one discards
/// the rest). The stream is left open: see [`decode_to_eof`].
pub fn decode_all<D: BytesDecoder>(codec: D, chunks: &[&[u8]]) -> Decoded {
    decode_bounded(codec, chunks, usize::MAX)
}

/// [`decode_all`], asserting (panicking otherwise) that whenever the
/// decoder asks for more bytes it holds at most `bound` of them: a decoder
/// must not buffer more than a frame's worth while it waits.
pub fn decode_bounded<D: BytesDecoder>(mut codec: D, chunks: &[&[u8]], bound: usize) -> Decoded {
    feed(&mut codec, chunks, bound).0
}

/// [`decode_all`], then the end of the stream (`decode_eof` until it has
/// nothing more to say).
pub fn decode_to_eof<D: BytesDecoder>(mut codec: D, chunks: &[&[u8]]) -> Decoded {
    let (mut out, mut buf) = feed(&mut codec, chunks, usize::MAX);
    while let Some(result) = codec.decode_eof(&mut buf).transpose() {
        out.push(result.map(|f| f.to_vec()));
    }
    out
}

/// Decodes `chunks` as they arrive; returns the results and what is left.
fn feed<D: BytesDecoder>(codec: &mut D, chunks: &[&[u8]], bound: usize) -> (Decoded, BytesMut) {
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
                Err(e) => out.push(Err(e)),
            }
        }
    }
    (out, buf)
}

/// Encodes `payloads` one after another, cuts the stream at `splits` (see
/// [`split_at_points`]) and decodes it: a codec that round-trips gives
/// back every payload, in order.
pub fn round_trip<C: BytesDecoder + Encoder + Clone>(
    codec: &C,
    payloads: &[Vec<u8>],
    splits: &[usize],
) -> Decoded {
    let mut wire = BytesMut::new();
    for p in payloads {
        codec
            .encode(p, &mut wire)
            .expect("the payload can be framed");
    }
    decode_all(codec.clone(), &split_at_points(&wire, splits))
}

/// Asserts, in every chunking, that a payload of exactly `max` bytes
/// decodes whole and that one of `max + 1` bytes is `over` (the codec's
/// "too long" error). Returns the over-long frame's bytes on the wire.
pub fn assert_max_length<C: BytesDecoder + Encoder + Clone>(
    codec: &C,
    max: usize,
    over: FrameError,
) -> BytesMut {
    let mut at = BytesMut::new();
    codec.encode(&vec![7u8; max], &mut at).expect("max fits");
    every_chunking(&at, |chunks| {
        assert_eq!(decode_all(codec.clone(), chunks), vec![Ok(vec![7u8; max])]);
    });
    let mut too_long = BytesMut::new();
    codec
        .encode(&vec![7u8; max + 1], &mut too_long)
        .expect("max + 1 can be sent");
    every_chunking(&too_long, |chunks| {
        assert_eq!(decode_all(codec.clone(), chunks), vec![Err(over.clone())]);
    });
    too_long
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
