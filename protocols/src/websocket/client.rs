//! [`connect`]: a WebSocket client from a shard — `ws://` or `wss://`, the
//! host name resolved off the shard, the handshake checked.

use bytes::Buf;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use torsion::{ClientEndpoint, ClientTls};

use super::close_code::CloseCode;
use super::error::WsError;
use super::frame::Role;
use super::handshake::{check_answer, client_key, client_request};
use super::socket::{WebSocket, WsConfig};

fn failed(why: impl Into<String>) -> WsError {
    WsError::new(CloseCode::ABNORMAL, why)
}

/// A `ws://` or `wss://` URL's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WsUrl {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Result<WsUrl, WsError> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("ws://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("wss://") {
        (true, r)
    } else {
        return Err(failed(format!("\"{url}\" is not a ws:// or wss:// URL")));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let default_port = if tls { 443 } else { 80 };
    let bad_port = |p: &str| failed(format!("\"{p}\" in \"{url}\" is not a port"));
    let (host, port) = if let Some(inside) = authority.strip_prefix('[') {
        // [IPv6]:port or [IPv6]
        let (host, after) = inside
            .split_once(']')
            .ok_or_else(|| failed(format!("\"{url}\" has an unclosed [")))?;
        match after.strip_prefix(':') {
            Some(p) => (host, p.parse().map_err(|_| bad_port(p))?),
            None if after.is_empty() => (host, default_port),
            None => return Err(failed(format!("\"{url}\" has text after its ]"))),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad_port(p))?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() {
        return Err(failed(format!("\"{url}\" has no host")));
    }
    Ok(WsUrl {
        tls,
        host: host.to_owned(),
        port,
        path: path.to_owned(),
    })
}

/// Opens a WebSocket to `url` (`ws://host:port/path`, or `wss://` over
/// TLS with the platform's roots): connects (the name resolved off the
/// shard), sends the handshake with a fresh key (and `config`'s
/// subprotocols and `permessage-deflate` offer), and checks the answer.
/// Every failure is a [`WsError`] (code 1006) that says what failed.
pub async fn connect(url: &str, config: &WsConfig) -> Result<WebSocket, WsError> {
    let url = parse_url(url)?;
    let endpoint = ClientEndpoint {
        host: url.host.clone(),
        port: url.port,
        timeout: config.handshake_timeout,
        tls: url.tls.then(|| ClientTls {
            ca_certs: None,
            server_name: url.host.clone(),
        }),
    };
    let mut conn = torsion::client::connect(&endpoint)
        .await
        .map_err(|e| failed(format!("cannot connect to {}:{}: {e}", url.host, url.port)))?;
    let key = client_key();
    // The Host header: an IPv6 address in brackets, the port unless default.
    let name = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let host = if (url.port == 80 && !url.tls) || (url.port == 443 && url.tls) {
        name
    } else {
        format!("{name}:{}", url.port)
    };
    let request = client_request(&host, &url.path, &key, &config.protocols, config.deflate);
    conn.write(&request)
        .await
        .map_err(|e| failed(format!("cannot send the handshake: {e}")))?;
    let clock = conn.clock();
    let max_head = config.max_head;
    let read = conn.read_with(|buf, at_end| {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let status = StatusCode::from_u16(response.code.unwrap_or(0))
                    .map_err(|_| "a status code out of range".to_string())?;
                let mut map = HeaderMap::new();
                for h in response.headers.iter() {
                    let name =
                        HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| e.to_string())?;
                    let value = HeaderValue::from_bytes(h.value).map_err(|e| e.to_string())?;
                    map.append(name, value);
                }
                buf.advance(n);
                Ok(Some((status, map)))
            }
            Ok(httparse::Status::Partial) if buf.len() > max_head => {
                Err(format!("a response head of over {max_head} bytes"))
            }
            Ok(httparse::Status::Partial) if at_end => {
                Err("the server closed during the handshake".into())
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Err(e) => Err(format!("a response that is not HTTP: {e}")),
        }
    });
    let answer = futures_lite::future::or(async { Some(read.await) }, async {
        clock.sleep(config.handshake_timeout).await;
        None
    })
    .await;
    let (status, headers) = match answer {
        None => {
            return Err(failed(format!(
                "no answer to the handshake within {:?}",
                config.handshake_timeout
            )))
        }
        Some(None) => return Err(failed("the server closed during the handshake")),
        Some(Some(Err(why))) => return Err(failed(why)),
        Some(Some(Ok(answer))) => answer,
    };
    let (protocol, deflate) =
        check_answer(status, &headers, &key, &config.protocols).map_err(failed)?;
    if deflate.is_some() && !config.deflate {
        return Err(failed(
            "the server turned on permessage-deflate, which was not offered",
        ));
    }
    Ok(WebSocket::new(
        conn,
        Role::Client,
        config,
        protocol,
        deflate,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_or_refused_in_words() {
        let u = parse_url("ws://localhost:8080/chat?room=1").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (false, "localhost", 8080, "/chat?room=1")
        );
        let u = parse_url("wss://example.test").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/"));
        let u = parse_url("ws://[::1]:9000/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        let u = parse_url("ws://[::1]/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 80, "/x")
        );
        for bad in [
            "http://x/",
            "ws://",
            "ws://host:port/",
            "ws://:80/",
            "ws://[::1/",
            "ws://[::1]x/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
