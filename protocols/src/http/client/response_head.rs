//! Reading a response head (RFC 9112 §4, §6): `httparse`, then how the body
//! is framed and whether the connection can carry another request.
//! Interim (1xx) responses are skipped. The framing rules are shared with
//! `torsion load http`, which counts what the client here would refuse.

use bytes::{Buf, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};

use crate::http::BodyFraming;

/// The longest response head read.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// The most header fields in a response head.
const MAX_HEADERS: usize = 128;

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    /// `None`: the body runs to the connection's end (no length, not
    /// chunked: HTTP/1.0 style).
    pub framing: Option<BodyFraming>,
    /// The connection can carry another request after this response.
    pub keep_alive: bool,
}

/// How a response's body is framed: `Ok(None)` when it runs until the
/// server closes (neither `Content-Length` nor chunked). `head_request`:
/// the response to a `HEAD` has no body whatever its headers say.
pub fn response_framing(
    status: u16,
    head_request: bool,
    headers: &[httparse::Header<'_>],
) -> Result<Option<BodyFraming>, String> {
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Some(BodyFraming::None));
    }
    let mut lengths = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"));
    if let Some(te) = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
    {
        return if te.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            Ok(Some(BodyFraming::Chunked))
        } else {
            Err(format!(
                "a response body in transfer coding \"{}\" (only chunked is read)",
                String::from_utf8_lossy(te.value)
            ))
        };
    }
    let Some(first) = lengths.next() else {
        return Ok(None);
    };
    let parse = |v: &[u8]| {
        std::str::from_utf8(v)
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
    };
    let n = parse(first.value).ok_or("a malformed Content-Length")?;
    if lengths.any(|h| parse(h.value) != Some(n)) {
        return Err("conflicting Content-Length fields".into());
    }
    Ok(Some(if n == 0 {
        BodyFraming::None
    } else {
        BodyFraming::Length(n)
    }))
}

/// Takes the next final response head off `buf` (skipping 1xx ones, at
/// most [`MAX_RESPONSE_HEAD`] bytes of them in all, counted in `interim`
/// across calls): `Ok(None)` when more input is needed.
pub(crate) fn parse_response_head(
    buf: &mut BytesMut,
    head_request: bool,
    interim: &mut usize,
) -> Result<Option<ResponseHead>, String> {
    loop {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut fields);
        let n = match response.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
                return Err(format!(
                    "a response head longer than {MAX_RESPONSE_HEAD} bytes"
                ))
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(format!("more than {MAX_HEADERS} header fields"))
            }
            Err(e) => return Err(format!("{e}")),
        };
        let code = response.code.unwrap_or(0);
        let status = StatusCode::from_u16(code).map_err(|_| format!("status {code}"))?;
        if (100..200).contains(&code) && code != 101 {
            *interim += n;
            if *interim > MAX_RESPONSE_HEAD {
                return Err(format!(
                    "more than {MAX_RESPONSE_HEAD} bytes of interim (1xx) responses"
                ));
            }
            buf.advance(n);
            continue;
        }
        if code == 101 {
            return Err("101 Switching Protocols to a request that asked for no upgrade".into());
        }
        let version = if response.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let framing = response_framing(code, head_request, response.headers)?;
        let mut headers = HeaderMap::with_capacity(response.headers.len());
        let mut close = false;
        let mut keep_alive_token = false;
        for h in response.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| format!("a header name \"{}\" HTTP does not allow", h.name))?;
            let value = HeaderValue::from_bytes(h.value)
                .map_err(|_| format!("header \"{}\" has a value HTTP does not allow", h.name))?;
            if name == http::header::CONNECTION {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            headers.append(name, value);
        }
        let has_te_and_length = headers.contains_key(http::header::TRANSFER_ENCODING)
            && headers.contains_key(http::header::CONTENT_LENGTH);
        let keep_alive = framing.is_some()
            && !close
            && !has_te_and_length
            && (version == Version::HTTP_11 || keep_alive_token);
        buf.advance(n);
        return Ok(Some(ResponseHead {
            status,
            version,
            headers,
            framing,
            keep_alive,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testing::every_chunking;

    fn parse_all(input: &[u8], head_request: bool) -> Result<Option<ResponseHead>, String> {
        let mut buf = BytesMut::from(input);
        parse_response_head(&mut buf, head_request, &mut 0)
    }

    #[test]
    fn heads_parse_in_every_chunking_and_interim_responses_are_skipped() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
        every_chunking(input, |chunks| {
            let mut buf = BytesMut::new();
            let mut head = None;
            for chunk in chunks {
                buf.extend_from_slice(chunk);
                if head.is_none() {
                    head = parse_response_head(&mut buf, false, &mut 0).unwrap();
                }
            }
            let head = head.expect("a head");
            assert_eq!(head.status, StatusCode::OK);
            assert_eq!(head.framing, Some(BodyFraming::Length(5)));
            assert!(head.keep_alive);
            assert_eq!(head.headers["x-a"], "b");
            assert_eq!(&buf[..], b"hello");
        });
    }

    #[test]
    fn interim_responses_are_bounded_across_calls() {
        let mut interim = 0;
        let mut result = Ok(None);
        for _ in 0..4000 {
            let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]);
            result = parse_response_head(&mut buf, false, &mut interim);
            if result.is_err() {
                break;
            }
        }
        assert!(result.unwrap_err().contains("interim (1xx) responses"));
    }

    #[test]
    fn framing_and_keep_alive_follow_rfc_9112() {
        let h = parse_all(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive, "HTTP/1.0 closes unless it says keep-alive");
        let h = parse_all(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(h.keep_alive);
        let h = parse_all(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!h.keep_alive);
        let h = parse_all(b"HTTP/1.1 200 OK\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (None, false), "until close");
        let h = parse_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Some(BodyFraming::None), "HEAD has no body");
        let h = parse_all(b"HTTP/1.1 204 No Content\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Some(BodyFraming::None), true));
        let h = parse_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (h.framing, h.keep_alive),
            (Some(BodyFraming::Chunked), false)
        );
    }

    #[test]
    fn malformed_heads_are_errors_that_say_why() {
        for (input, why) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"[..],
                "malformed Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "conflicting",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                "gzip",
            ),
            (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "101"),
            (b"SSH-2.0-OpenSSH\r\n\r\n", "version"),
        ] {
            let e = parse_all(input, false).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let e = parse_all(&vec![b'a'; MAX_RESPONSE_HEAD + 1], false);
        assert!(e.is_err());
        let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
        long.resize(MAX_RESPONSE_HEAD + 10, b'a');
        assert!(parse_all(&long, false).unwrap_err().contains("longer than"));
    }
}
