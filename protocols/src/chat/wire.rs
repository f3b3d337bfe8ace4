//! [`ChatWire`]: how a chat client's connection frames the room's lines —
//! as they are (`\r\n`-terminated lines), or one WebSocket text message per
//! line. A line fanned out is framed once per wire, not once per reader:
//! every WebSocket reader of a shard shares one framed copy.

use bytes::Bytes;

/// How a client's connection frames lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatWire {
    /// `\r\n`-terminated lines (the line listener).
    Lines,
    /// One WebSocket text message per line (server frames: unmasked).
    #[cfg(feature = "websocket")]
    WebSocket,
}

impl ChatWire {
    /// `lines` (whole `\r\n`-terminated lines) as this wire sends them.
    pub fn frame(self, lines: &Bytes) -> Bytes {
        match self {
            ChatWire::Lines => lines.clone(),
            #[cfg(feature = "websocket")]
            ChatWire::WebSocket => {
                use crate::websocket::{write_header, Opcode};
                let mut out = bytes::BytesMut::with_capacity(lines.len() + 16);
                for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    let text = line.strip_suffix(b"\r").unwrap_or(line);
                    write_header(&mut out, true, false, Opcode::Text, text.len(), None);
                    out.extend_from_slice(text);
                }
                out.freeze()
            }
        }
    }
}

impl ChatWire {
    /// Closes `transport` after what is queued; a WebSocket client gets a
    /// close frame first (1000 and `why`), so a browser sees a clean close
    /// it need not reconnect after.
    pub fn close(self, transport: &torsion::Transport, why: &str) {
        #[cfg(feature = "websocket")]
        if self == ChatWire::WebSocket {
            use crate::websocket::{server_frame, Close, CloseCode, Opcode};
            let payload = Close::payload(CloseCode::NORMAL, why);
            // Err: the connection is closing already.
            let _ = transport.write(&server_frame(Opcode::Close, &payload));
        }
        let _ = why;
        transport.close();
    }
}

#[cfg(all(test, feature = "websocket"))]
mod tests {
    use super::*;

    #[test]
    fn each_line_becomes_one_text_message() {
        let framed = ChatWire::WebSocket.frame(&Bytes::from_static(b"<a> hi\r\n<b> yo\r\n"));
        assert_eq!(&framed[..], b"\x81\x06<a> hi\x81\x06<b> yo");
        let lines = Bytes::from_static(b"x\r\n");
        assert_eq!(ChatWire::Lines.frame(&lines), lines);
    }
}
