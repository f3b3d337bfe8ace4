//! Shared by the codec fuzz targets: decode the same input in one piece and
//! in fuzzer-chosen chunks (with the codecs' own test helper,
//! `torsion_protocols::codec::testing`); both must agree, never panic, and
//! never hold more than a frame's worth of bytes while waiting.

pub use torsion_protocols::codec::testing::decode_bounded as decode_chunks;

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
