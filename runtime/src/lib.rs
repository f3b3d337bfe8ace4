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
//! The folders are the layers, bottom up (all crate-private; what users
//! name is re-exported below):
//!
//! | folder | what it holds |
//! |---|---|
//! | `counters/` | numbers shards write without locks (public as [`counters`]) |
//! | `shard/` | the shard and its executor: [`ShardInfo`], pinning ([`cores`]), tasks ([`spawn_local`]), panic containment, the per-shard runtime (registry, shutdown) |
//! | `connection/` | connections and transports: [`Protocol`], [`Transport`], [`Connection`], [`DisconnectReason`], [`Policies`]; the state machine every connection runs and the socket driver that performs it |
//! | `net/` | endpoints and listeners: [`Endpoint`] parsing, binding, the accept loop, TLS, TCP clients, UDP |
//! | `clock.rs` | timers: [`Clock`], [`DelayedCall`], [`LoopingCall`], [`ManualClock`] |
//! | `bus/` | cross-shard messaging: [`Bus`], [`BusHandle`], [`ManualBus`], [`Rpc`], [`invoke_on`], [`oneshot`]; the doorbell that wakes a parked shard |
//! | `blocking.rs` | blocking work: [`BlockingPool`], [`defer_to_thread`] |
//! | `metrics/` | Prometheus encoding (public as `metrics`, feature `metrics`) |
//! | `server/` | starting, observing, stopping: [`ServerBuilder`], [`ServerHandle`], [`ShardStatsSnapshot`]; [`run_on_cores`] and [`block_on`]: pinned executors that are not servers |
//! | `testing/` | protocols without sockets (public as [`testing`]) |
//!
//! ## One path per name
//!
//! Every public name has exactly one path. The vocabulary of a server —
//! protocols, transports, connections, endpoints, the builder, clocks, the
//! bus, blocking work, UDP — is at the crate root (`torsion::Transport`,
//! `torsion::Bus`); what only some programs need is in a module of its own:
//!
//! | module | what it holds | Twisted |
//! |---|---|---|
//! | [`client`] | [`client::connect_tcp`], [`client::Connector`], [`client::ReconnectingClient`], [`client::Backoff`] | `connectTCP`, `ReconnectingClientFactory` |
//! | [`codec`] | [`codec::Decoder`], [`codec::Encoder`]: the framing contract of [`Connection::framed`] | — |
//! | [`cores`] | which cores the shards run on | — |
//! | [`counters`] | [`counters::ShardCounter`], [`counters::LatencyHistogram`]: numbers a shard writes without locks | — |
//! | `metrics` | `metrics::Metrics`: every counter in Prometheus's text format (feature `metrics`) | — (Twisted has none built in) |
//! | [`oneshot`] | a one-value channel between shards or threads | `Deferred` fired from elsewhere |
//! | [`testing`] | [`testing::ProtocolHarness`], [`testing::ConnectedPair`]: protocols without sockets | `StringTransport`, `iosim` |
//! | `tls` | rustls configs for `tls:` endpoints and clients (feature `tls`) | `ssl.CertificateOptions` |
//!
//! At the root, by Twisted's name:
//!
//! | Twisted | torsion |
//! |---|---|
//! | `reactor.run()`, `listenTCP` | [`Server::builder`] → [`ServerBuilder::serve`] → [`ServerHandle`] |
//! | `Protocol`, `Factory` | [`Protocol`], [`Factory`], [`FnFactory`] |
//! | `inlineCallbacks` | [`Connection`], [`ServerBuilder::serve_fn`], [`AsyncProtocol`] |
//! | `ITransport` | [`Transport`] |
//! | `ConnectionDone`, `ConnectionLost` | [`DisconnectReason`] |
//! | `policies.TimeoutMixin`, `LimitTotalConnectionsFactory` | [`Policies`] |
//! | `serverFromString`, `clientFromString` | [`Endpoint`], [`ClientEndpoint`] |
//! | `callLater`, `LoopingCall`, `task.Clock` | [`Clock`], [`DelayedCall`], [`LoopingCall`], [`ManualClock`] |
//! | `deferToThread` | [`defer_to_thread`], [`BlockingPool`] |
//! | `Deferred` | [`spawn_local`] → [`JoinHandle`] (dropping cancels) |
//! | `listenUDP`, `DatagramProtocol` | [`ServerBuilder::serve_datagram`], [`DatagramProtocol`], [`UdpSocket`] |
//! | — (Twisted has one thread) | [`Bus`], [`BusHandle`], [`Rpc`], [`invoke_on`], [`map_reduce`] |
//! | a client program's `reactor.run()` | [`block_on`] (one pinned executor), [`run_on_cores`] (one per core: the load generator's engine) |
//!
//! ## Features
//!
//! All off by default, so a line protocol compiles neither rustls nor
//! prometheus-client:
//!
//! | feature | what it adds |
//! |---|---|
//! | `tls` | `tls:`/`ssl:` endpoints (rustls termination), the `tls` module, [`client::Connector::tls`] |
//! | `metrics` | the `metrics` module: Prometheus text encoding of the server's, the bus's, the pools' and protocols' counters |
//!
//! Without `tls`, parsing a `tls:` endpoint fails with an error that names
//! the feature.
//!
//! Crate-private pieces (each folder's `mod.rs` has its own map):
//! `connection::machine` (what happens next on a connection, shared by the
//! socket driver and the test kit), `connection::driver` (the socket pump:
//! batching and flow control), `connection::host` (what the driver needs
//! from a shard or from a thread's clients), `net::bind` (the shards'
//! `SO_REUSEPORT` sockets and the port probe), `net::listener` (accept loop,
//! admission and its back-off), `shard::runtime` (per-shard registry,
//! shutdown), `bus::doorbell` (waking a parked shard from another thread),
//! `shard::local_event`, `net::pacer` (loops around an operation that keeps
//! failing: pause, never spin).
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

mod blocking;
mod bus;
mod clock;
pub mod codec;
mod connection;
pub mod counters;
#[cfg(feature = "metrics")]
pub mod metrics;
mod net;
mod server;
mod setters;
mod shard;
pub mod testing;

pub use bus::oneshot;
pub use net::client;
#[cfg(feature = "tls")]
pub use net::tls;
pub use shard::cores;

pub use blocking::{defer_to_thread, BlockingCall, BlockingError, BlockingPool, BlockingPoolStats};
pub use bus::invoke::{invoke_on, invoke_on_all, map_reduce};
pub use bus::{
    Bus, BusError, BusHandle, BusSender, BusShardStats, ManualBus, Rpc, RpcCall, RpcError,
    RpcMessage,
};
pub use clock::{Clock, ClockError, DelayedCall, LoopingCall, ManualClock, Sleep};
pub use connection::async_conn::Connection;
pub use connection::async_protocol::{
    AsyncProtocol, ConnectionFn, ConnectionHandler, ConnectionOutcome,
};
pub use connection::frames::Frames;
pub use connection::policy::Policies;
pub use connection::protocol::{Factory, FnFactory, Protocol};
pub use connection::reason::DisconnectReason;
pub use connection::transport::{FlowLimits, InFlight, Transport, WriteError};
pub use net::datagram::{
    DatagramError, DatagramProtocol, DatagramTransport, MAX_DATAGRAM_V4, MAX_DATAGRAM_V6,
};
pub use net::endpoint::{
    ClientEndpoint, ClientEndpointError, ClientTls, Endpoint, EndpointError, DEFAULT_BACKLOG,
};
pub use net::udp_socket::UdpSocket;
pub use server::pinned::{block_on, run_on_cores};
pub use server::stats::{ShardStats, ShardStatsSnapshot};
pub use server::{
    BoxError, IntoFactory, Server, ServerBuilder, ServerError, ServerHandle, ShutdownTrigger,
    StatsReader, DEFAULT_DRAIN_TIMEOUT, DEFAULT_LAG_PROBE,
};
pub use shard::task::{spawn_local, JoinHandle};
pub use shard::ShardInfo;
