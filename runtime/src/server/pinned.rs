//! Running async work on executors that are not servers: a client
//! program's `main`.
//!
//! [`block_on`] runs one future to its end on an executor on the calling
//! thread — `#[tokio::main]` for a program that is only a client: connect,
//! ask, await, print. [`run_on_cores`] starts one thread per core, each
//! running a glommio `LocalExecutor` pinned to its core (as server shards
//! are), runs `task(shard)` to completion on each, and returns the results
//! in shard order; the load generator uses it to drive many client
//! connections per core, event-driven. On both, everything a shard has
//! works: [`crate::client::connect`], timers, [`crate::defer_to_thread`].

use std::future::Future;
use std::sync::Arc;

use glommio::{LocalExecutorBuilder, Placement};

use crate::bus::invoke::{self, InvokeBus};
use crate::server::ServerError;
use crate::shard::{self, ShardInfo};

/// Registered memory per pool shard (no storage I/O here either).
const IO_MEMORY: usize = 64 * 1024;

/// Runs `future` to its end on an executor on this thread and returns its
/// output (Twisted's `react`, tokio's `block_on`): the way into torsion for
/// a program that is only a client. The thread is not pinned (use
/// [`run_on_cores`] for pinned executors, one per core); code inside sees
/// itself as shard 0 of 1.
///
/// ```no_run
/// use torsion::{client, ClientEndpoint};
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let answer = torsion::block_on(async {
///         let server = ClientEndpoint::parse("tcp:127.0.0.1:7000")?;
///         let mut conn = client::connect(&server).await?;
///         conn.write(b"hello\r\n").await?;
///         Ok::<_, Box<dyn std::error::Error>>(conn.read().await)
///     })??;
///     println!("{answer:?}");
///     Ok(())
/// }
/// ```
///
/// Fails (without running the future) if the executor cannot start, e.g.
/// when this thread already runs one.
pub fn block_on<T>(future: impl Future<Output = T>) -> Result<T, ServerError> {
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .name("torsion-main")
        .io_memory(IO_MEMORY)
        .make()
        .map_err(|e| {
            ServerError::shard_start(0, "cannot start its executor", std::io::Error::from(e))
        })?;
    let info = ShardInfo {
        id: 0,
        count: 1,
        core: crate::shard::cores::allowed_cores()
            .ok()
            .and_then(|c| c.first().copied())
            .unwrap_or(0),
    };
    let invoke = InvokeBus::new(1).map_err(ServerError::from)?;
    ex.run(async move {
        shard::enter(info, Box::new(|| {}));
        let attached = invoke::attach(&invoke, info);
        let out = match attached {
            Ok(()) => Ok(future.await),
            Err(e) => Err(ServerError::from(e)),
        };
        crate::bus::close_inboxes_here();
        invoke::detach();
        shard::leave();
        out
    })
}

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
    let invoke = InvokeBus::new(count).map_err(ServerError::from)?;
    let mut threads = Vec::with_capacity(count);
    for (id, &core) in cores.iter().enumerate() {
        let info = ShardInfo { id, count, core };
        let task = task.clone();
        let invoke = invoke.clone();
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
                ex.run(async move {
                    shard::enter(info, Box::new(|| {}));
                    if let Err(e) = invoke::attach(&invoke, info) {
                        shard::leave();
                        return Err(ServerError::from(e));
                    }
                    let out = task(info).await;
                    crate::bus::close_inboxes_here();
                    invoke::detach();
                    shard::leave();
                    Ok(out)
                })
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
