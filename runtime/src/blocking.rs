//! Blocking work off the shard: Twisted's `deferToThread`.
//!
//! A [`BlockingPool`] is a fixed set of plain threads fed by a bounded
//! crossbeam channel. [`BlockingPool::run`] returns a future that resolves,
//! on the shard that awaits it, with the closure's result — the shard never
//! blocks. The pool thread wakes the awaiting task through glommio's foreign
//! wake path (the waker is queued to the shard's executor, which is woken if
//! it sleeps).
//!
//! * **Back-pressure.** At most `queue` jobs wait for a thread. A `run` made
//!   while the queue is full waits (asynchronously) for a slot, woken when a
//!   pool thread takes a job — the queue never grows without bound.
//! * **Panics.** A closure that panics resolves its future with
//!   [`BlockingError::Panicked`]; the pool thread survives. (glommio's own
//!   `spawn_blocking` hangs the caller in that case.)
//! * **Shutdown.** Dropping the last handle (or [`BlockingPool::shutdown`])
//!   closes the queue: jobs already queued still run, threads then exit;
//!   `shutdown` waits for them, dropping does not (the threads finish by
//!   themselves). A pending [`BlockingCall`] holds a handle. A future whose job can no longer be queued
//!   resolves with [`BlockingError::ShutDown`].
//!
//! [`defer_to_thread`] uses a process-wide default pool (8 threads, queue
//! 1024), created on first use.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::shard::panic_message;

/// Why a blocking call did not produce a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockingError {
    /// The closure panicked; the message is the panic's.
    #[error("the blocking call panicked: {0}")]
    Panicked(String),
    /// The pool was shut down before the job could run.
    #[error("the blocking pool is shut down")]
    ShutDown,
}

type Job = Box<dyn FnOnce() + Send>;

/// What the handles share. The worker threads do not hold it (only the
/// slots), so dropping the last handle drops the queue's sender and the
/// workers exit once the queued jobs are done.
struct Shared {
    tx: Mutex<Option<Sender<Job>>>,
    /// Free queue slots and the runs waiting for one.
    slots: Arc<Mutex<Slots>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

struct Slots {
    free: usize,
    capacity: usize,
    waiting: VecDeque<Waker>,
}

/// A blocking pool's load at one moment, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockingPoolStats {
    /// Worker threads.
    pub threads: usize,
    /// Room for waiting jobs.
    pub queue_capacity: usize,
    /// Jobs queued and not yet taken by a thread.
    pub queued: usize,
}

/// A pool of threads for blocking work. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct BlockingPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingPool").finish_non_exhaustive()
    }
}

impl BlockingPool {
    /// `threads` worker threads (at least 1) and room for `queue` waiting
    /// jobs (at least 1).
    pub fn new(threads: usize, queue: usize) -> BlockingPool {
        let queue = queue.max(1);
        let (tx, rx) = crossbeam_channel::bounded::<Job>(queue);
        let slots = Arc::new(Mutex::new(Slots {
            free: queue,
            capacity: queue,
            waiting: VecDeque::new(),
        }));
        let shared = Arc::new(Shared {
            tx: Mutex::new(Some(tx)),
            slots: slots.clone(),
            threads: Mutex::new(Vec::new()),
        });
        let handles: Vec<JoinHandle<()>> = (0..threads.max(1))
            .map(|i| {
                let (rx, slots) = (rx.clone(), slots.clone());
                std::thread::Builder::new()
                    .name(format!("torsion-blocking-{i}"))
                    .spawn(move || worker(rx, slots))
                    .expect("spawn a blocking-pool thread")
            })
            .collect();
        *lock(&shared.threads) = handles;
        BlockingPool { shared }
    }

    /// Runs `f` on a pool thread; the future resolves with its value where
    /// it is awaited.
    pub fn run<F, R>(&self, f: F) -> BlockingCall<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let result = Arc::new(Mutex::new(CallState {
            value: None,
            waker: None,
        }));
        BlockingCall {
            pool: self.clone(),
            job: Some(wrap(f, result.clone())),
            result,
        }
    }

    /// How loaded the pool is now (one short lock of the pool's slot count,
    /// the same lock every `run` takes).
    pub fn stats(&self) -> BlockingPoolStats {
        let threads = lock(&self.shared.threads).len();
        let slots = lock(&self.shared.slots);
        BlockingPoolStats {
            threads,
            queue_capacity: slots.capacity,
            queued: slots.capacity.saturating_sub(slots.free),
        }
    }

    /// Closes the queue, lets queued jobs finish, and waits for the threads.
    pub fn shutdown(&self) {
        lock(&self.shared.tx).take();
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for t in threads {
            let _ = t.join();
        }
        for w in lock(&self.shared.slots).waiting.drain(..) {
            w.wake();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn worker(rx: Receiver<Job>, slots: Arc<Mutex<Slots>>) {
    while let Ok(job) = rx.recv() {
        // A slot is free again: wake the waiting runs (all of them: a waker
        // may belong to a call that was dropped; the ones that find no slot
        // wait again).
        let waiters: Vec<Waker> = {
            let mut slots = lock(&slots);
            slots.free += 1;
            slots.waiting.drain(..).collect()
        };
        for w in waiters {
            w.wake();
        }
        job();
    }
}

struct CallState<R> {
    value: Option<Result<R, BlockingError>>,
    waker: Option<Waker>,
}

fn wrap<F, R>(f: F, result: Arc<Mutex<CallState<R>>>) -> Job
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    Box::new(move || {
        let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .map_err(|p| BlockingError::Panicked(panic_message(p.as_ref())));
        let waker = {
            let mut state = lock(&result);
            state.value = Some(value);
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    })
}

/// The future returned by [`BlockingPool::run`] and [`defer_to_thread`].
pub struct BlockingCall<R> {
    pool: BlockingPool,
    job: Option<Job>,
    result: Arc<Mutex<CallState<R>>>,
}

impl<R> std::fmt::Debug for BlockingCall<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingCall")
            .field("queued", &self.job.is_none())
            .finish()
    }
}

impl<R> Unpin for BlockingCall<R> {}

impl<R: Send + 'static> Future for BlockingCall<R> {
    type Output = Result<R, BlockingError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.job.is_some() {
            // Take a queue slot, or wait for one.
            {
                let mut slots = lock(&self.pool.shared.slots);
                if slots.free == 0 {
                    if lock(&self.pool.shared.tx).is_none() {
                        return Poll::Ready(Err(BlockingError::ShutDown));
                    }
                    slots.waiting.push_back(cx.waker().clone());
                    return Poll::Pending;
                }
                slots.free -= 1;
            }
            // Register before queueing, so a fast job finds the waker.
            lock(&self.result).waker = Some(cx.waker().clone());
            let job = self.job.take().expect("checked");
            let sent = match lock(&self.pool.shared.tx).as_ref() {
                Some(tx) => tx.try_send(job),
                None => Err(TrySendError::Disconnected(job)),
            };
            if sent.is_err() {
                lock(&self.pool.shared.slots).free += 1;
                return Poll::Ready(Err(BlockingError::ShutDown));
            }
        }
        let mut state = lock(&self.result);
        match state.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

static DEFAULT_POOL: OnceLock<BlockingPool> = OnceLock::new();

/// The process-wide pool [`defer_to_thread`] uses, once something used it.
#[cfg(feature = "metrics")]
pub(crate) fn default_pool() -> Option<&'static BlockingPool> {
    DEFAULT_POOL.get()
}

/// Runs `f` on the process-wide blocking pool (8 threads, queue 1024) and
/// resolves with its value on the awaiting shard (Twisted's `deferToThread`).
pub fn defer_to_thread<F, R>(f: F) -> BlockingCall<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    DEFAULT_POOL
        .get_or_init(|| BlockingPool::new(8, 1024))
        .run(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;
    use std::time::Duration;

    #[test]
    fn values_and_panics_come_back() {
        let pool = BlockingPool::new(2, 4);
        assert_eq!(futures_lite::future::block_on(pool.run(|| 6 * 7)), Ok(42));
        let err = futures_lite::future::block_on(pool.run(|| -> u8 { panic!("nope") }));
        assert_eq!(err, Err(BlockingError::Panicked("nope".into())));
        // The thread survived the panic.
        assert_eq!(futures_lite::future::block_on(pool.run(|| 1)), Ok(1));
        pool.shutdown();
    }

    #[test]
    fn a_full_queue_holds_callers_back_instead_of_growing() {
        let pool = BlockingPool::new(1, 2);
        let gate = Arc::new(Barrier::new(2));
        let started = Arc::new(AtomicUsize::new(0));
        let mut calls: Vec<_> = (0..6)
            .map(|_| {
                let (gate, started) = (gate.clone(), started.clone());
                Box::pin(pool.run(move || {
                    if started.fetch_add(1, Ordering::SeqCst) == 0 {
                        gate.wait();
                    }
                }))
            })
            .collect();
        // Poll each: the first is queued and taken by the pool's thread
        // (then blocked on the gate); once it runs, poll again: two fit the
        // queue, the other three wait for a slot.
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        let mut cx = Context::from_waker(&waker);
        for c in calls.iter_mut() {
            let _ = c.as_mut().poll(&mut cx);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while started.load(Ordering::SeqCst) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the first job never ran"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        for c in calls.iter_mut() {
            let _ = c.as_mut().poll(&mut cx);
        }
        // One job runs (held by the gate), two wait in the queue, and the
        // other three callers are held back: nothing else was queued.
        let queued = calls.iter().filter(|c| c.job.is_none()).count();
        assert_eq!(queued, 3, "1 running + 2 queued");
        assert_eq!(lock(&pool.shared.slots).free, 0);
        assert_eq!(
            pool.stats(),
            BlockingPoolStats {
                threads: 1,
                queue_capacity: 2,
                queued: 2,
            }
        );
        gate.wait();
        for c in calls {
            assert_eq!(futures_lite::future::block_on(c), Ok(()));
        }
        assert_eq!(started.load(Ordering::SeqCst), 6);
        pool.shutdown();
    }

    #[test]
    fn shutdown_waits_for_queued_work() {
        let pool = BlockingPool::new(1, 8);
        let done = Arc::new(AtomicUsize::new(0));
        let mut calls: Vec<_> = (0..5)
            .map(|_| {
                let done = done.clone();
                Box::pin(pool.run(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    done.fetch_add(1, Ordering::SeqCst);
                }))
            })
            .collect();
        // Queue all five (one poll each), then shut down: it returns only
        // after the queued jobs ran.
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        let mut cx = Context::from_waker(&waker);
        for c in calls.iter_mut() {
            let _ = c.as_mut().poll(&mut cx);
        }
        pool.shutdown();
        assert_eq!(done.load(Ordering::SeqCst), 5);
        for c in calls {
            assert_eq!(futures_lite::future::block_on(c), Ok(()));
        }
    }

    #[test]
    fn dropping_the_last_handle_stops_the_threads() {
        let pool = BlockingPool::new(3, 4);
        assert_eq!(futures_lite::future::block_on(pool.run(|| 5)), Ok(5));
        let workers_alive = Arc::downgrade(&pool.shared.slots);
        drop(pool);
        // Each worker holds the slots until it exits: wait (boundedly) for
        // all three to let go.
        for _ in 0..1000 {
            if workers_alive.upgrade().is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the pool's threads are still running after its last handle was dropped");
    }

    #[test]
    fn after_shutdown_calls_fail_cleanly() {
        let pool = BlockingPool::new(1, 1);
        pool.shutdown();
        assert_eq!(
            futures_lite::future::block_on(pool.run(|| 1)),
            Err(BlockingError::ShutDown)
        );
    }
}
