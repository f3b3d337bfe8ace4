//! `torsion load http`'s side of the wire: the request it sends and how it
//! reads responses back. The echo engine (`echo.rs`) does the rest — open
//! or closed loop, pipelining, latency from the intended send time.
//!
//! Every response is parsed (`httparse` for the head; the body by its
//! `Content-Length` or chunked coding, with torsion's own `BodyReader`) and
//! checked: a status outside 2xx, a response without a length the client
//! can frame (a body delimited by closing the connection), or a malformed
//! one count as errors. 1xx interim responses are skipped.

use std::net::{SocketAddr, ToSocketAddrs};

use bytes::{Buf, Bytes, BytesMut};
use torsion_protocols::http::{BodyFraming, BodyReader};

/// The longest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The largest response body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A load target given as a URL: `http://HOST:PORT/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// The request target (path and query).
    pub path: String,
}

impl HttpTarget {
    /// Parses `http://host[:port][/path]` (port 80 when absent).
    pub fn parse(url: &str) -> Result<HttpTarget, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            if url.starts_with("https://") {
                format!("invalid --target \"{url}\": https is not supported yet (use http://)")
            } else {
                format!("invalid --target \"{url}\": expected http://HOST:PORT/PATH")
            }
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("invalid --target \"{url}\": no host"));
        }
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!(
                "invalid --target \"{url}\": the path has spaces or control characters"
            ));
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("invalid --target \"{url}\": {e}"))?
            .next()
            .ok_or_else(|| format!("invalid --target \"{url}\": resolves to no address"))?;
        Ok(HttpTarget {
            addr,
            host: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The bytes of one `GET` request for it.
    pub fn request(&self) -> Bytes {
        Bytes::from(format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.path, self.host
        ))
    }
}

/// Reads responses from a connection's input, one at a time.
#[derive(Debug, Default)]
pub struct HttpResponses {
    /// The status and body reader of the response being read.
    current: Option<(u16, BodyReader)>,
}

impl HttpResponses {
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
            let framing = framing(status, response.headers)?;
            buf.advance(n);
            if (100..200).contains(&status) {
                continue;
            }
            let reader = BodyReader::discarding(framing, MAX_BODY).map_err(|e| e.to_string())?;
            self.current = Some((status, reader));
        }
    }
}

fn framing(status: u16, headers: &[httparse::Header<'_>]) -> Result<BodyFraming, String> {
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(BodyFraming::None);
    }
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if let Some(te) = value("transfer-encoding") {
        return if te.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            Ok(BodyFraming::Chunked)
        } else {
            Err("a response body in a transfer coding other than chunked".into())
        };
    }
    match value("content-length") {
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|n| {
                if n == 0 {
                    BodyFraming::None
                } else {
                    BodyFraming::Length(n)
                }
            })
            .ok_or_else(|| "a response with a malformed Content-Length".into()),
        None => Err("a response without Content-Length or chunked coding".into()),
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
            t.request(),
            "GET /plaintext?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        );
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
            "https://127.0.0.1/",
            "http:///x",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1/a b",
        ] {
            assert!(HttpTarget::parse(bad).is_err(), "{bad}");
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
}
