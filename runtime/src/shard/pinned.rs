//! Running async work on pinned shards that are not servers.
//!
//! [`run_on_cores`] starts one thread per core, each running a glommio
//! `LocalExecutor` pinned to its core (as server shards are), runs
//! `task(shard)` to completion on each, and returns the results in shard
//! order. The load generator uses it to drive many client connections per
//! core, event-driven.

use std::future::Future;
use std::sync::Arc;

use glommio::{LocalExecutorBuilder, Placement};

use crate::server::stats::ShardStats;
use crate::server::ServerError;
use crate::shard::{self, ShardInfo};

/// Registered memory per pool shard (no storage I/O here either).
const IO_MEMORY: usize = 64 * 1024;

/// Runs `task` once on each core in `cores` (one pinned executor per core)
/// and returns each shard's result, in order. A panic in a task is returned
/// as [`ServerError::ShardPanicked`].
pub fn run_on_cores<T, F, Fut>(cores: &[usize], task: F) -> Result<Vec<T>, ServerError>
where
    F: Fn(ShardInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let task = Arc::new(task);
    let count = cores.len();
    let mut threads = Vec::with_capacity(count);
    for (id, &core) in cores.iter().enumerate() {
        let info = ShardInfo { id, count, core };
        let task = task.clone();
        let thread = std::thread::Builder::new()
            .name(format!("torsion-pool-{id}"))
            .spawn(move || -> Result<T, ServerError> {
                let ex = LocalExecutorBuilder::new(Placement::Fixed(core))
                    .name(&format!("torsion-pool-{id}"))
                    .io_memory(IO_MEMORY)
                    .make()
                    .map_err(|e| {
                        let what = format!("cannot start its executor on core {core}");
                        ServerError::shard_start(id, what, std::io::Error::from(e))
                    })?;
                Ok(ex.run(async move {
                    shard::enter(info, Arc::new(ShardStats::default()));
                    let out = task(info).await;
                    shard::leave();
                    out
                }))
            })
            .map_err(|e| ServerError::shard_start(id, "cannot spawn its thread", e))?;
        threads.push(thread);
    }
    let mut results = Vec::with_capacity(count);
    let mut first_error = None;
    for (id, t) in threads.into_iter().enumerate() {
        match t.join() {
            Ok(Ok(v)) => results.push(v),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(payload) => {
                first_error.get_or_insert(ServerError::ShardPanicked {
                    shard: id,
                    message: shard::panic_message(payload.as_ref()),
                });
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(results),
    }
}
