//! Starting, observing and stopping a sharded server.
//!
//! [`ServerBuilder::serve`] plans one shard per core, binds one
//! `SO_REUSEPORT` socket per shard, then starts one OS thread per shard, each
//! running a glommio `LocalExecutor` pinned to its core
//! (`Placement::Fixed`). On its thread each shard builds its own factory from
//! the shared `Send + Sync` closure and runs its accept loop. `serve` returns
//! once every shard is accepting, with a [`ServerHandle`].
//!
//! # Shutdown
//!
//! The handle talks to each shard over a crossbeam channel and wakes it with
//! its doorbell (see `bus/doorbell.rs`). On shutdown each shard at once stops
//! accepting and closes its listener, calls `shutdown_requested` on every
//! connection (default: stop reading, let work marked in flight finish,
//! flush and close; an async connection's input ends and its future
//! finishes), waits for them to end until the drain deadline, aborts the
//! rest with [`DisconnectReason::Shutdown`] and runs `Factory::stop`. Then
//! it waits until every shard has got that far (`drain_barrier.rs`: a
//! connection draining elsewhere may still call it) and exits its thread.
//!
//! The pieces: [`ServerBuilder`] (`builder.rs`: configuration and start-up),
//! [`IntoFactory`] (`into_factory.rs`: a factory or a `Result` of one),
//! [`ServerError`] (`error.rs`), [`ServerHandle`], [`ShutdownTrigger`] and
//! [`StatsReader`] (`handle.rs`: what the caller holds), and the shard
//! thread (`shard_thread.rs`: the executor, the service it runs, and the
//! control loop that takes shutdown commands), the barrier shards stop at
//! (`drain_barrier.rs`), the reactor-lag probe (`lag_probe.rs`); `stats.rs` holds the per-shard counters the handle
//! reads. `pinned.rs` ([`run_on_cores`](crate::run_on_cores), [`block_on`](crate::block_on)) runs
//! async work on pinned executors that are not a server's shards (a client
//! program, the load generator), with the same shard registration and
//! invocation bus.
//!
//! [`DisconnectReason::Shutdown`]: crate::DisconnectReason::Shutdown

mod builder;
mod drain_barrier;
mod error;
mod handle;
mod into_factory;
pub(crate) mod lag_probe;
pub(crate) mod pinned;
mod shard_thread;
pub(crate) mod stats;

pub use builder::{Server, ServerBuilder, DEFAULT_DRAIN_TIMEOUT};
pub use error::{BoxError, ServerError};
pub use handle::{ServerHandle, ShutdownTrigger, StatsReader};
pub use into_factory::IntoFactory;
pub use lag_probe::DEFAULT_LAG_PROBE;
