//! [`Utf8Stream`]: UTF-8 checked piece by piece, so a text message that is
//! not UTF-8 fails at the first bad byte, whichever fragment it is in, and
//! a character split across fragments is whole again.

/// Checks UTF-8 that arrives in pieces.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    /// The start of a character the last piece ended inside (≤ 3 bytes).
    carry: [u8; 4],
    carried: usize,
}

impl Utf8Stream {
    /// Checks the next piece: false at the first byte that cannot be
    /// UTF-8 (an incomplete character at its end waits for the next piece).
    pub fn push(&mut self, mut piece: &[u8]) -> bool {
        if self.carried > 0 {
            // Complete the carried character with the piece's first bytes.
            let need = char_len(self.carry[0]) - self.carried;
            let take = need.min(piece.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&piece[..take]);
            let have = self.carried + take;
            match std::str::from_utf8(&self.carry[..have]) {
                Ok(_) => {
                    self.carried = 0;
                    piece = &piece[take..];
                }
                Err(e) if e.error_len().is_none() => {
                    // Still a valid start, and the piece is used up.
                    self.carried = have;
                    return true;
                }
                Err(_) => return false,
            }
        }
        match std::str::from_utf8(piece) {
            Ok(_) => true,
            Err(e) => match e.error_len() {
                Some(_) => false,
                None => {
                    let tail = &piece[e.valid_up_to()..];
                    self.carry[..tail.len()].copy_from_slice(tail);
                    self.carried = tail.len();
                    true
                }
            },
        }
    }

    /// Whether the text ended on a whole character (and starts afresh).
    pub fn finish(&mut self) -> bool {
        let whole = self.carried == 0;
        self.carried = 0;
        whole
    }
}

/// The length of the character a lead byte starts (1 for a byte that
/// cannot lead: `from_utf8` then refuses it).
fn char_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], chunk: usize) -> bool {
        let mut s = Utf8Stream::default();
        bytes.chunks(chunk.max(1)).all(|p| s.push(p)) && s.finish()
    }

    #[test]
    fn valid_text_passes_in_every_chunking_and_invalid_fails_in_every_one() {
        let valid = "κόσμε – a 𝄞 clef, ascii, and 日本語".as_bytes();
        let invalid: [&[u8]; 7] = [
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", // a surrogate
            b"\xf4\x90\x80\x80",                                               // > U+10FFFF
            b"\xc0\xaf",                                                       // overlong
            b"abc\xff",
            b"\xe2\x82",     // cut short at the end
            b"\x80",         // a lone continuation
            b"\xf0\x9d\x84", // a 4-byte character without its last byte
        ];
        for chunk in 1..=valid.len() {
            assert!(check(valid, chunk), "chunk {chunk}");
        }
        for bad in invalid {
            for chunk in 1..=bad.len() {
                assert!(!check(bad, chunk), "{bad:?} chunk {chunk}");
            }
        }
    }

    #[test]
    fn the_first_bad_byte_fails_before_the_message_ends() {
        let mut s = Utf8Stream::default();
        assert!(s.push(b"fine so far \xce"));
        assert!(!s.push(b"\x41 and then more"));
    }
}
