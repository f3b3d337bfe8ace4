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
//! The folders are the layers, bottom up:
//!
//! | folder | what it holds |
//! |---|---|
//! | `counters/` | numbers shards write without locks: [`metrics::ShardCounter`], [`metrics::LatencyHistogram`] (public through `metrics`) |
//! | `shard/` | the shard and its executor: [`ShardInfo`], pinning ([`cores`]), tasks ([`task`]), panic containment, the per-shard runtime (registry, shutdown) |
//! | `connection/` | connections and transports: [`Protocol`], [`Transport`], [`DisconnectReason`], [`Policies`]; the state machine every connection runs and the socket driver that performs it |
//! | `net/` | endpoints and listeners: [`Endpoint`] parsing, binding, the accept loop, TLS, TCP clients, UDP |
//! | `clock.rs` | timers: [`Clock`], [`DelayedCall`], [`LoopingCall`], [`ManualClock`] |
//! | `bus/` | cross-shard messaging: [`Bus`], [`BusHandle`], [`ManualBus`], [`Rpc`] (request/response between shards), the doorbell that wakes a parked shard |
//! | `blocking.rs` | blocking work: [`BlockingPool`], [`defer_to_thread`] |
//! | `metrics/` | Prometheus metrics: [`metrics::Metrics`], latency histograms recorded without locks, the reactor-lag probe |
//! | `server/` | starting, observing, stopping: [`ServerBuilder`], [`ServerHandle`], [`stats`]; [`pinned`] executors that are not servers |
//! | `testing/` | protocols without sockets: [`testing::ProtocolHarness`], [`testing::ConnectedPair`] |
//!
//! The public modules keep flat paths (`torsion::transport`,
//! `torsion::endpoint`, …), re-exported from their folders:
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
//! | [`udp_socket`] | [`UdpSocket`]: a client's UDP socket on the current shard | `listenUDP` with `connect` |
//! | [`endpoint`] | [`Endpoint`] (`tcp:`, `tcp6:`, `tls:`, `udp:`), [`ClientEndpoint`] | `serverFromString`, `clientFromString` |
//! | [`cores`] | which cores the shards run on | — |
//! | [`shard`] | [`ShardInfo`], [`shard::current`]: where code runs | — |
//! | [`stats`] | per-shard counters | — |
//! | [`metrics`] | [`metrics::Metrics`]: per-shard counters, reactor lag and protocols' collectors in Prometheus's text format | — (Twisted has none built in) |
//! | [`testing`] | [`testing::ProtocolHarness`], [`testing::ConnectedPair`]: protocols without sockets | `StringTransport`, `iosim` |
//! | [`task`] | [`spawn_local`] → [`JoinHandle`] (dropping cancels); what every handle does when dropped | `Deferred`, `inlineCallbacks` |
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

pub mod blocking;
pub mod bus;
pub mod clock;
pub mod codec;
mod connection;
mod counters;
pub mod metrics;
mod net;
pub mod server;
mod setters;
pub mod shard;
pub mod testing;

pub use connection::async_conn::Connection;
pub use connection::async_protocol::{
    AsyncProtocol, ConnectionFn, ConnectionHandler, ConnectionOutcome,
};
pub use connection::frames::Frames;
pub use connection::{policy, protocol, reason, transport};
pub use net::udp_socket;
pub use net::{client, datagram, endpoint, tls};
pub use server::pinned;
pub use server::stats;
pub use shard::{cores, task};

pub use blocking::{defer_to_thread, BlockingError, BlockingPool, BlockingPoolStats};
pub use bus::invoke::{invoke_on, invoke_on_all, map_reduce};
pub use bus::oneshot;
pub use bus::{
    Bus, BusError, BusHandle, BusSender, BusShardStats, ManualBus, Rpc, RpcCall, RpcError,
    RpcMessage,
};
pub use clock::{Clock, ClockError, DelayedCall, LoopingCall, ManualClock, Sleep};
pub use datagram::{DatagramError, DatagramProtocol, DatagramTransport};
pub use endpoint::{ClientEndpoint, ClientEndpointError, Endpoint, EndpointError};
pub use pinned::block_on;
pub use policy::Policies;
pub use protocol::{Factory, FnFactory, Protocol};
pub use reason::DisconnectReason;
pub use server::{
    BoxError, Server, ServerBuilder, ServerError, ServerHandle, ShutdownTrigger, StatsReader,
};
pub use shard::ShardInfo;
pub use stats::ShardStatsSnapshot;
pub use task::{spawn_local, JoinHandle};
pub use transport::{FlowLimits, InFlight, Transport, WriteError};
pub use udp_socket::UdpSocket;
