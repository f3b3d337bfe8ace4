//! [`ClientResponse`]: a response's status and headers, and its body
//! ([`ResponseBody`]) streamed from the connection as the caller asks for
//! it — under flow control: while nobody asks, the connection stops reading
//! and the server is held back by TCP.
//!
//! When the body ends, a keep-alive connection goes back to the pool;
//! dropping a response before its body ends closes the connection (what is
//! left of the body is not worth reading).

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, Version};
use torsion::Clock;

use super::deadline;
use super::error::ClientError;
use super::pool::PooledConnection;
use crate::http::BodyReader;

/// Whether a connection's end, if it has ended, was the clean kind (the
/// peer's FIN), not a reset, an abort or a timeout.
fn ended_cleanly(reason: Option<torsion::DisconnectReason>) -> bool {
    matches!(reason, None | Some(torsion::DisconnectReason::Closed))
}

/// How the rest of the body is framed.
enum BodyState {
    /// `Content-Length` or chunked.
    Framed(BodyReader),
    /// Until the server closes.
    UntilClose,
    /// Read to its end.
    Done,
}

/// A response's body, read chunk by chunk with [`ResponseBody::chunk`] or
/// whole with [`ResponseBody::bytes`].
pub struct ResponseBody {
    lease: Option<PooledConnection>,
    state: BodyState,
    keep_alive: bool,
    origin: Rc<str>,
    clock: Clock,
    /// The whole request's deadline, with its length for the error.
    deadline: Option<(Instant, Duration)>,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("origin", &self.origin)
            .field("done", &matches!(self.state, BodyState::Done))
            .finish()
    }
}

impl ResponseBody {
    pub(crate) fn new(
        lease: PooledConnection,
        framing: Option<crate::http::BodyFraming>,
        keep_alive: bool,
        origin: Rc<str>,
        clock: Clock,
        deadline: Option<(Instant, Duration)>,
    ) -> ResponseBody {
        let state = match framing {
            Some(f) => BodyState::Framed(BodyReader::streaming(f)),
            None => BodyState::UntilClose,
        };
        let mut body = ResponseBody {
            lease: Some(lease),
            state,
            keep_alive,
            origin,
            clock,
            deadline,
        };
        if let BodyState::Framed(reader) = &mut body.state {
            // A body with no bytes (HEAD, 204, `Content-Length: 0`) is
            // done at once and its connection back in the pool.
            if let Ok(true) = reader.read(&mut BytesMut::new()) {
                body.end();
            }
        }
        body
    }

    /// Whether the body has been read to its end.
    pub fn is_done(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    /// The next piece of the body as it arrived, `Ok(None)` at its end. A
    /// server that closes mid-body, a broken chunked coding or the whole
    /// request's timeout is an error (and the connection is closed).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        if self.is_done() {
            return Ok(None);
        }
        let origin = self.origin.clone();
        let closed = || ClientError::Closed {
            origin: origin.to_string(),
            when: "in the middle of the response body",
        };
        let Some(conn) = self.lease.as_mut().and_then(PooledConnection::connection) else {
            return Err(closed());
        };
        let state = &mut self.state;
        let read = conn.read_with(|buf, at_end| match state {
            BodyState::Framed(reader) => {
                let done = reader.read(buf).map_err(|e| ClientError::Malformed {
                    origin: origin.to_string(),
                    why: e.to_string(),
                })?;
                let piece = reader.take();
                if done || !piece.is_empty() {
                    Ok(Some((piece, done)))
                } else if at_end {
                    Err(closed())
                } else {
                    Ok(None)
                }
            }
            BodyState::UntilClose => Ok((!buf.is_empty()).then(|| (buf.split().freeze(), false))),
            BodyState::Done => Ok(Some((Bytes::new(), true))),
        });
        let deadline = self.deadline.map(|(at, _)| at);
        let outcome = deadline::before(&self.clock, deadline, read).await;
        let result = match outcome {
            None => Err(ClientError::whole_timeout(&self.origin, self.deadline)),
            // Delimited by the close: a clean one (the peer's FIN) ends
            // it; a reset or an abort cut it short.
            Some(None)
                if matches!(self.state, BodyState::UntilClose)
                    && ended_cleanly(
                        self.lease
                            .as_mut()
                            .and_then(PooledConnection::connection)
                            .and_then(|c| c.lost_reason()),
                    ) =>
            {
                self.keep_alive = false;
                self.end();
                return Ok(None);
            }
            Some(None) => Err(closed()),
            Some(Some(Err(e))) => Err(e),
            Some(Some(Ok((piece, done)))) => {
                if done {
                    self.end();
                }
                if piece.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(piece));
            }
        };
        // A failed body leaves the connection in an unknown state.
        self.state = BodyState::Done;
        self.lease = None;
        result
    }

    /// The rest of the body, at most `limit` bytes (more is
    /// [`ClientError::BodyTooLarge`]).
    pub async fn bytes(&mut self, limit: usize) -> Result<Bytes, ClientError> {
        let mut whole = BytesMut::new();
        let mut first: Option<Bytes> = None;
        while let Some(piece) = self.chunk().await? {
            let len = first.as_ref().map_or(0, Bytes::len) + whole.len() + piece.len();
            if len > limit {
                self.state = BodyState::Done;
                self.lease = None;
                return Err(ClientError::BodyTooLarge {
                    origin: self.origin.to_string(),
                    limit,
                });
            }
            match &first {
                None if whole.is_empty() => first = Some(piece),
                _ => {
                    if let Some(f) = first.take() {
                        whole.extend_from_slice(&f);
                    }
                    whole.extend_from_slice(&piece);
                }
            }
        }
        Ok(first.unwrap_or_else(|| whole.freeze()))
    }

    /// Ends the body: the connection goes back to the pool when it can
    /// carry another request.
    fn end(&mut self) {
        self.state = BodyState::Done;
        if let Some(mut lease) = self.lease.take() {
            let clean = lease.connection().is_some_and(|c| c.buffered_input() == 0);
            lease.finish(self.keep_alive && clean);
        }
    }
}

/// A response: status, version, headers and the body still to read.
#[derive(Debug)]
pub struct ClientResponse {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: ResponseBody,
    limit: usize,
}

impl ClientResponse {
    pub(crate) fn new(
        status: StatusCode,
        version: Version,
        headers: HeaderMap,
        body: ResponseBody,
        limit: usize,
    ) -> ClientResponse {
        ClientResponse {
            status,
            version,
            headers,
            body,
            limit,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version the server answered with.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body, to stream with [`ResponseBody::chunk`].
    pub fn body_mut(&mut self) -> &mut ResponseBody {
        &mut self.body
    }

    /// The body alone.
    pub fn into_body(self) -> ResponseBody {
        self.body
    }

    /// The whole body, at most the client's `max_body` bytes
    /// ([`super::ClientConfig::max_body`]).
    pub async fn bytes(mut self) -> Result<Bytes, ClientError> {
        self.body.bytes(self.limit).await
    }

    /// The whole body as UTF-8 text (invalid UTF-8 is an error).
    pub async fn text(self) -> Result<String, ClientError> {
        let origin = self.body.origin.clone();
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.to_vec()).map_err(|e| ClientError::Malformed {
            origin: origin.to_string(),
            why: format!("the body is not UTF-8 ({e})"),
        })
    }
}
