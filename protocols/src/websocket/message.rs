//! [`Message`] and [`Assembler`]: frames in, whole messages out —
//! fragments joined (without a copy when a message is one frame),
//! control frames between fragments passed on at once, text checked as
//! UTF-8 as it arrives, compressed messages inflated under the bound.

use bytes::{Bytes, BytesMut};

use super::close::Close;
use super::close_code::CloseCode;
use super::deflate::Inflater;
use super::error::WsError;
use super::frame::{read_frame, Opcode, Role};
use super::utf8::Utf8Stream;

/// A WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Text: always valid UTF-8 (checked on the way in; [`Message::text`]
    /// checks on the way out).
    Text(Bytes),
    /// Bytes.
    Binary(Bytes),
    /// A ping and its payload.
    Ping(Bytes),
    /// A pong and its payload.
    Pong(Bytes),
    /// The peer's close frame.
    Close(Close),
}

impl Message {
    /// A text message of `s` (no copy for a `String` or `Bytes`).
    pub fn text(s: impl Into<String>) -> Message {
        Message::Text(Bytes::from(s.into()))
    }

    /// The text of a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

/// A message being assembled from its fragments.
#[derive(Debug)]
struct Partial {
    text: bool,
    compressed: bool,
    /// The first fragment, as it came (a one-frame message is never copied).
    first: Bytes,
    /// The later fragments, copied together: a fragment never keeps the
    /// connection's read buffer alive.
    rest: BytesMut,
    /// What the message has cost: its bytes, and [`FRAGMENT_COST`] per
    /// fragment, so a stream of empty fragments meets the limit too.
    charged: usize,
}

/// What each fragment counts against the message limit beyond its bytes
/// (its smallest header): a million empty fragments are not free.
const FRAGMENT_COST: usize = 2;

/// Frames in, messages out (one direction of one connection).
#[derive(Debug)]
pub struct Assembler {
    role: Role,
    max_message: usize,
    inflater: Option<Inflater>,
    partial: Option<Partial>,
    utf8: Utf8Stream,
}

impl Assembler {
    /// An assembler for the `role` reading; messages of at most
    /// `max_message` bytes (inflated); `inflater` when `permessage-deflate`
    /// was agreed.
    pub fn new(role: Role, max_message: usize, inflater: Option<Inflater>) -> Assembler {
        Assembler {
            role,
            max_message,
            inflater,
            partial: None,
            utf8: Utf8Stream::default(),
        }
    }

    /// The next message whose frames are all in `buf` (taken off it), or
    /// `Ok(None)` for more input; `Err` with the close code to send.
    pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WsError> {
        loop {
            let frame = match read_frame(buf, self.role, self.inflater.is_some(), self.max_message)?
            {
                Some(f) => f,
                None => return Ok(None),
            };
            match frame.opcode {
                Opcode::Ping => return Ok(Some(Message::Ping(frame.payload))),
                Opcode::Pong => return Ok(Some(Message::Pong(frame.payload))),
                Opcode::Close => {
                    return Close::parse(&frame.payload).map(|c| Some(Message::Close(c)))
                }
                Opcode::Text | Opcode::Binary => {
                    if self.partial.is_some() {
                        return Err(WsError::protocol(
                            "a new message began before the last one ended",
                        ));
                    }
                    self.partial = Some(Partial {
                        text: frame.opcode == Opcode::Text,
                        compressed: frame.compressed,
                        first: Bytes::new(),
                        rest: BytesMut::new(),
                        charged: 0,
                    });
                }
                Opcode::Continuation => {
                    if self.partial.is_none() {
                        return Err(WsError::protocol("a continuation frame with no message"));
                    }
                    if frame.compressed {
                        return Err(WsError::protocol("RSV1 set on a continuation frame"));
                    }
                }
            }
            let Some(partial) = self.partial.as_mut() else {
                continue;
            };
            partial.charged += frame.payload.len() + FRAGMENT_COST;
            if partial.charged > self.max_message + FRAGMENT_COST {
                return Err(WsError::new(
                    CloseCode::TOO_BIG,
                    format!("a message of over {} bytes", self.max_message),
                ));
            }
            if partial.text && !partial.compressed && !self.utf8.push(&frame.payload) {
                return Err(not_utf8());
            }
            if frame.opcode == Opcode::Continuation {
                partial.rest.extend_from_slice(&frame.payload);
            } else {
                partial.first = frame.payload;
            }
            if frame.fin {
                return self.finish().map(Some);
            }
        }
    }

    fn finish(&mut self) -> Result<Message, WsError> {
        let Some(partial) = self.partial.take() else {
            return Err(WsError::protocol("a message that never began"));
        };
        let payload = if partial.compressed {
            let Some(inflater) = self.inflater.as_mut() else {
                return Err(WsError::protocol(
                    "a compressed message without the extension",
                ));
            };
            let inflated = inflater
                .inflate(&[partial.first, partial.rest.freeze()], self.max_message)?
                .freeze();
            if partial.text && !(self.utf8.push(&inflated) && self.utf8.finish()) {
                return Err(not_utf8());
            }
            inflated
        } else {
            if partial.text && !self.utf8.finish() {
                return Err(not_utf8());
            }
            join(partial.first, partial.rest)
        };
        Ok(if partial.text {
            Message::Text(payload)
        } else {
            Message::Binary(payload)
        })
    }
}

fn not_utf8() -> WsError {
    WsError::new(CloseCode::INVALID_DATA, "a text message that is not UTF-8")
}

/// The message as one buffer: the first fragment itself when it is all.
fn join(first: Bytes, rest: BytesMut) -> Bytes {
    if rest.is_empty() {
        return first;
    }
    let mut out = BytesMut::with_capacity(first.len() + rest.len());
    out.extend_from_slice(&first);
    out.extend_from_slice(&rest);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::super::deflate::Deflater;
    use super::super::frame::{apply_mask, write_header};
    use super::*;

    /// A client's frame (masked).
    fn frame(fin: bool, rsv1: bool, op: Opcode, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xFA, 0x21, 0x3D];
        let mut out = BytesMut::new();
        write_header(&mut out, fin, rsv1, op, payload.len(), Some(mask));
        let mut p = payload.to_vec();
        apply_mask(&mut p, mask, 0);
        out.extend_from_slice(&p);
        out.to_vec()
    }

    /// Every message of `wire` read in pieces of `chunk`, or the first error.
    fn messages(wire: &[u8], chunk: usize, deflate: bool) -> Result<Vec<Message>, WsError> {
        let mut a = Assembler::new(Role::Server, 1 << 16, deflate.then(|| Inflater::new(false)));
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(m) = a.read(&mut buf)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    #[test]
    fn fragments_join_with_control_frames_between_in_every_chunking() {
        let mut wire = frame(false, false, Opcode::Text, "frag".as_bytes());
        wire.extend(frame(true, false, Opcode::Ping, b"are you there"));
        wire.extend(frame(
            false,
            false,
            Opcode::Continuation,
            &"ment€".as_bytes()[..5],
        ));
        wire.extend(frame(
            true,
            false,
            Opcode::Continuation,
            &"ment€".as_bytes()[5..],
        ));
        wire.extend(frame(true, false, Opcode::Binary, &[0, 1, 2]));
        wire.extend(frame(true, false, Opcode::Close, &[0x03, 0xE8, b'o', b'k']));
        for chunk in 1..=wire.len() {
            let got = messages(&wire, chunk, false).unwrap();
            assert_eq!(
                got,
                vec![
                    Message::Ping(Bytes::from_static(b"are you there")),
                    Message::text("fragment€"),
                    Message::Binary(Bytes::from_static(&[0, 1, 2])),
                    Message::Close(Close {
                        code: CloseCode::NORMAL,
                        reason: "ok".into()
                    }),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_compressed_fragmented_message_inflates_in_every_chunking() {
        let text = "compressed and fragmented ".repeat(40);
        let packed = Deflater::new(false).compress(text.as_bytes());
        let (a, b) = packed.split_at(packed.len() / 2);
        let mut wire = frame(false, true, Opcode::Text, a);
        wire.extend(frame(true, false, Opcode::Continuation, b));
        for chunk in [1, 2, 3, 10, 100, wire.len()] {
            assert_eq!(
                messages(&wire, chunk, true).unwrap(),
                vec![Message::text(text.clone())]
            );
        }
    }

    #[test]
    fn broken_sequences_are_refused_with_the_rfc_code() {
        let cases: Vec<(Vec<u8>, u16, &str)> = vec![
            (
                frame(true, false, Opcode::Continuation, b"x"),
                1002,
                "continuation frame with no message",
            ),
            (
                [
                    frame(false, false, Opcode::Text, b"a"),
                    frame(true, false, Opcode::Text, b"b"),
                ]
                .concat(),
                1002,
                "new message began",
            ),
            (
                [
                    frame(false, true, Opcode::Text, b"a"),
                    frame(true, true, Opcode::Continuation, b"b"),
                ]
                .concat(),
                1002,
                "RSV1 set on a continuation",
            ),
            (
                frame(true, false, Opcode::Text, b"\xce\xba\xff"),
                1007,
                "not UTF-8",
            ),
            (
                [
                    frame(false, false, Opcode::Text, b"ok \xff"),
                    frame(true, false, Opcode::Continuation, b"x"),
                ]
                .concat(),
                1007,
                "not UTF-8",
            ),
            (
                frame(true, false, Opcode::Text, b"\xe2\x82"),
                1007,
                "not UTF-8",
            ),
            (
                frame(true, false, Opcode::Binary, &vec![0; 70_000]),
                1009,
                "frame of 70000 bytes",
            ),
            (
                [
                    frame(false, false, Opcode::Binary, &vec![0; 40_000]),
                    frame(true, false, Opcode::Continuation, &vec![0; 40_000]),
                ]
                .concat(),
                1009,
                "message of over 65536",
            ),
            (
                frame(true, false, Opcode::Close, &[0x03, 0xED]),
                1002,
                "close code 1005",
            ),
        ];
        for (wire, code, says) in cases {
            // The error is the same in any chunking, and it comes before
            // the end of a message that has one bad fragment.
            for chunk in [1, 7, wire.len()] {
                let e = messages(&wire, chunk, true).unwrap_err();
                assert_eq!(e.code.0, code, "{e}");
                assert!(e.to_string().contains(says), "{e} should say {says}");
            }
        }
        // A stream of empty fragments meets the limit (each costs its
        // header), and holds nothing meanwhile.
        let mut bomb = frame(false, false, Opcode::Binary, b"");
        for _ in 0..40_000 {
            bomb.extend(frame(false, false, Opcode::Continuation, b""));
        }
        let e = messages(&bomb, 4096, false).unwrap_err();
        assert_eq!(e.code.0, 1009, "{e}");
        // Invalid UTF-8 fails at its fragment, before the message ends.
        let first = frame(false, false, Opcode::Text, b"\xff");
        assert_eq!(
            messages(&first, first.len(), false).unwrap_err().code.0,
            1007
        );
    }
}
