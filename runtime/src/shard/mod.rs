//! The shard the current code runs on, and panic containment.
//!
//! Each shard thread registers its [`ShardInfo`] (and its stats) in a thread
//! local when it starts, so code anywhere on the shard can ask
//! [`ShardInfo::current`] which shard it is on, and so a panic caught anywhere on the
//! shard is logged with the shard's id and counted in that shard's stats.
//!
//! Every call into user code (protocol callbacks, factory hooks, timer
//! callbacks) goes through `run_guarded` / `call_guarded`: a panic there
//! is caught with `catch_unwind`, so it ends at most the one connection or
//! timer it came from, never the shard.
//!
//! The folder holds the shard and what runs on it:
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`ShardInfo`], [`ShardInfo::current`]: where code runs; panic containment |
//! | `runtime.rs` | one server shard's state: stats, limits, policies, the live-connection registry, shutdown sequencing |
//! | `cores.rs` | which cores the shards run on |
//! | `task.rs` | [`spawn_local`](crate::spawn_local) → [`JoinHandle`](crate::JoinHandle): what each handle does when dropped |
//! | `local_event.rs` | a one-shot, shard-local event (stop accepting, all closed) |
//! | `wake_flag.rs` | a waker that raises a flag, for futures polled by hand (test kit, manual bus) |

pub mod cores;
pub(crate) mod local_event;
pub(crate) mod runtime;
pub(crate) mod task;
pub(crate) mod wake_flag;

use std::any::Any;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Which shard a piece of code runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardInfo {
    /// This shard's id, `0..count`.
    pub id: usize,
    /// How many shards the server runs.
    pub count: usize,
    /// The core the shard's thread is pinned to.
    pub core: usize,
}

struct CurrentShard {
    info: ShardInfo,
    /// Counts a contained panic (the server's stats; nothing on a pool's
    /// executors). A hook, so this layer does not import `server/`.
    count_panic: Box<dyn Fn()>,
}

thread_local! {
    static CURRENT: RefCell<Option<CurrentShard>> = const { RefCell::new(None) };
}

impl ShardInfo {
    /// The shard the calling thread runs, or `None` off-shard (a plain
    /// thread, a blocking pool's worker).
    pub fn current() -> Option<ShardInfo> {
        current()
    }
}

/// The shard the calling thread runs, or `None` off-shard.
pub(crate) fn current() -> Option<ShardInfo> {
    CURRENT.with(|c| c.borrow().as_ref().map(|s| s.info))
}

/// Marks the calling thread as running `info` (done once by the shard thread).
pub(crate) fn enter(info: ShardInfo, count_panic: Box<dyn Fn()>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(CurrentShard { info, count_panic }));
}

/// Clears the thread's shard registration (on shard exit).
pub(crate) fn leave() {
    CURRENT.with(|c| c.borrow_mut().take());
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Logs and counts a caught panic against the current shard.
pub(crate) fn report_panic(what: &str, payload: &(dyn Any + Send)) {
    let message = panic_message(payload);
    CURRENT.with(|c| match c.borrow().as_ref() {
        Some(shard) => {
            (shard.count_panic)();
            tracing::error!(
                shard = shard.info.id,
                "panic in {what} contained: {message}"
            );
        }
        None => tracing::error!("panic in {what} contained: {message}"),
    });
}

/// Runs `f`, containing a panic (logged with the shard id and counted).
/// Returns its value, or `None` if it panicked.
pub(crate) fn call_guarded<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) => {
            report_panic(what, payload.as_ref());
            None
        }
    }
}

/// Runs `f`, containing a panic. Returns false if it panicked.
pub(crate) fn run_guarded(what: &str, f: impl FnOnce()) -> bool {
    call_guarded(what, f).is_some()
}
