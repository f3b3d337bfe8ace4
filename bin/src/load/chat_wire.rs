//! How `load chat`'s clients frame their lines: `\r\n` lines (the line
//! listener), or one WebSocket text message per line (`--websocket`: the
//! chat's WebSocket listener), the handshake first.

use bytes::{Bytes, BytesMut};
use torsion::codec::{Decoder, FrameError};
use torsion::Connection;
use torsion_protocols::codec::LineCodec;
use torsion_protocols::websocket::{
    apply_mask, client_key, client_request, read_frame, write_header, Close, Opcode, Role,
};

use super::ws_wire::{take_handshake_answer, Masks};

/// Why a client's input could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatWireError {
    /// Line framing's.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A WebSocket frame that breaks the rules, or the server's close.
    #[error("{0}")]
    WebSocket(String),
}

/// A chat client's framing, both ways.
pub enum ChatCodec {
    /// `\r\n` lines, at most `max` bytes.
    Lines(LineCodec),
    /// WebSocket text messages (masked on the way out).
    WebSocket {
        /// The longest message taken.
        max: usize,
        /// Its frames' masks.
        masks: Masks,
    },
}

impl ChatCodec {
    /// Line framing, lines of at most `max` bytes.
    pub fn lines(max: usize) -> ChatCodec {
        ChatCodec::Lines(LineCodec::lf_or_crlf().max_length(max))
    }

    /// WebSocket framing, messages of at most `max` bytes.
    pub fn websocket(max: usize) -> ChatCodec {
        ChatCodec::WebSocket {
            max,
            masks: Masks::default(),
        }
    }

    /// `line` (without a line end) as it goes on the wire, appended to
    /// `out`.
    pub fn frame(&self, line: &[u8], out: &mut Vec<u8>) {
        match self {
            ChatCodec::Lines(_) => {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
            ChatCodec::WebSocket { masks, .. } => {
                let mask = masks.next_mask();
                let mut header = BytesMut::with_capacity(14);
                write_header(
                    &mut header,
                    true,
                    false,
                    Opcode::Text,
                    line.len(),
                    Some(mask),
                );
                out.extend_from_slice(&header);
                let start = out.len();
                out.extend_from_slice(line);
                apply_mask(&mut out[start..], mask, 0);
            }
        }
    }
}

impl Decoder for ChatCodec {
    type Item = Bytes;
    type Error = ChatWireError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, ChatWireError> {
        match self {
            ChatCodec::Lines(c) => Ok(c.decode(buf)?),
            ChatCodec::WebSocket { max, .. } => loop {
                let frame = read_frame(buf, Role::Client, false, *max)
                    .map_err(|e| ChatWireError::WebSocket(e.to_string()))?;
                let Some(frame) = frame else {
                    return Ok(None);
                };
                match frame.opcode {
                    Opcode::Text if frame.fin => return Ok(Some(frame.payload)),
                    Opcode::Ping | Opcode::Pong => continue,
                    Opcode::Close => {
                        let close = Close::parse(&frame.payload)
                            .map_err(|e| ChatWireError::WebSocket(e.to_string()))?;
                        return Err(ChatWireError::WebSocket(format!(
                            "the server closed the WebSocket: {} {}",
                            close.code.0, close.reason
                        )));
                    }
                    _ => {
                        return Err(ChatWireError::WebSocket(
                            "a chat line that is not one text message".into(),
                        ))
                    }
                }
            },
        }
    }

    fn reset(&mut self) {
        if let ChatCodec::Lines(c) = self {
            c.reset();
        }
    }
}

/// The opening handshake on `conn` (to `host`, path `/`): the request,
/// then the `101` and its `Sec-WebSocket-Accept` checked.
pub async fn handshake(conn: &mut Connection, host: &str) -> Result<(), String> {
    let key = client_key();
    conn.write(&client_request(host, "/", &key, &[], false))
        .await
        .map_err(|e| format!("cannot send the WebSocket handshake: {e}"))?;
    let answer = conn
        .read_with(|buf, at_end| take_handshake_answer(buf, &key, at_end))
        .await;
    match answer {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(e),
        None => Err("the server closed during the WebSocket handshake".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_out_as_lines_or_as_masked_text_messages_and_come_back() {
        let mut out = Vec::new();
        ChatCodec::lines(100).frame(b"hello", &mut out);
        assert_eq!(out, b"hello\r\n");
        let ws = ChatCodec::websocket(100);
        let mut out = Vec::new();
        ws.frame(b"hello", &mut out);
        assert_eq!(&out[..2], &[0x81, 0x85]);
        let mut back = out[6..].to_vec();
        apply_mask(&mut back, [out[2], out[3], out[4], out[5]], 0);
        assert_eq!(back, b"hello");
        // The server's messages, in any chunking.
        let wire = b"\x81\x02hi\x89\x00\x81\x05there";
        for chunk in 1..=wire.len() {
            let mut codec = ChatCodec::websocket(100);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(l) = codec.decode(&mut buf).unwrap() {
                    got.push(l);
                }
            }
            assert_eq!(
                got,
                [Bytes::from_static(b"hi"), Bytes::from_static(b"there")]
            );
        }
        let mut buf = BytesMut::from(&b"\x88\x02\x03\xe9"[..]);
        let e = ChatCodec::websocket(100).decode(&mut buf).unwrap_err();
        assert_eq!(e.to_string(), "the server closed the WebSocket: 1001 ");
    }
}
