//! [`ClientError`]: every way an HTTP client request fails, each a
//! sentence naming the server and the phase it failed in.

use std::io;
use std::time::Duration;

/// The phase a request timed out in (see [`super::ClientConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Resolving the name, connecting and the TLS handshake.
    Connect,
    /// From the start of sending the request to the first byte of the
    /// response.
    FirstByte,
    /// The whole request, from its start to the response body's end.
    Whole,
}

impl std::fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connecting",
            TimeoutPhase::FirstByte => "waiting for the first byte of the response",
            TimeoutPhase::Whole => "the whole request",
        })
    }
}

/// Why an HTTP client request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL cannot be requested (not absolute, no host, bad port…).
    #[error("invalid URL \"{url}\": {why}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A header name or value that HTTP does not allow.
    #[error("invalid header {0}")]
    InvalidHeader(String),
    /// Resolving, connecting or the TLS handshake failed (a name that does
    /// not resolve, a refused connection, a certificate that does not
    /// verify).
    #[error("cannot connect to {origin}: {source}")]
    Connect {
        /// `scheme://host:port`.
        origin: String,
        /// The cause.
        source: io::Error,
    },
    /// A phase took longer than its timeout.
    #[error("{origin}: timed out after {after:?} {phase}")]
    Timeout {
        /// `scheme://host:port`.
        origin: String,
        /// Which timeout.
        phase: TimeoutPhase,
        /// The timeout.
        after: Duration,
    },
    /// The request could not be written (the connection closed).
    #[error("{origin}: the request could not be sent: the connection closed")]
    Send {
        /// `scheme://host:port`.
        origin: String,
    },
    /// The server closed the connection before the response was complete.
    #[error("{origin}: the server closed the connection {when}")]
    Closed {
        /// `scheme://host:port`.
        origin: String,
        /// "before the response head", "in the middle of the response body".
        when: &'static str,
    },
    /// The response is not HTTP/1.x this client can read: a malformed head,
    /// a broken chunked body, a bad `Content-Length`.
    #[error("{origin}: malformed response: {why}")]
    Malformed {
        /// `scheme://host:port`.
        origin: String,
        /// What is wrong.
        why: String,
    },
    /// A body read whole was larger than the limit given.
    #[error("{origin}: response body larger than {limit} bytes")]
    BodyTooLarge {
        /// `scheme://host:port`.
        origin: String,
        /// The limit.
        limit: usize,
    },
}

impl ClientError {
    /// The whole request's timeout passed (`deadline`: when, and how long
    /// the request was given).
    pub(crate) fn whole_timeout(
        origin: &impl std::fmt::Display,
        deadline: Option<(std::time::Instant, Duration)>,
    ) -> ClientError {
        ClientError::Timeout {
            origin: origin.to_string(),
            phase: TimeoutPhase::Whole,
            after: deadline.map_or(Duration::ZERO, |(_, d)| d),
        }
    }

    /// Whether the error is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout { .. })
    }

    /// Whether the request failed before the server could have seen it
    /// (resolving or connecting): safe to try elsewhere.
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Timeout {
                    phase: TimeoutPhase::Connect,
                    ..
                }
        )
    }
}
