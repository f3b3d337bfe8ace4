//! Request payloads that prove their own integrity.
//!
//! Every echo request is printable ASCII (valid in every framing, no CR or
//! LF): 16 hex digits of the sequence number, 8 of the connection id, then
//! filler letters that depend on both. The generator regenerates the
//! expected payload from the sequence number it expects next, so any
//! corruption, loss, duplication or reordering shows as a mismatch.

/// Smallest payload that carries a sequence number and connection id.
pub const MIN_SIZE: usize = 24;

/// Writes the payload of request `seq` on connection `conn` into `out`.
pub fn fill(out: &mut Vec<u8>, conn: u32, seq: u64, size: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.clear();
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
}
