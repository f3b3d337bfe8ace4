//! `torsion load ws`'s side of the wire: echo over WebSocket. Each
//! connection opens with the handshake (sent before its first request; the
//! `101` checked, its `Sec-WebSocket-Accept` too); each request is one
//! masked binary message and its answer the message echoed back, compared
//! byte for byte by the echo engine (`echo.rs`). A server's refusal, close
//! frame or broken frame is an error with its cause.
//!
//! Masks come from a per-connection generator seeded by the kernel's
//! random source: RFC 6455 wants masks a proxy cannot predict; a load
//! generator's masks need only differ, and one `getrandom` per frame would
//! cost more than the frame.

use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use torsion_protocols::websocket::{
    accept_key, apply_mask, client_key, client_request, read_frame, write_header, Close, Opcode,
    Role,
};

use super::http_wire::HttpTarget;

/// A WebSocket load's target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsTarget {
    /// The URL read as HTTP (`ws://` as `http://`): address, host, path.
    pub http: HttpTarget,
}

impl WsTarget {
    /// Parses `ws[s]://host[:port][/path]` (the host resolved now).
    pub fn parse(url: &str) -> Result<WsTarget, String> {
        let as_http = if let Some(rest) = url.strip_prefix("ws://") {
            format!("http://{rest}")
        } else if let Some(rest) = url.strip_prefix("wss://") {
            format!("https://{rest}")
        } else {
            return Err(format!(
                "invalid URL \"{url}\": expected ws://HOST:PORT/PATH or wss://…"
            ));
        };
        Ok(WsTarget {
            http: HttpTarget::parse(&as_http).map_err(|e| e.replace("http", "ws"))?,
        })
    }
}

/// One connection's WebSocket wire.
pub struct WsWire {
    request: Bytes,
    key: String,
    max_frame: usize,
    /// The handshake went out (with the first request).
    sent: Cell<bool>,
    /// The server's `101` came back.
    open: bool,
    masks: Masks,
}

/// Masks for a load client's frames: xorshift64*, seeded once from the
/// kernel's random bytes (see the module docs).
pub struct Masks(Cell<u64>);

impl Default for Masks {
    fn default() -> Masks {
        let mut seed = [0u8; 8];
        // A fixed seed only if the kernel has no random bytes to give.
        let _ = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed));
        Masks(Cell::new(u64::from_ne_bytes(seed) | 1))
    }
}

impl Masks {
    /// The next frame's mask.
    pub fn next_mask(&self) -> [u8; 4] {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) as u32).to_ne_bytes()
    }
}

/// Takes the server's answer to a handshake made with `key` off the front
/// of `buf`: `Ok(Some(()))` once a `101` with the right
/// `Sec-WebSocket-Accept` is in, `Ok(None)` until its head is whole, `Err`
/// with why (a refusal, a wrong accept, not HTTP, or `at_end` before it).
pub fn take_handshake_answer(
    buf: &mut BytesMut,
    key: &str,
    at_end: bool,
) -> Result<Option<()>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let n = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if at_end || buf.len() > 16 * 1024 => {
            return Err("no whole answer to the WebSocket handshake".into())
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("a handshake answer that is not HTTP: {e}")),
    };
    if response.code != Some(101) {
        return Err(format!(
            "the server refused the WebSocket handshake: {} {}",
            response.code.unwrap_or(0),
            response.reason.unwrap_or("")
        ));
    }
    let accept = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|h| h.value);
    if accept != Some(accept_key(key).as_bytes()) {
        return Err("the server's Sec-WebSocket-Accept does not match the key".into());
    }
    let _ = buf.split_to(n);
    Ok(Some(()))
}

impl WsWire {
    /// A wire to `target`, for echoes of at most `max_frame` bytes.
    pub fn new(target: &WsTarget, max_frame: usize) -> WsWire {
        let key = client_key();
        let request = client_request(&target.http.host, &target.http.path, &key, &[], false);
        WsWire {
            request: Bytes::from(request),
            key,
            max_frame,
            sent: Cell::new(false),
            open: false,
            masks: Masks::default(),
        }
    }

    /// Frames `payload` as a masked binary message (the handshake first,
    /// on a connection's first request).
    pub fn encode(&self, payload: &[u8], dst: &mut BytesMut) {
        if !self.sent.replace(true) {
            dst.extend_from_slice(&self.request);
        }
        let mask = self.masks.next_mask();
        write_header(dst, true, false, Opcode::Binary, payload.len(), Some(mask));
        let start = dst.len();
        dst.extend_from_slice(payload);
        apply_mask(&mut dst[start..], mask, 0);
    }

    /// The next echoed message's payload; the handshake's answer first.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, String> {
        if !self.open {
            if take_handshake_answer(buf, &self.key, false)?.is_none() {
                return Ok(None);
            }
            self.open = true;
        }
        loop {
            let frame = match read_frame(buf, Role::Client, false, self.max_frame) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(None),
                Err(e) => return Err(format!("a broken frame from the server: {e}")),
            };
            match frame.opcode {
                Opcode::Binary | Opcode::Text if frame.fin => return Ok(Some(frame.payload)),
                Opcode::Binary | Opcode::Text | Opcode::Continuation => {
                    return Err("a fragmented echo (not supported by the load)".into())
                }
                // Pings are not answered (the load writes only requests);
                // a server that requires pongs will close, and says so.
                Opcode::Ping | Opcode::Pong => continue,
                Opcode::Close => {
                    let close = Close::parse(&frame.payload).map_err(|e| e.to_string())?;
                    return Err(format!(
                        "the server closed the WebSocket: {} {}",
                        close.code.0, close.reason
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_or_refused() {
        let t = WsTarget::parse("ws://127.0.0.1:9001/echo").unwrap();
        assert_eq!((t.http.path.as_str(), t.http.https), ("/echo", false));
        assert!(WsTarget::parse("wss://localhost/").unwrap().http.https);
        let e = WsTarget::parse("http://x/").unwrap_err();
        assert!(e.contains("expected ws://"), "{e}");
    }

    #[test]
    fn the_first_request_carries_the_handshake_and_echoes_are_read_in_any_chunking() {
        let t = WsTarget::parse("ws://127.0.0.1:9001/").unwrap();
        let wire = WsWire::new(&t, 1024);
        let mut out = BytesMut::new();
        wire.encode(b"hello", &mut out);
        assert!(out.starts_with(b"GET / HTTP/1.1\r\n"));
        let mut second = BytesMut::new();
        wire.encode(b"again", &mut second);
        assert_eq!(second[0], 0x82);
        assert_eq!(second.len(), 2 + 4 + 5);
        // The server's answer: the 101, then two echoes.
        let mut answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(&wire.key)
        )
        .into_bytes();
        answer.extend_from_slice(b"\x82\x05hello\x82\x05again");
        for chunk in 1..=answer.len() {
            let mut w = WsWire::new(&t, 1024);
            w.key = wire.key.clone();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in answer.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(p) = w.decode(&mut buf).unwrap() {
                    got.push(p);
                }
            }
            assert_eq!(
                got,
                [Bytes::from_static(b"hello"), Bytes::from_static(b"again")]
            );
        }
    }

    #[test]
    fn refusals_and_closes_are_errors_with_their_cause() {
        let t = WsTarget::parse("ws://127.0.0.1:9001/").unwrap();
        let mut w = WsWire::new(&t, 1024);
        let mut buf = BytesMut::from(&b"HTTP/1.1 426 Upgrade Required\r\n\r\n"[..]);
        let e = w.decode(&mut buf).unwrap_err();
        assert!(e.contains("426 Upgrade Required"), "{e}");
        let mut w = WsWire::new(&t, 1024);
        w.open = true;
        let mut buf = BytesMut::from(&b"\x88\x05\x03\xf1bye"[..]);
        assert_eq!(
            w.decode(&mut buf).unwrap_err(),
            "the server closed the WebSocket: 1009 bye"
        );
    }
}
