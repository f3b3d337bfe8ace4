//! # torsion-protocols
//!
//! Protocols that run on the torsion runtime.
//!
//! | module | what | Twisted |
//! |---|---|---|
//! | [`echo`] | [`Echo`]: writes back what it receives, honouring flow control | `twisted.protocols.wire.Echo` |
//!
//! This crate holds no `Mutex`, `RwLock` or atomics-as-locks: protocol state
//! lives on its shard.

pub mod codec;
pub mod echo;

pub use echo::{Echo, EchoFactory};
