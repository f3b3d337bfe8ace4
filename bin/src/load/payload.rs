//! Request payloads that prove their own integrity.
//!
//! Every echo request is printable ASCII (valid in every framing, no CR or
//! LF): 16 hex digits of the sequence number, 8 of the connection id, then
//! filler letters that depend on both. The generator regenerates the
//! expected payload from the sequence number it expects next, so any
//! corruption, loss, duplication or reordering shows as a mismatch.

/// Smallest payload that carries a sequence number and connection id.
pub const MIN_SIZE: usize = 24;

/// Hex digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// The header of request `seq` on connection `conn`: 16 hex digits of the
/// sequence number, then 8 of the connection id.
fn header(conn: u32, seq: u64) -> [u8; 24] {
    let mut h = [0u8; 24];
    for (i, b) in h[..16].iter_mut().enumerate() {
        *b = HEX[((seq >> ((15 - i) * 4)) & 0xf) as usize];
    }
    for (i, b) in h[16..].iter_mut().enumerate() {
        *b = HEX[((conn >> ((7 - i) * 4)) & 0xf) as usize];
    }
    h
}

/// The filler letters after the header, one per call (xorshift64 seeded
/// by both numbers).
struct Filler(u64);

impl Filler {
    fn new(conn: u32, seq: u64) -> Filler {
        Filler(seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(conn))
    }

    #[inline(always)]
    fn next(&mut self) -> u8 {
        let x = &mut self.0;
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        b'a' + (*x % 26) as u8
    }
}

/// Writes the payload of request `seq` on connection `conn` into `out`.
pub fn fill(out: &mut Vec<u8>, conn: u32, seq: u64, size: usize) {
    let header = header(conn, seq);
    out.clear();
    out.extend_from_slice(&header[..size.min(header.len())]);
    if size > header.len() {
        out.resize(size, 0);
        let mut filler = Filler::new(conn, seq);
        for b in &mut out[header.len()..] {
            *b = filler.next();
        }
    }
}

/// Whether `payload` is exactly what [`fill`] writes for request `seq` on
/// connection `conn` (checked as it is generated, without writing it out).
pub fn matches(payload: &[u8], conn: u32, seq: u64, size: usize) -> bool {
    if payload.len() != size {
        return false;
    }
    let header = header(conn, seq);
    let n = size.min(header.len());
    if payload[..n] != header[..n] {
        return false;
    }
    let mut filler = Filler::new(conn, seq);
    payload[n..].iter().all(|&b| b == filler.next())
}

/// The sequence number a payload claims to carry, if it parses.
pub fn sequence_of(payload: &[u8]) -> Option<u64> {
    let hex = std::str::from_utf8(payload.get(..16)?).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_printable_sized_and_distinct() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        fill(&mut a, 3, 41, 100);
        fill(&mut b, 3, 42, 100);
        assert_eq!(a.len(), 100);
        assert!(a.iter().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(sequence_of(&a), Some(41));
        fill(&mut a, 0, 7, MIN_SIZE);
        assert_eq!(a.len(), MIN_SIZE);
        assert_eq!(sequence_of(b"zz"), None);
    }

    /// The payload as first written (push by push), kept as the reference
    /// the faster `fill` and `matches` must agree with byte for byte.
    fn reference(conn: u32, seq: u64, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for shift in (0..16).rev() {
            out.push(HEX[((seq >> (shift * 4)) & 0xf) as usize]);
        }
        for shift in (0..8).rev() {
            out.push(HEX[((conn >> (shift * 4)) & 0xf) as usize]);
        }
        let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(conn);
        while out.len() < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push(b'a' + (x % 26) as u8);
        }
        out.truncate(size);
        out
    }

    #[test]
    fn fill_and_matches_agree_with_the_reference_payload() {
        let mut buf = Vec::new();
        for (conn, seq) in [(0, 0), (3, 41), (u32::MAX, u64::MAX), (17, 1 << 40)] {
            for size in [0, 1, 16, 23, 24, 25, 64, 1000] {
                let want = reference(conn, seq, size);
                fill(&mut buf, conn, seq, size);
                assert_eq!(buf, want, "conn {conn} seq {seq} size {size}");
                assert!(matches(&want, conn, seq, size));
                // The sequence number is whole from 16 bytes on.
                assert!(size < 16 || !matches(&want, conn, seq.wrapping_add(1), size));
                if let Some(last) = want.len().checked_sub(1) {
                    let mut bad = want.clone();
                    bad[last] ^= 0x20;
                    assert!(!matches(&bad, conn, seq, size));
                    assert!(!matches(&want[..last], conn, seq, size));
                }
            }
        }
    }
}
