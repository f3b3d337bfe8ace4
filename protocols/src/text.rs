//! Text helpers for line protocols: frames are bytes; these turn them into
//! `&str` with a clear error for invalid UTF-8.

use std::fmt;

/// A frame that is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8 {
    /// Bytes before the first invalid sequence.
    pub valid_up_to: usize,
}

impl fmt::Display for InvalidUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid UTF-8 after {} valid bytes", self.valid_up_to)
    }
}

impl std::error::Error for InvalidUtf8 {}

/// The frame as text, or where its UTF-8 goes wrong.
pub fn as_text(frame: &[u8]) -> Result<&str, InvalidUtf8> {
    std::str::from_utf8(frame).map_err(|e| InvalidUtf8 {
        valid_up_to: e.valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_utf8() {
        assert_eq!(as_text("héllo".as_bytes()), Ok("héllo"));
        let err = as_text(b"ab\xffcd").unwrap_err();
        assert_eq!(err.valid_up_to, 2);
        assert_eq!(err.to_string(), "invalid UTF-8 after 2 valid bytes");
        assert!(as_text(b"\xe2\x82").is_err(), "truncated sequence");
    }
}
