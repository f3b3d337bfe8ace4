//! The close frame's payload (RFC 6455 §5.5.1): a code, then a UTF-8
//! reason.

use bytes::{BufMut, Bytes, BytesMut};

use super::close_code::CloseCode;
use super::error::WsError;

/// A close frame's payload: no code (1005), or a code and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The code (1005 when the frame had none).
    pub code: CloseCode,
    /// Why, in words (may be empty).
    pub reason: String,
}

impl Close {
    /// Reads a close frame's payload: empty, or a valid code and a UTF-8
    /// reason; anything else is refused (1002, or 1007 for the reason).
    pub fn parse(payload: &[u8]) -> Result<Close, WsError> {
        match payload {
            [] => Ok(Close {
                code: CloseCode::NO_STATUS,
                reason: String::new(),
            }),
            [_] => Err(WsError::protocol("a close frame of one byte")),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.may_be_sent() {
                    return Err(WsError::protocol(format!(
                        "close code {} may not be sent",
                        code.0
                    )));
                }
                let reason = std::str::from_utf8(reason).map_err(|_| {
                    WsError::new(CloseCode::INVALID_DATA, "a close reason that is not UTF-8")
                })?;
                Ok(Close {
                    code,
                    reason: reason.to_owned(),
                })
            }
        }
    }

    /// The payload of a close frame with `code` and `reason` (cut at a
    /// character boundary to fit the 125 bytes of a control frame).
    pub fn payload(code: CloseCode, reason: &str) -> Bytes {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut out = BytesMut::with_capacity(2 + end);
        out.put_u16(code.0);
        out.put_slice(&reason.as_bytes()[..end]);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_a_peer_may_send_and_may_not() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
        ] {
            assert!(Close::parse(&u16::to_be_bytes(ok)).is_ok(), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            let e = Close::parse(&u16::to_be_bytes(bad)).unwrap_err();
            assert_eq!(e.code, CloseCode::PROTOCOL_ERROR, "{bad}");
        }
        assert_eq!(Close::parse(&[]).unwrap().code, CloseCode::NO_STATUS);
        assert_eq!(
            Close::parse(&[3]).unwrap_err().code,
            CloseCode::PROTOCOL_ERROR
        );
        let e = Close::parse(&[0x03, 0xE8, 0xFF]).unwrap_err();
        assert_eq!(e.code, CloseCode::INVALID_DATA);
        let c = Close::parse(&[0x03, 0xE8, b'b', b'y', b'e']).unwrap();
        assert_eq!((c.code, c.reason.as_str()), (CloseCode::NORMAL, "bye"));
    }

    #[test]
    fn a_long_reason_is_cut_at_a_character_to_fit_a_control_frame() {
        let reason = "é".repeat(100); // 200 bytes
        let p = Close::payload(CloseCode::GOING_AWAY, &reason);
        assert_eq!(p.len(), 2 + 122);
        assert!(Close::parse(&p).is_ok());
    }
}
