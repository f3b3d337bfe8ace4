//! Why a server could not start or did not stop cleanly.

use crate::net::endpoint::EndpointError;
use crate::shard::cores::CoreError;

/// Any error, as a [`ServerError`]'s source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl ServerError {
    pub(crate) fn shard_start(
        shard: usize,
        what: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        ServerError::ShardStart {
            shard,
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

/// Why a server could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// No endpoint was given to the builder.
    #[error("no endpoint to listen on")]
    NoEndpoint,
    /// The endpoint string is malformed.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The shard/core plan is impossible.
    #[error(transparent)]
    Cores(#[from] CoreError),
    /// A listening socket could not be made (the OS error is the
    /// [`source`](std::error::Error::source): print the chain, as
    /// `anyhow`'s `{:#}` does).
    #[error("cannot listen on {endpoint}")]
    Bind {
        /// The endpoint.
        endpoint: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A shard failed to start (its thread, executor, or factory); the
    /// underlying error, when there is one, is the
    /// [`source`](std::error::Error::source).
    #[error("shard {shard} failed to start: {what}")]
    ShardStart {
        /// The shard id.
        shard: usize,
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: Option<BoxError>,
    },
    /// The endpoint does not fit the service (a `udp:` endpoint for a
    /// stream protocol, or the other way round).
    #[error("{endpoint}: {problem}")]
    WrongEndpoint {
        /// The endpoint.
        endpoint: String,
        /// What does not fit.
        problem: &'static str,
    },
    /// The cross-shard bus could not be made.
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
    /// The TLS certificate or key could not be used.
    #[error(transparent)]
    #[cfg(feature = "tls")]
    Tls(#[from] crate::net::tls::TlsError),
    /// A shard thread died (a panic outside any guarded callback).
    #[error("shard {shard} thread panicked: {message}")]
    ShardPanicked {
        /// The shard id.
        shard: usize,
        /// The panic message.
        message: String,
    },
}
