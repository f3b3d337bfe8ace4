//! The opening handshake (RFC 6455 §4): the server's checks of an
//! `Upgrade: websocket` request and its `101` answer; the client's request
//! and its checks of the answer.

use base64::Engine;
use bytes::BytesMut;
use http::{header, HeaderMap, Method, StatusCode};

use super::deflate::DeflateParams;
use crate::http::RequestHead;

/// The GUID §1.3 appends to the key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for `key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// Whether a header's comma-separated tokens include `token` (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Whether `head` asks to become a WebSocket (`Upgrade: websocket`).
pub fn is_upgrade(head: &RequestHead) -> bool {
    has_token(&head.parts.headers, header::UPGRADE, "websocket")
}

/// A refused handshake: the status to answer with and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 405 or 426.
    pub status: StatusCode,
    /// Why, in words (the response's body).
    pub reason: String,
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

/// What the server agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The `101 Switching Protocols` response, whole.
    pub response: BytesMut,
    /// The subprotocol chosen, if any.
    pub protocol: Option<String>,
    /// `permessage-deflate`, when offered, allowed and taken.
    pub deflate: Option<DeflateParams>,
}

/// Checks an upgrade request and builds the `101` answer: GET, HTTP/1.1,
/// `Connection: upgrade`, `Upgrade: websocket`, version 13 (another is 426
/// with the version this end speaks), a key of 16 bytes in base64. The
/// first of the client's subprotocols that `protocols` lists is chosen;
/// `deflate`: take a `permessage-deflate` offer.
pub fn accept(
    head: &RequestHead,
    protocols: &[String],
    deflate: bool,
) -> Result<Accepted, Refusal> {
    let parts = &head.parts;
    if parts.method != Method::GET {
        return Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket handshake is a GET",
        ));
    }
    if parts.version != http::Version::HTTP_11 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "a WebSocket handshake needs HTTP/1.1",
        ));
    }
    if !is_upgrade(head) {
        return Err(refuse(
            StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: send Upgrade: websocket",
        ));
    }
    if !has_token(&parts.headers, header::CONNECTION, "upgrade") {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "Connection: upgrade is missing",
        ));
    }
    let version = parts.headers.get(header::SEC_WEBSOCKET_VERSION);
    if version.map(|v| v.as_bytes()) != Some(b"13") {
        return Err(refuse(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is spoken here",
        ));
    }
    let key = parts
        .headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|k| k.to_str().ok())
        .map(str::trim)
        .filter(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k)
                .is_ok_and(|raw| raw.len() == 16)
        })
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Key is missing or not 16 bytes in base64",
            )
        })?;
    let offered: Vec<&str> = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let protocol = offered
        .iter()
        .find(|p| protocols.iter().any(|ours| ours == *p))
        .map(|p| p.to_string());
    let deflate = if deflate {
        parts
            .headers
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(DeflateParams::accept_offer)
    } else {
        None
    };
    let mut response = BytesMut::with_capacity(256);
    response.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    response.extend_from_slice(accept_key(key).as_bytes());
    if let Some(p) = &protocol {
        response.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        response.extend_from_slice(p.as_bytes());
    }
    if let Some(d) = &deflate {
        response.extend_from_slice(b"\r\nSec-WebSocket-Extensions: ");
        response.extend_from_slice(d.answer().as_bytes());
    }
    response.extend_from_slice(b"\r\n\r\n");
    Ok(Accepted {
        response,
        protocol,
        deflate,
    })
}

/// Checks the request's `Origin` against `allowed` (empty: any origin is
/// allowed, and so is a request without one): a refusal (403) names the
/// origin. Browsers send their page's origin, so this keeps other sites'
/// pages from opening the WebSocket from a visitor's browser; non-browser
/// clients send none, or what they like.
pub fn check_origin(head: &RequestHead, allowed: &[String]) -> Result<(), Refusal> {
    if allowed.is_empty() {
        return Ok(());
    }
    let origin = head
        .parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    match origin {
        Some(o) if allowed.iter().any(|a| a.eq_ignore_ascii_case(o)) => Ok(()),
        Some(o) => Err(refuse(
            StatusCode::FORBIDDEN,
            format!("pages from {o} may not open this WebSocket"),
        )),
        None => Err(refuse(
            StatusCode::FORBIDDEN,
            "this WebSocket takes only pages of its allowed origins (no Origin was sent)",
        )),
    }
}

/// A client's key: 16 random bytes in base64.
pub fn client_key() -> String {
    let mut raw = [0u8; 16];
    fill_random(&mut raw);
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Random bytes for keys and masks, from the kernel.
pub(crate) fn fill_random(buf: &mut [u8]) {
    if getrandom::getrandom(buf).is_err() {
        // getrandom(2) does not fail for small requests once the pool is
        // ready; should it, the clock still gives a different key per call.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
}

/// The client's request for `path` on `host`.
pub fn client_request(
    host: &str,
    path: &str,
    key: &str,
    protocols: &[String],
    deflate: bool,
) -> Vec<u8> {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        r.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            protocols.join(", ")
        ));
    }
    if deflate {
        r.push_str(&format!(
            "Sec-WebSocket-Extensions: {}\r\n",
            DeflateParams::offer()
        ));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Checks a server's answer (`status` and `headers`) to a request made
/// with `key`: what was agreed, or why the handshake failed.
pub fn check_answer(
    status: StatusCode,
    headers: &HeaderMap,
    key: &str,
    protocols: &[String],
) -> Result<(Option<String>, Option<DeflateParams>), String> {
    if status != StatusCode::SWITCHING_PROTOCOLS {
        return Err(format!(
            "the server answered {status}, not 101 Switching Protocols"
        ));
    }
    if !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return Err("the server's 101 lacks Upgrade: websocket / Connection: upgrade".into());
    }
    let accept = headers
        .get(header::SEC_WEBSOCKET_ACCEPT)
        .and_then(|v| v.to_str().ok());
    if accept != Some(accept_key(key).as_str()) {
        return Err("the server's Sec-WebSocket-Accept does not match the key".into());
    }
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(p) = &protocol {
        if !protocols.contains(p) {
            return Err(format!("the server chose a subprotocol not offered: {p}"));
        }
    }
    let deflate = match headers.get(header::SEC_WEBSOCKET_EXTENSIONS) {
        None => None,
        Some(v) => Some(DeflateParams::from_answer(
            v.to_str()
                .map_err(|_| "an extensions header that is not text")?,
        )?),
    };
    Ok((protocol, deflate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;

    fn head(text: &str) -> RequestHead {
        parse_head(bytes::Bytes::copy_from_slice(text.as_bytes()), 100).unwrap()
    }

    #[test]
    fn the_rfc_sample_key_gets_the_rfc_sample_accept() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_good_request_is_accepted_with_its_protocol_and_deflate() {
        let h = head(
            "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: v2.chat, chat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        );
        let a = accept(&h, &["chat".into()], true).unwrap();
        assert_eq!(a.protocol.as_deref(), Some("chat"));
        assert_eq!(a.deflate, Some(DeflateParams::default()));
        let text = String::from_utf8(a.response.to_vec()).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: chat\r\n"));
        assert!(text.ends_with("Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"));
        assert_eq!(accept(&h, &[], false).unwrap().deflate, None);
    }

    #[test]
    fn bad_requests_are_refused_with_their_status() {
        let base =
            "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
        let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let cases = [
            (format!("POST / HTTP/1.1\r\n{base}{key}\r\n"), 405),
            (format!("GET / HTTP/1.0\r\n{base}{key}\r\n"), 400),
            (format!("GET / HTTP/1.1\r\nHost: x\r\n{key}\r\n"), 426),
            (
                format!(
                    "GET / HTTP/1.1\r\n{}\r\n",
                    base.replace("Connection: Upgrade\r\n", "")
                ),
                400,
            ),
            (
                format!("GET / HTTP/1.1\r\n{}{key}\r\n", base.replace("13", "8")),
                426,
            ),
            (format!("GET / HTTP/1.1\r\n{base}\r\n"), 400),
            (
                format!("GET / HTTP/1.1\r\n{base}Sec-WebSocket-Key: c2hvcnQ=\r\n\r\n"),
                400,
            ),
        ];
        for (req, status) in cases {
            let e = accept(&head(&req), &[], true).unwrap_err();
            assert_eq!(e.status.as_u16(), status, "{req}: {}", e.reason);
        }
    }

    #[test]
    fn origins_are_checked_only_when_some_are_named() {
        let with = head("GET / HTTP/1.1\r\nHost: x\r\nOrigin: http://good.test\r\n\r\n");
        let without = head("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(check_origin(&with, &[]).is_ok());
        assert!(check_origin(&without, &[]).is_ok());
        let allowed = ["http://good.test".to_string()];
        assert!(check_origin(&with, &allowed).is_ok());
        let evil = head("GET / HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.test\r\n\r\n");
        let e = check_origin(&evil, &allowed).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.reason.contains("http://evil.test"), "{}", e.reason);
        assert_eq!(
            check_origin(&without, &allowed).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn a_client_checks_the_answer() {
        let key = client_key();
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        h.insert(header::CONNECTION, "Upgrade".parse().unwrap());
        h.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            accept_key(&key).parse().unwrap(),
        );
        assert_eq!(
            check_answer(StatusCode::SWITCHING_PROTOCOLS, &h, &key, &[]),
            Ok((None, None))
        );
        assert!(check_answer(StatusCode::SWITCHING_PROTOCOLS, &h, &client_key(), &[]).is_err());
        assert!(check_answer(StatusCode::OK, &h, &key, &[]).is_err());
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, "other".parse().unwrap());
        assert!(check_answer(StatusCode::SWITCHING_PROTOCOLS, &h, &key, &["chat".into()]).is_err());
    }
}
