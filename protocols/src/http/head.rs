//! Reading a request head: `httparse` parses; this file applies the policy
//! httparse leaves to its caller — where the head ends, its size and header
//! count, how the body is framed, and the request-smuggling refusals.
//!
//! # Policy (RFC 9112, chosen strictly)
//!
//! - **Line ends are CRLF.** A bare LF anywhere in the head is refused (400):
//!   RFC 9112 §2.2 lets a server accept it, but a proxy in front that does
//!   not would see a different message — the start of a smuggling attack.
//! - **Empty lines before the request line** are skipped (RFC 9112 §2.2).
//! - **obs-fold** (a header line starting with a space or tab) is refused
//!   (400), as §5.2 allows.
//! - **Framing:** `Transfer-Encoding` and `Content-Length` together → 400;
//!   `Content-Length` values that differ (in one header's list or across
//!   headers) or are not plain digits → 400; `Transfer-Encoding` whose last
//!   coding is not `chunked` → 400, a coding other than `chunked` → 501,
//!   `chunked` twice → 400, `Transfer-Encoding` in an HTTP/1.0 request →
//!   400 (§6.1: the framing cannot be trusted).
//! - **Host:** an HTTP/1.1 request without exactly one `Host` → 400 (§3.2).
//! - **Expect:** `100-continue` is honoured; any other expectation → 417.
//! - Not HTTP/1.x at all: the HTTP/2 preface (`PRI * HTTP/2.0`), a TLS
//!   ClientHello on a plain port, or any other bytes httparse cannot read
//!   as a request line → 400 and close.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};

/// What the head says about the body that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed, checked request head.
#[derive(Debug)]
pub struct RequestHead {
    /// Method, URI, version and headers, ready for `http::Request`.
    pub parts: http::request::Parts,
    /// How the body is framed.
    pub framing: BodyFraming,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Why a head was refused; each maps to the status sent before closing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The head is longer than the limit (431).
    #[error("request head longer than {0} bytes")]
    TooLarge(usize),
    /// More headers than the limit (431).
    #[error("more than {0} headers")]
    TooManyHeaders(usize),
    /// The bytes are not an HTTP/1.x request head (400).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The framing of the body is ambiguous or invalid (400).
    #[error("refused framing: {0}")]
    Framing(&'static str),
    /// A transfer coding other than chunked (501).
    #[error("unsupported transfer coding")]
    UnsupportedCoding,
    /// An expectation other than 100-continue (417).
    #[error("unsupported expectation")]
    Expectation,
}

impl HeadError {
    /// The status the server answers with before closing.
    pub fn status(&self) -> StatusCode {
        match self {
            HeadError::TooLarge(_) | HeadError::TooManyHeaders(_) => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            HeadError::Malformed(_) | HeadError::Framing(_) => StatusCode::BAD_REQUEST,
            HeadError::UnsupportedCoding => StatusCode::NOT_IMPLEMENTED,
            HeadError::Expectation => StatusCode::EXPECTATION_FAILED,
        }
    }
}

/// Finds where a head ends, across reads, without rescanning: the offset
/// already searched is kept between calls.
#[derive(Debug, Default, Clone)]
pub struct HeadScanner {
    searched: usize,
}

impl HeadScanner {
    /// Drops empty lines before a request line (consumes them from `buf`),
    /// then looks for the blank line that ends the head. `Ok(Some(n))`: the
    /// head is `buf[..n]`; `Ok(None)`: not yet. A bare LF is an error at
    /// once, so a client that uses them gets its 400 now, not a timeout.
    pub fn scan(
        &mut self,
        buf: &mut BytesMut,
        max_head: usize,
    ) -> Result<Option<usize>, HeadError> {
        if self.searched == 0 {
            let blank = buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            // Only whole CRLF pairs are empty lines; a lone CR waits for its LF.
            let pairs = buf[..blank].chunks(2).take_while(|c| *c == b"\r\n").count();
            if pairs * 2 < blank && buf[pairs * 2] == b'\n' {
                return Err(HeadError::Malformed("bare LF line end"));
            }
            let _ = buf.split_to(pairs * 2);
            // A request line starts with a method token: anything else (a
            // TLS ClientHello on a plain port, binary junk) is refused on
            // its first byte rather than waited on until a timeout.
            if buf
                .first()
                .is_some_and(|&b| !is_token_byte(b) && b != b'\r')
            {
                return Err(HeadError::Malformed("not an HTTP request"));
            }
        }
        let from = self.searched;
        // Only the first `max_head` bytes are looked at, so the answer does
        // not depend on how the input was chunked (a bare LF past the limit
        // is not seen before the limit is).
        let limit = buf.len().min(max_head);
        for i in memchr::memchr_iter(b'\n', &buf[from.min(limit)..limit]).map(|i| i + from) {
            if i == 0 || buf[i - 1] != b'\r' {
                return Err(HeadError::Malformed("bare LF line end"));
            }
            if i >= 3 && &buf[i - 3..i] == b"\r\n\r" {
                self.searched = 0;
                return Ok(Some(i + 1));
            }
        }
        if buf.len() > max_head {
            return Err(HeadError::TooLarge(max_head));
        }
        // Keep the last three bytes in view: the end may straddle reads.
        self.searched = limit.saturating_sub(3).max(from);
        Ok(None)
    }

    /// Forgets progress (the buffer was taken away).
    pub fn reset(&mut self) {
        self.searched = 0;
    }
}

/// RFC 9110 `tchar`: what a method token is made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Most headers parsed on the stack; a larger `max_headers` uses the heap.
const STACK_HEADERS: usize = 128;

/// Parses and checks a complete head (`head` ends with the blank line).
pub fn parse_head(head: Bytes, max_headers: usize) -> Result<RequestHead, HeadError> {
    let mut stack =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = if max_headers <= STACK_HEADERS {
        &mut stack[..max_headers]
    } else {
        heap.resize_with(max_headers, std::mem::MaybeUninit::uninit);
        &mut heap[..]
    };
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(&head, slots) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HeadError::Malformed("incomplete head")),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders(max_headers)),
        Err(httparse::Error::Version) => {
            return Err(HeadError::Malformed("not HTTP/1.0 or HTTP/1.1"))
        }
        Err(httparse::Error::HeaderName) | Err(httparse::Error::HeaderValue)
            if head
                .windows(3)
                .any(|w| w == b"\n \r" || w[..2] == *b"\n " || w[..2] == *b"\n\t") =>
        {
            return Err(HeadError::Malformed("obs-fold header line"))
        }
        Err(_) => return Err(HeadError::Malformed("not an HTTP request head")),
    }
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| HeadError::Malformed("bad method"))?;
    let path = req.path.unwrap_or_default();
    let uri = if path.starts_with('/') {
        let start = path.as_ptr() as usize - head.as_ptr() as usize;
        Uri::from_maybe_shared(head.slice(start..start + path.len()))
    } else {
        path.parse::<Uri>()
    }
    .map_err(|_| HeadError::Malformed("bad request target"))?;
    let version = if req.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // One pass over the raw headers decides the framing, keep-alive, Host
    // and Expect (no hashing into the map for them); the map is built in
    // the same pass.
    let mut rules = HeadRules::new(version);
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        rules.see(h.name.as_bytes(), h.value)?;
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HeadError::Malformed("bad header name"))?;
        let start = h.value.as_ptr() as usize - head.as_ptr() as usize;
        let value = HeaderValue::from_maybe_shared(head.slice(start..start + h.value.len()))
            .map_err(|_| HeadError::Malformed("bad header value"))?;
        headers.append(name, value);
    }
    let framing = rules.framing()?;
    if version == Version::HTTP_11 && rules.hosts != 1 {
        return Err(HeadError::Malformed(
            "HTTP/1.1 needs exactly one Host header",
        ));
    }
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(RequestHead {
        parts,
        framing,
        keep_alive: rules.keep_alive,
        expect_continue: rules.expect_continue,
    })
}

/// What the framing-relevant headers said, gathered header by header.
struct HeadRules {
    version: Version,
    /// `Content-Length`, when seen (all its values must agree).
    length: Option<u64>,
    /// `Transfer-Encoding` was present.
    te_present: bool,
    /// Transfer codings listed, how many of them `chunked`, and whether the
    /// last one so far is `chunked`.
    te_codings: u32,
    te_chunked: u32,
    te_last_chunked: bool,
    hosts: u32,
    keep_alive: bool,
    connection_close: bool,
    expect_continue: bool,
}

impl HeadRules {
    fn new(version: Version) -> HeadRules {
        HeadRules {
            version,
            length: None,
            te_present: false,
            te_codings: 0,
            te_chunked: 0,
            te_last_chunked: false,
            hosts: 0,
            keep_alive: version == Version::HTTP_11,
            connection_close: false,
            expect_continue: false,
        }
    }

    fn see(&mut self, name: &[u8], value: &[u8]) -> Result<(), HeadError> {
        let tokens = || {
            value
                .split(|&b| b == b',')
                .map(|t| t.trim_ascii())
                .filter(|t| !t.is_empty())
        };
        if name.eq_ignore_ascii_case(b"content-length") {
            let mut any = false;
            for t in tokens() {
                any = true;
                if t.len() > 19 || !t.iter().all(u8::is_ascii_digit) {
                    return Err(HeadError::Framing("Content-Length is not a number"));
                }
                let n = t.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
                match self.length {
                    Some(l) if l != n => {
                        return Err(HeadError::Framing("different Content-Length values"))
                    }
                    _ => self.length = Some(n),
                }
            }
            if !any {
                return Err(HeadError::Framing("empty Content-Length"));
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.te_present = true;
            for t in tokens() {
                let chunked = t.eq_ignore_ascii_case(b"chunked");
                self.te_codings += 1;
                self.te_chunked += u32::from(chunked);
                self.te_last_chunked = chunked;
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            self.hosts += 1;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for t in tokens() {
                if t.eq_ignore_ascii_case(b"close") {
                    self.connection_close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                self.expect_continue = true;
            } else {
                return Err(HeadError::Expectation);
            }
        }
        if self.connection_close {
            self.keep_alive = false;
        }
        Ok(())
    }

    fn framing(&self) -> Result<BodyFraming, HeadError> {
        if self.te_present {
            if self.length.is_some() {
                return Err(HeadError::Framing(
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            if self.version == Version::HTTP_10 {
                return Err(HeadError::Framing(
                    "Transfer-Encoding in an HTTP/1.0 request",
                ));
            }
            if !self.te_last_chunked {
                return Err(HeadError::Framing(
                    "Transfer-Encoding does not end in chunked",
                ));
            }
            if self.te_chunked > 1 {
                return Err(HeadError::Framing("chunked applied twice"));
            }
            if self.te_codings > 1 {
                return Err(HeadError::UnsupportedCoding);
            }
            return Ok(BodyFraming::Chunked);
        }
        Ok(match self.length {
            None | Some(0) => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<RequestHead, HeadError> {
        let mut buf = BytesMut::from(text.as_bytes());
        let n = HeadScanner::default()
            .scan(&mut buf, 16 * 1024)?
            .expect("a whole head");
        parse_head(buf.split_to(n).freeze(), 100)
    }

    #[test]
    fn a_simple_get_parses_with_its_parts() {
        let h = head("GET /hello?x=1 HTTP/1.1\r\nHost: a\r\nX-Two: 2\r\n\r\n").unwrap();
        assert_eq!(h.parts.method, Method::GET);
        assert_eq!(h.parts.uri.path(), "/hello");
        assert_eq!(h.parts.uri.query(), Some("x=1"));
        assert_eq!(h.parts.headers["x-two"], "2");
        assert_eq!(h.framing, BodyFraming::None);
        assert!(h.keep_alive && !h.expect_continue);
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_connection_header() {
        assert!(!head("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(
            head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(
            !head("GET / HTTP/1.1\r\nHost: a\r\nConnection: x, close\r\n\r\n")
                .unwrap()
                .keep_alive
        );
    }

    #[test]
    fn body_framing_is_read_and_smuggling_shapes_are_refused() {
        let f = |extra: &str| {
            head(&format!("POST / HTTP/1.1\r\nHost: a\r\n{extra}\r\n")).map(|h| h.framing)
        };
        assert_eq!(f("Content-Length: 5\r\n"), Ok(BodyFraming::Length(5)));
        assert_eq!(
            f("Content-Length: 5, 5\r\nContent-Length: 5\r\n"),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            f("Transfer-Encoding: chunked\r\n"),
            Ok(BodyFraming::Chunked)
        );
        for bad in [
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "Content-Length: 5, 6\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: 0x5\r\n",
            "Content-Length: 99999999999999999999\r\n",
            "Transfer-Encoding: chunked, identity\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        ] {
            assert_eq!(
                f(bad).unwrap_err().status(),
                StatusCode::BAD_REQUEST,
                "{bad:?}"
            );
        }
        assert_eq!(
            f("Transfer-Encoding: gzip, chunked\r\n")
                .unwrap_err()
                .status(),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(
            head("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn bare_lf_obs_fold_host_and_expect_are_policed() {
        let err = |text: &str| head(text).unwrap_err();
        assert_eq!(
            err("GET / HTTP/1.1\nHost: a\n\n"),
            HeadError::Malformed("bare LF line end")
        );
        assert_eq!(
            err("GET / HTTP/1.1\r\nHost: a\n\r\n"),
            HeadError::Malformed("bare LF line end")
        );
        assert_eq!(
            err("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  folded\r\n\r\n"),
            HeadError::Malformed("obs-fold header line")
        );
        assert_eq!(
            err("GET / HTTP/1.1\r\n\r\n").status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n").status(),
            StatusCode::EXPECTATION_FAILED
        );
        assert!(
            head("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
                .unwrap()
                .expect_continue
        );
        assert_eq!(
            err("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err("\x16\x03\x01\x02\x00\x01\r\n\r\n").status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn the_answer_does_not_depend_on_the_chunking_past_the_limit() {
        // Found by the http_requests fuzz target: a bare LF past the size
        // limit gave 400 in one piece and 431 in small chunks.
        let mut text = b"GET / HTTP/1.1\r\nX: ".to_vec();
        text.resize(40, b'a');
        text.extend_from_slice(b"\n\r\n");
        let whole = HeadScanner::default().scan(&mut BytesMut::from(&text[..]), 32);
        let mut scanner = HeadScanner::default();
        let mut buf = BytesMut::new();
        let mut chunked = Ok(None);
        for b in &text {
            buf.extend_from_slice(&[*b]);
            chunked = scanner.scan(&mut buf, 32);
            if chunked != Ok(None) {
                break;
            }
        }
        assert_eq!(whole, Err(HeadError::TooLarge(32)));
        assert_eq!(chunked, whole);
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let h = head("\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(h.parts.uri.path(), "/x");
    }

    #[test]
    fn size_and_count_limits_answer_431() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nX: "[..]);
        buf.extend_from_slice(&[b'a'; 100]);
        assert_eq!(
            HeadScanner::default().scan(&mut buf, 64),
            Err(HeadError::TooLarge(64))
        );
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        let e = head(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")).unwrap_err();
        assert_eq!(e, HeadError::TooManyHeaders(100));
        assert_eq!(e.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    #[test]
    fn the_end_of_a_head_is_found_in_every_chunking() {
        let text = b"\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\nrest";
        crate::codec::testing::every_chunking(text, |chunks| {
            let mut scanner = HeadScanner::default();
            let mut buf = BytesMut::new();
            for c in chunks {
                buf.extend_from_slice(c);
                if let Some(n) = scanner.scan(&mut buf, 1024).unwrap() {
                    assert_eq!(&buf[..n], b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
                    return;
                }
            }
            panic!("never found the end");
        });
    }
}
