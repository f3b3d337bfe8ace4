//! What the caller of `serve` holds: the handle (address, stats, stop and
//! join), a trigger other threads can stop the server with, and a stats
//! reader.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::bus::doorbell::Doorbell;
use crate::server::stats::{ShardStats, ShardStatsSnapshot};
use crate::shard::{self, ShardInfo};

use super::error::ServerError;

/// What the handle tells a shard's control loop.
pub(super) enum ShardCommand {
    Shutdown { drain: Duration },
}

pub(super) struct ShardControl {
    pub(super) control: Sender<ShardCommand>,
    pub(super) bell: Doorbell,
}

pub(super) struct ShardEntry {
    pub(super) info: ShardInfo,
    pub(super) stats: Arc<ShardStats>,
    pub(super) thread: Option<JoinHandle<()>>,
}

/// Asks every shard of a server to shut down; `Send + Sync + Clone`, so a
/// signal-handling thread can hold one while another thread joins.
#[derive(Clone)]
pub struct ShutdownTrigger {
    pub(super) controls: Arc<Vec<ShardControl>>,
    pub(super) drain_timeout: Duration,
}

impl std::fmt::Debug for ShutdownTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownTrigger")
            .field("shards", &self.controls.len())
            .field("drain_timeout", &self.drain_timeout)
            .finish()
    }
}

impl ShutdownTrigger {
    /// Starts a graceful shutdown with the server's drain timeout.
    pub fn shutdown(&self) {
        self.shutdown_with(self.drain_timeout);
    }

    /// Starts a graceful shutdown that aborts what is left after `drain`.
    pub fn shutdown_with(&self, drain: Duration) {
        for c in self.controls.iter() {
            // Err: the shard has exited already.
            let _ = c.control.send(ShardCommand::Shutdown { drain });
            c.bell.ring();
        }
    }
}

/// Reads a server's per-shard counters from any thread.
#[derive(Debug, Clone)]
pub struct StatsReader {
    shards: Vec<(ShardInfo, Arc<ShardStats>)>,
}

impl StatsReader {
    /// A snapshot of every shard's counters, in shard order.
    pub fn snapshot(&self) -> Vec<ShardStatsSnapshot> {
        self.shards
            .iter()
            .map(|(info, stats)| stats.snapshot(info.id, info.core))
            .collect()
    }

    /// Every shard's reactor lag (how late its timers fired), in shard
    /// order; empty histograms unless the server runs the lag probe.
    pub fn reactor_lag(&self) -> Vec<crate::counters::HistogramSnapshot> {
        self.shards
            .iter()
            .map(|(_, stats)| stats.reactor_lag().snapshot())
            .collect()
    }

    /// All shards' counters added up.
    pub fn total(&self) -> ShardStatsSnapshot {
        let mut total = ShardStatsSnapshot::default();
        for s in self.snapshot() {
            total.accumulate(&s);
        }
        total
    }
}

/// A running server: its address, its stats, and the way to stop it.
/// Dropping the handle shuts the server down and waits for it.
pub struct ServerHandle {
    /// Where each listener listens (the first endpoint's first).
    pub(super) local_addrs: Vec<SocketAddr>,
    pub(super) shards: Vec<ShardEntry>,
    pub(super) trigger: ShutdownTrigger,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addrs", &self.local_addrs)
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl ServerHandle {
    /// The address every shard listens on (with the real port if 0 was
    /// asked): the first endpoint's.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// Every listener's address, in the order of the endpoints (the first
    /// `listen`, then each `also_listen`).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// How many shards run.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Each shard's id, count and core.
    pub fn shards(&self) -> Vec<ShardInfo> {
        self.shards.iter().map(|s| s.info).collect()
    }

    /// A snapshot of every shard's counters, in shard order.
    pub fn stats(&self) -> Vec<ShardStatsSnapshot> {
        self.stats_reader().snapshot()
    }

    /// All shards' counters added up.
    pub fn total_stats(&self) -> ShardStatsSnapshot {
        self.stats_reader().total()
    }

    /// A `Send + Clone` reader of the counters that outlives the handle.
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader {
            shards: self
                .shards
                .iter()
                .map(|s| (s.info, s.stats.clone()))
                .collect(),
        }
    }

    /// A handle that can start the shutdown from another thread.
    pub fn trigger(&self) -> ShutdownTrigger {
        self.trigger.clone()
    }

    /// Starts a graceful shutdown (stop accepting, drain, abort at the deadline).
    pub fn shutdown(&self) {
        self.trigger.shutdown();
    }

    /// Waits for every shard to finish (after a shutdown was started).
    pub fn join(mut self) -> Result<(), ServerError> {
        self.join_threads()
    }

    /// Shuts down and waits.
    pub fn stop(self) -> Result<(), ServerError> {
        self.shutdown();
        self.join()
    }

    pub(super) fn join_threads(&mut self) -> Result<(), ServerError> {
        let mut result = Ok(());
        for s in &mut self.shards {
            if let Some(thread) = s.thread.take() {
                if let Err(payload) = thread.join() {
                    let message = shard::panic_message(payload.as_ref());
                    if result.is_ok() {
                        result = Err(ServerError::ShardPanicked {
                            shard: s.info.id,
                            message,
                        });
                    }
                }
            }
        }
        result
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.shards.iter().any(|s| s.thread.is_some()) {
            self.trigger.shutdown();
            let _ = self.join_threads();
        }
    }
}
