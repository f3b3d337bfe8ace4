//! Responses: the [`Body`] type handlers return, and how a response head is
//! written.
//!
//! Every response carries `Server: torsion` and a `Date` formatted at most
//! once per second per shard (a thread-local cache: the shard's thread is
//! the only one that reads it). The framing headers are the server's, not
//! the handler's: a whole body gets `Content-Length`; a streamed body gets
//! its declared length, or `Transfer-Encoding: chunked` for HTTP/1.1 (an
//! HTTP/1.0 client gets the body delimited by closing the connection);
//! `HEAD`, 1xx, 204 and 304 get no body. Handler-set `Content-Length`,
//! `Transfer-Encoding`, `Connection`, `Server` and `Date` are replaced.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::io;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use futures_lite::Stream;
use http::header::{self, HeaderMap};
use http::{StatusCode, Version};

/// A response as handlers build it: `http::Response` with a torsion body.
pub type Response = http::Response<Body>;

/// A stream of body pieces, written as the connection can take them.
pub type BodyStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>>>>;

/// A response body.
pub enum Body {
    /// No body (`Content-Length: 0`).
    Empty,
    /// The whole body, at once.
    Full(Bytes),
    /// A body produced in pieces under the transport's flow control: the
    /// next piece is asked for only when the connection's output is below
    /// its high-water mark, so a large body never sits whole in memory.
    Stream {
        /// The body's length when known (sent as `Content-Length`; the
        /// stream must then produce exactly this many bytes, or the
        /// connection is aborted).
        length: Option<u64>,
        /// The pieces.
        pieces: BodyStream,
    },
}

impl Body {
    /// A streamed body.
    pub fn stream(
        length: Option<u64>,
        pieces: impl Stream<Item = io::Result<Bytes>> + 'static,
    ) -> Body {
        Body::Stream {
            length,
            pieces: Box::pin(pieces),
        }
    }

    /// The length, when known.
    pub fn length(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Full(b) => Some(b.len() as u64),
            Body::Stream { length, .. } => *length,
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Full(b) => write!(f, "Body::Full({} bytes)", b.len()),
            Body::Stream { length, .. } => write!(f, "Body::Stream(length {length:?})"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body::Full(b)
    }
}
impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::Full(Bytes::from_static(s.as_bytes()))
    }
}
impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Body::Full(Bytes::from_static(s))
    }
}
impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Full(Bytes::from(s))
    }
}
impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::Full(Bytes::from(v))
    }
}
impl From<()> for Body {
    fn from(_: ()) -> Body {
        Body::Empty
    }
}

/// A response with `status`, a `Content-Type` and a whole body.
pub fn response(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = http::Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

/// `200 OK`, `text/plain`.
pub fn text(body: impl Into<Body>) -> Response {
    response(StatusCode::OK, "text/plain", body)
}

/// `200 OK`, `application/json` (the body is already JSON).
pub fn json(body: impl Into<Body>) -> Response {
    response(StatusCode::OK, "application/json", body)
}

/// An error page: `status` with its reason phrase as a plain-text body.
pub fn status_page(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    response(
        status,
        "text/plain; charset=utf-8",
        format!("{} {reason}\n", status.as_u16()),
    )
}

/// How the body follows the head on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body bytes at all (HEAD, 1xx, 204, 304).
    NoBody,
    /// `Content-Length` bytes.
    Length,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (HTTP/1.0, unknown length).
    UntilClose,
}

/// Whether a status forbids a body.
pub(crate) fn bodiless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Writes the head of a response (status line, the server's headers, the
/// handler's headers, the framing) into `out`; says how the body follows.
/// `head_request`: the request was `HEAD` (the framing headers are those a
/// `GET` would get; no body follows). `close`: the connection closes after
/// this response. `date`: the `Date` value ([`http_date`]; the caller reads
/// it once for a batch of responses).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_head(
    out: &mut BytesMut,
    date: &[u8],
    status: StatusCode,
    headers: &HeaderMap,
    body_length: Option<u64>,
    request_version: Version,
    head_request: bool,
    close: bool,
) -> Framing {
    let mut framing = if bodiless(status) {
        Framing::NoBody
    } else if body_length.is_some() {
        Framing::Length
    } else if request_version == Version::HTTP_11 {
        Framing::Chunked
    } else {
        Framing::UntilClose
    };
    let close = close || framing == Framing::UntilClose;
    out.reserve(128 + headers.len() * 32);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.put_slice(b"\r\nServer: torsion\r\nDate: ");
    out.put_slice(date);
    out.put_slice(b"\r\n");
    for (name, value) in headers {
        if matches!(
            *name,
            header::CONTENT_LENGTH
                | header::TRANSFER_ENCODING
                | header::CONNECTION
                | header::SERVER
                | header::DATE
        ) {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    match framing {
        Framing::Length => {
            // BytesMut is a fmt::Write: no String for the digits.
            // Writing to memory cannot fail.
            let _ = write!(out, "Content-Length: {}\r\n", body_length.unwrap_or(0));
        }
        Framing::Chunked => out.put_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::NoBody | Framing::UntilClose => {}
    }
    if close {
        out.put_slice(b"Connection: close\r\n");
    } else if request_version == Version::HTTP_10 {
        out.put_slice(b"Connection: keep-alive\r\n");
    }
    out.put_slice(b"\r\n");
    if head_request {
        framing = Framing::NoBody;
    }
    framing
}

thread_local! {
    /// (second it was formatted for, the formatted `Date` value).
    static DATE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
}

/// The current `Date` header value (IMF-fixdate, 29 bytes), formatted again
/// only when the second changed.
pub fn http_date() -> [u8; 29] {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    DATE.with(|cell| {
        let (cached_second, mut text) = cell.get();
        if cached_second != second {
            // fmt_http_date always writes the 29-byte IMF-fixdate form.
            text.copy_from_slice(&httpdate::fmt_http_date(now).as_bytes()[..29]);
            cell.set((second, text));
        }
        text
    })
}

#[cfg(feature = "websocket")]
/// `r` as the bytes of a whole HTTP/1.1 response that closes its
/// connection (`Connection: close`): for listeners that answer one
/// request and hand the connection on or close it (the WebSocket ones).
/// A streamed body cannot be sent this way: it is answered 500 (logged).
pub(crate) fn whole_response(r: Response) -> BytesMut {
    let (mut parts, body) = r.into_parts();
    let body = match body {
        Body::Full(b) => b,
        Body::Empty => Bytes::new(),
        Body::Stream { .. } => {
            tracing::warn!("a streamed body where a whole one is needed; answered 500");
            parts.status = StatusCode::INTERNAL_SERVER_ERROR;
            parts.headers.clear();
            Bytes::from_static(b"500 Internal Server Error\n")
        }
    };
    let mut out = BytesMut::with_capacity(256 + body.len());
    write_head(
        &mut out,
        &http_date(),
        parts.status,
        &parts.headers,
        Some(body.len() as u64),
        Version::HTTP_11,
        false,
        true,
    );
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_text(
        status: StatusCode,
        length: Option<u64>,
        version: Version,
        head: bool,
        close: bool,
    ) -> (String, Framing) {
        let mut out = BytesMut::new();
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        headers.insert(header::CONTENT_LENGTH, "999".parse().unwrap());
        let date = http_date();
        let f = write_head(
            &mut out, &date, status, &headers, length, version, head, close,
        );
        (String::from_utf8(out.to_vec()).unwrap(), f)
    }

    #[test]
    fn a_whole_body_gets_the_servers_length_and_headers() {
        let (h, f) = head_text(StatusCode::OK, Some(13), Version::HTTP_11, false, false);
        assert_eq!(f, Framing::Length);
        assert!(
            h.starts_with("HTTP/1.1 200 OK\r\nServer: torsion\r\nDate: "),
            "{h}"
        );
        assert!(
            h.contains("\r\ncontent-type: text/plain\r\nContent-Length: 13\r\n\r\n"),
            "{h}"
        );
        assert!(!h.contains("999"));
        let date = h
            .split("Date: ")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap();
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    }

    #[test]
    fn framing_follows_length_version_method_and_status() {
        assert_eq!(
            head_text(StatusCode::OK, None, Version::HTTP_11, false, false).1,
            Framing::Chunked
        );
        let (h, f) = head_text(StatusCode::OK, None, Version::HTTP_10, false, false);
        assert_eq!(f, Framing::UntilClose);
        assert!(h.contains("Connection: close\r\n"));
        let (h, f) = head_text(StatusCode::OK, Some(5), Version::HTTP_11, true, false);
        assert_eq!(f, Framing::NoBody);
        assert!(
            h.contains("Content-Length: 5\r\n"),
            "HEAD keeps GET's length"
        );
        let (h, f) = head_text(
            StatusCode::NOT_MODIFIED,
            Some(5),
            Version::HTTP_11,
            false,
            false,
        );
        assert_eq!(f, Framing::NoBody);
        assert!(!h.contains("Content-Length"));
        let (h, _) = head_text(StatusCode::OK, Some(0), Version::HTTP_10, false, false);
        assert!(h.contains("Connection: keep-alive\r\n"));
    }
}
