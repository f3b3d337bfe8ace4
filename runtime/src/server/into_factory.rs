//! What a server's per-shard constructor may return: a factory, or a
//! `Result` of one when building it can fail on a shard (attaching to a
//! bus, opening a file). One [`ServerBuilder::serve`] takes both, so a
//! server with a bus starts the same way as one without.
//!
//! [`ServerBuilder::serve`]: crate::ServerBuilder::serve

use crate::connection::protocol::Factory;

use super::error::BoxError;

/// A [`Factory`], or a `Result` of one: what the constructor given to
/// [`ServerBuilder::serve`](crate::ServerBuilder::serve) returns on each
/// shard. An `Err` fails the server's start, naming the shard.
pub trait IntoFactory {
    /// The factory built.
    type Factory: Factory;

    /// The factory, or why the shard cannot have one.
    fn into_factory(self) -> Result<Self::Factory, BoxError>;
}

impl<F: Factory> IntoFactory for F {
    type Factory = F;

    fn into_factory(self) -> Result<F, BoxError> {
        Ok(self)
    }
}

impl<F: Factory, E: Into<BoxError>> IntoFactory for Result<F, E> {
    type Factory = F;

    fn into_factory(self) -> Result<F, BoxError> {
        self.map_err(Into::into)
    }
}
