//! `torsion load http`'s side of the wire: the URLs it loads, the request
//! it sends (method, headers, body) and how it reads responses back. The
//! echo engine (`echo.rs`) does the rest — open or closed loop, pipelining,
//! latency from the intended send time.
//!
//! Every response is parsed (`httparse` for the head; the body by its
//! `Content-Length` or chunked coding, with torsion's own `BodyReader`) and
//! its status counted by class; a status `--accept` does not list (default
//! `2xx`) is an error. A response without a length the client can frame (a
//! body delimited by closing the connection) or a malformed one is an error
//! that ends the connection's load (its cause goes to the log). 1xx
//! interim responses are skipped.

use std::net::{SocketAddr, ToSocketAddrs};

use bytes::{Buf, Bytes, BytesMut};
use torsion_protocols::http::client::response_framing;
use torsion_protocols::http::BodyReader;

/// The longest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The largest response body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A load target given as a URL: `http[s]://HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Where to connect (the host name resolved when the URL is parsed).
    pub addr: SocketAddr,
    /// The `Host` header: the URL's authority.
    pub host: String,
    /// The request target (path and query).
    pub path: String,
    /// `https://`: TLS, the certificate checked against [`Self::server_name`].
    pub https: bool,
    /// The host without port or brackets (TLS's server name).
    pub server_name: String,
}

impl HttpTarget {
    /// Parses `http[s]://host[:port][/path]` (port 80 or 443 when absent);
    /// a host name is resolved now (the first address).
    pub fn parse(url: &str) -> Result<HttpTarget, String> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!(
                "invalid URL \"{url}\": expected http://HOST:PORT/PATH or https://…"
            ));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        if authority.is_empty() {
            return Err(format!("invalid URL \"{url}\": no host"));
        }
        if authority.contains('@') {
            return Err(format!(
                "invalid URL \"{url}\": user:password@ is not supported (send -H 'Authorization: …')"
            ));
        }
        if path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b >= 0x80)
        {
            return Err(format!(
                "invalid URL \"{url}\": the path has spaces, control or non-ASCII characters (percent-encode them)"
            ));
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'));
        let with_port = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:{}", if https { 443 } else { 80 })
        };
        let server_name = with_port
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("invalid URL \"{url}\": {e}"))?
            .next()
            .ok_or_else(|| format!("invalid URL \"{url}\": resolves to no address"))?;
        Ok(HttpTarget {
            addr,
            host: authority.to_owned(),
            path,
            https,
            server_name,
        })
    }

    /// The bytes of one request for it.
    pub fn request(&self, spec: &RequestSpec) -> Bytes {
        let mut out = format!("{} {} HTTP/1.1\r\n", spec.method, self.path);
        if !spec.has_header("host") {
            out.push_str(&format!("Host: {}\r\n", self.host));
        }
        for (name, value) in &spec.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if !spec.body.is_empty() || matches!(spec.method.as_str(), "POST" | "PUT" | "PATCH") {
            out.push_str(&format!("Content-Length: {}\r\n", spec.body.len()));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&spec.body);
        Bytes::from(bytes)
    }
}

/// What every request carries besides its URL: `--method`, `-H`,
/// `--body`/`--body-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// The method, upper case (`GET` by default).
    pub method: String,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty: none).
    pub body: Bytes,
}

impl Default for RequestSpec {
    fn default() -> Self {
        RequestSpec {
            method: "GET".into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }
}

impl RequestSpec {
    /// Checks and builds the spec: a method of token characters, headers
    /// written `Name: value`, no `Content-Length`/`Transfer-Encoding` of
    /// the user's (the body sets the length).
    pub fn new(method: &str, headers: &[String], body: Bytes) -> Result<RequestSpec, String> {
        if method.is_empty() || !method.bytes().all(is_token) {
            return Err(format!(
                "invalid --method \"{method}\" (expected a token such as GET, POST, PUT)"
            ));
        }
        let mut parsed = Vec::with_capacity(headers.len());
        for h in headers {
            let Some((name, value)) = h.split_once(':') else {
                return Err(format!(
                    "invalid header \"{h}\": expected 'Name: value' (no colon)"
                ));
            };
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() || !name.bytes().all(is_token) {
                return Err(format!("invalid header name \"{name}\" in \"{h}\""));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(format!(
                    "invalid header \"{h}\": the value has CR, LF or NUL"
                ));
            }
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                return Err(format!(
                    "header \"{name}\" is set by torsion from the body (--body, --body-file)"
                ));
            }
            parsed.push((name.to_owned(), value.to_owned()));
        }
        Ok(RequestSpec {
            method: method.to_ascii_uppercase(),
            headers: parsed,
            body,
        })
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// RFC 9110's token characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What `load http` sends and accepts.
#[derive(Debug, Clone)]
pub struct HttpLoad {
    /// Each target's request, in target order.
    pub requests: Vec<Bytes>,
    /// Which statuses are answers.
    pub accept: Accept,
    /// The method is `HEAD`: responses have no body whatever they say.
    pub head_request: bool,
}

/// Which statuses are answers, not errors (`--accept 2xx,3xx,404`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// Whole classes accepted: index 1 for 1xx … 5 for 5xx.
    classes: [bool; 6],
    /// Single statuses accepted.
    codes: Vec<u16>,
}

impl Default for Accept {
    /// `2xx`.
    fn default() -> Self {
        Accept {
            classes: [false, false, true, false, false, false],
            codes: Vec::new(),
        }
    }
}

impl Accept {
    /// Parses a comma-separated list of classes (`2xx`) and statuses
    /// (`404`).
    pub fn parse(text: &str) -> Result<Accept, String> {
        let mut accept = Accept {
            classes: [false; 6],
            codes: Vec::new(),
        };
        for item in text.split(',').map(str::trim) {
            let bad = || format!("invalid --accept entry \"{item}\" (expected e.g. 2xx,3xx,404)");
            let b = item.as_bytes();
            if b.len() == 3 && b[1..].eq_ignore_ascii_case(b"xx") && (b'1'..=b'5').contains(&b[0]) {
                accept.classes[(b[0] - b'0') as usize] = true;
            } else {
                match item.parse::<u16>() {
                    Ok(code) if (100..600).contains(&code) => accept.codes.push(code),
                    _ => return Err(bad()),
                }
            }
        }
        Ok(accept)
    }

    /// Whether `status` is an answer.
    pub fn accepts(&self, status: u16) -> bool {
        let class = (status / 100) as usize;
        (class < 6 && self.classes[class]) || self.codes.contains(&status)
    }
}

/// Reads responses from a connection's input, one at a time.
#[derive(Debug, Default)]
pub struct HttpResponses {
    /// The status and body reader of the response being read.
    current: Option<(u16, BodyReader)>,
    /// The requests are `HEAD`s: no response has a body.
    head_request: bool,
}

impl HttpResponses {
    /// A reader of the responses to `load`'s requests.
    pub fn new(load: &HttpLoad) -> HttpResponses {
        HttpResponses {
            current: None,
            head_request: load.head_request,
        }
    }

    /// Forgets a response in progress (its connection is gone).
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// The next complete response's status, `Ok(None)` if more input is
    /// needed, `Err` when the input is not a response this client can read.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<u16>, String> {
        loop {
            if let Some((status, reader)) = &mut self.current {
                return match reader.read(buf) {
                    Ok(true) => {
                        let status = *status;
                        self.current = None;
                        Ok(Some(status))
                    }
                    Ok(false) => Ok(None),
                    Err(e) => Err(e.to_string()),
                };
            }
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            let n = match response.parse(buf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                    return Err(format!("a response head longer than {MAX_HEAD} bytes"))
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(format!("a malformed response: {e}")),
            };
            let status = response.code.unwrap_or(0);
            let framing = response_framing(status, self.head_request, response.headers)?
                .ok_or("a response without Content-Length or chunked coding")?;
            buf.advance(n);
            if (100..200).contains(&status) {
                continue;
            }
            let reader = BodyReader::discarding(framing, MAX_BODY).map_err(|e| e.to_string())?;
            self.current = Some((status, reader));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use torsion_protocols::codec::testing::every_chunking;

    #[test]
    fn targets_parse_and_bad_ones_are_refused() {
        let t = HttpTarget::parse("http://127.0.0.1:8080/plaintext?x=1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "/plaintext?x=1")
        );
        assert_eq!(
            t.request(&RequestSpec::default()),
            "GET /plaintext?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        );
        let s = HttpTarget::parse("https://localhost/").unwrap();
        assert!(s.https);
        assert_eq!(s.addr.port(), 443);
        assert_eq!(s.server_name, "localhost");
        assert!(s.addr.ip().is_loopback());
        assert_eq!(
            HttpTarget::parse("http://127.0.0.1").unwrap().addr.port(),
            80
        );
        assert_eq!(
            HttpTarget::parse("http://[::1]:81/").unwrap().addr,
            "[::1]:81".parse().unwrap()
        );
        for bad in [
            "127.0.0.1:80",
            "ftp://127.0.0.1/",
            "http://user:pw@127.0.0.1/",
            "http:///x",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1/a b",
        ] {
            assert!(HttpTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_carry_method_headers_and_body() {
        let t = HttpTarget::parse("http://[::1]:81/api").unwrap();
        assert_eq!(t.server_name, "::1");
        let spec = RequestSpec::new(
            "post",
            &["X-Trace: 1".into(), "Host: example.test".into()],
            Bytes::from_static(b"{}"),
        )
        .unwrap();
        assert_eq!(
            t.request(&spec),
            "POST /api HTTP/1.1\r\nX-Trace: 1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\n{}"
        );
        let put = RequestSpec::new("PUT", &[], Bytes::new()).unwrap();
        assert!(String::from_utf8_lossy(&t.request(&put)).contains("Content-Length: 0\r\n"));
        for (method, headers, why) in [
            ("GE T", vec![], "--method"),
            ("GET", vec!["NoColon".to_string()], "no colon"),
            ("GET", vec!["Bad Name: x".to_string()], "header name"),
            (
                "GET",
                vec!["Content-Length: 5".to_string()],
                "set by torsion",
            ),
        ] {
            let err = RequestSpec::new(method, &headers, Bytes::new()).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn accept_lists_classes_and_statuses() {
        let default = Accept::default();
        assert!(default.accepts(204) && !default.accepts(301) && !default.accepts(503));
        let a = Accept::parse("2xx,3XX,404").unwrap();
        assert!(a.accepts(200) && a.accepts(302) && a.accepts(404) && !a.accepts(403));
        for bad in ["6xx", "2x", "abc", "99", ""] {
            assert!(Accept::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_are_read_in_every_chunking() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\n\
                     HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
                     HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
                     HTTP/1.1 204 No Content\r\n\r\n";
        every_chunking(wire, |chunks| {
            let mut r = HttpResponses::default();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for c in chunks {
                buf.extend_from_slice(c);
                while let Some(status) = r.decode(&mut buf).unwrap() {
                    got.push(status);
                }
            }
            assert_eq!(got, [200, 404, 204]);
            assert!(buf.is_empty());
        });
    }

    #[test]
    fn responses_this_client_cannot_frame_are_errors() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\n\r\nbody until close"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(bad);
            assert!(
                HttpResponses::default().decode(&mut buf).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn responses_to_head_requests_have_no_body_whatever_their_length_says() {
        let load = HttpLoad {
            requests: vec![],
            accept: Accept::default(),
            head_request: true,
        };
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n";
        let mut buf = BytesMut::from(&input[..]);
        let mut responses = HttpResponses::new(&load);
        assert_eq!(responses.decode(&mut buf), Ok(Some(200)));
        assert_eq!(responses.decode(&mut buf), Ok(Some(200)));
        assert!(buf.is_empty());
    }
}
