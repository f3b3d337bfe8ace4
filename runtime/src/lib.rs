//! # torsion
//!
//! Twisted's programming model — reactor, protocol, factory, transport,
//! deferred work — as a **thread-per-core sharded runtime** on glommio.
//! Each shard is one OS thread running one glommio `LocalExecutor` pinned to
//! one core, with its own `SO_REUSEPORT` listener. Protocol state lives on
//! one shard and is never locked.
//!
//! ## Map of the crate
//!
//! (`ARCHITECTURE.md` at the repository root shows how these fit together:
//! the path of one request, where each decision lives, the invariants.)
//!
//! | module | what it holds | Twisted |
//! |---|---|---|
//! | [`server`] | [`ServerBuilder`], [`ServerHandle`]: start shards, stats, shutdown | `reactor.run()`, `listenTCP` |
//! | [`policy`] | [`Policies`]: idle timeout, connection caps, read throttling | `policies.TimeoutMixin`, `LimitTotalConnectionsFactory`, `ThrottlingFactory` |
//! | [`pinned`] | [`pinned::run_on_cores`]: async work on pinned executors that are not servers (the load generator's engine) | — |
//! | [`protocol`] | [`Protocol`], [`Factory`], [`FnFactory`] | `Protocol`, `Factory` |
//! | [`tls`] | rustls termination for `tls:`/`ssl:` endpoints; client configs | `listenSSL`, `ssl:` endpoints |
//! | [`transport`] | [`Transport`]: write, close, abort, flow control | `ITransport` |
//! | [`reason`] | [`DisconnectReason`]: why a connection ended | `ConnectionDone`, `ConnectionLost` |
//! | [`blocking`] | [`BlockingPool`], [`defer_to_thread`]: blocking work on plain threads, awaited on the shard | `deferToThread` |
//! | [`bus`] | [`Bus`], [`BusHandle`], [`ManualBus`]: typed messages between shards | — (Twisted has one thread) |
//! | [`client`] | [`client::connect_tcp`], [`client::ReconnectingClient`], [`client::Backoff`] | `connectTCP`, `ReconnectingClientFactory` |
//! | [`clock`] | [`Clock`], [`DelayedCall`], [`LoopingCall`], [`ManualClock`] | `callLater`, `LoopingCall`, `task.Clock` |
//! | [`datagram`] | [`DatagramProtocol`], [`DatagramTransport`]: UDP per shard | `listenUDP`, `DatagramProtocol` |
//! | [`endpoint`] | [`Endpoint`] (`tcp:`, `tcp6:`, `tls:`, `udp:`), [`ClientEndpoint`] | `serverFromString`, `clientFromString` |
//! | [`cores`] | which cores the shards run on | — |
//! | [`shard`] | [`ShardInfo`], [`shard::current`]: where code runs | — |
//! | [`stats`] | per-shard counters | — |
//! | [`testing`] | [`testing::ProtocolHarness`], [`testing::ConnectedPair`]: protocols without sockets | `StringTransport`, `iosim` |
//! | [`task`] | [`spawn_local`] → [`JoinHandle`] (dropping cancels); what every handle does when dropped | `Deferred`, `inlineCallbacks` |
//!
//! Crate-private pieces: `connection` (the socket pump: batching and flow
//! control), `bind` (the shards' `SO_REUSEPORT` sockets and the port probe),
//! `listener` (accept loop, admission and its back-off),
//! `shard_runtime` (per-shard registry, shutdown), `doorbell` (waking a parked
//! shard from another thread), `local_event`, `pacer` (loops around an
//! operation that keeps failing: pause, never spin).
//!
//! ## Example
//!
//! ```no_run
//! use bytes::BytesMut;
//! use torsion::{FnFactory, Protocol, Server, Transport};
//!
//! struct Echo;
//! impl Protocol for Echo {
//!     fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
//!         let _ = t.write_bytes(data.split().freeze());
//!     }
//! }
//!
//! let server = Server::builder()
//!     .listen_on("tcp:0:interface=127.0.0.1")?
//!     .serve(|_shard| FnFactory(|_peer| Some(Echo)))?;
//! println!("listening on {}", server.local_addr());
//! server.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bind;
pub mod blocking;
pub mod bus;
pub mod client;
pub mod clock;
mod connection;
pub mod cores;
pub mod datagram;
mod doorbell;
pub mod endpoint;
mod listener;
mod local_event;
mod pacer;
pub mod pinned;
pub mod policy;
pub mod protocol;
pub mod reason;
pub mod server;
pub mod shard;
mod shard_runtime;
mod sockopt;
pub mod stats;
pub mod task;
pub mod testing;
pub mod tls;
pub mod transport;

pub use blocking::{defer_to_thread, BlockingError, BlockingPool};
pub use bus::{Bus, BusError, BusHandle, ManualBus};
pub use clock::{Clock, ClockError, DelayedCall, LoopingCall, ManualClock, Sleep};
pub use datagram::{DatagramError, DatagramProtocol, DatagramTransport};
pub use endpoint::{ClientEndpoint, ClientEndpointError, Endpoint, EndpointError};
pub use listener::ACCEPT_BACKOFF;
pub use policy::Policies;
pub use protocol::{Factory, FnFactory, Protocol};
pub use reason::DisconnectReason;
pub use server::{
    BoxError, Server, ServerBuilder, ServerError, ServerHandle, ShutdownTrigger, StatsReader,
};
pub use shard::ShardInfo;
pub use stats::ShardStatsSnapshot;
pub use task::{spawn_local, JoinHandle};
pub use transport::{FlowLimits, Transport, WriteError};
