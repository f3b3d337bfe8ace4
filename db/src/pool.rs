//! [`ConnectionPool`]: threads of its own, each holding one connection,
//! fed through a bounded queue; each call's answer is a future a shard
//! awaits.
//!
//! # Design
//!
//! Every thread opens its connection when the pool is made, so a database
//! that cannot be opened fails [`ConnectionPool::new`] with its reason,
//! not the first call. A call is a boxed closure over `&mut Connection`,
//! queued with `try_send` on a bounded crossbeam channel: a full queue is
//! [`DbError::QueueFull`] at once (the shard is never blocked, and memory
//! is bounded), a shut-down pool [`DbError::PoolClosed`]. The answer comes
//! back through `torsion::oneshot`, which wakes the awaiting shard from the
//! pool's thread. A panic in the work is caught on the pool's thread and
//! answered as [`DbError::Panicked`]; the thread and its connection go on.
//! Dropping the last clone of a pool, or [`ConnectionPool::shutdown`] on any
//! clone, stops new calls; the threads finish what is queued and exit
//! (`shutdown` waits for them).
//!
//! A connection that breaks (the server restarted, the network dropped)
//! fails the call that finds it broken, as Twisted's adbapi does with
//! `cp_reconnect`; the thread opens a new one before its next call
//! ([`Backend::is_usable`]). Calls are never retried behind the caller's
//! back: the failed one may have run on the server before the break.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

use crate::error::DbError;

/// A database the pool's threads connect to.
pub trait Backend: Send + Sync + 'static {
    /// One thread's connection.
    type Connection: Send + 'static;

    /// Opens a connection (on the pool's thread).
    fn connect(&self) -> Result<Self::Connection, DbError>;

    /// Whether `conn` can still be used. Before each call, a pool thread
    /// whose connection is not usable (a server that went away) opens a
    /// new one; the default: a connection is always usable.
    fn is_usable(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        true
    }
}

/// One queued call: given the thread's connection, or why there is none.
type Job<C> = Box<dyn FnOnce(Result<&mut C, DbError>) + Send>;

/// The queue's sending end, shared by a pool's clones (`None`: shut down).
type SharedQueue<C> = Arc<Mutex<Option<Sender<Job<C>>>>>;

/// What a pool has done, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Calls answered (with a result or an error).
    pub completed: u64,
    /// Calls refused because the queue was full.
    pub refused: u64,
    /// Calls whose work panicked.
    pub panicked: u64,
    /// Connections opened again after one became unusable.
    pub reconnects: u64,
}

#[derive(Default)]
struct Counters {
    completed: AtomicU64,
    refused: AtomicU64,
    panicked: AtomicU64,
    reconnects: AtomicU64,
}

/// Blocking database work on `threads` threads of its own, one connection
/// each, awaited on a shard (Twisted's `adbapi.ConnectionPool`). Cheap to
/// clone: clones share the threads.
pub struct ConnectionPool<B: Backend> {
    /// The queue's sending end, shared by every clone; `None` once shut
    /// down (the threads then drain the queue and exit).
    jobs: SharedQueue<B::Connection>,
    queue: usize,
    counters: Arc<Counters>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl<B: Backend> Clone for ConnectionPool<B> {
    fn clone(&self) -> Self {
        ConnectionPool {
            jobs: self.jobs.clone(),
            queue: self.queue,
            counters: self.counters.clone(),
            threads: self.threads.clone(),
        }
    }
}

impl<B: Backend> std::fmt::Debug for ConnectionPool<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("queue", &self.queue)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> ConnectionPool<B> {
    /// Starts `threads` threads (at least 1), each with its own connection,
    /// and a queue of `queue` calls (at least 1). Fails with the first
    /// connection's error.
    pub fn new(backend: B, threads: usize, queue: usize) -> Result<ConnectionPool<B>, DbError> {
        let (tx, rx) = crossbeam_channel::bounded::<Job<B::Connection>>(queue.max(1));
        let backend = Arc::new(backend);
        let counters = Arc::<Counters>::default();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
            let (rx, backend, counters) = (rx.clone(), backend.clone(), counters.clone());
            let handle = std::thread::Builder::new()
                .name(format!("torsion-db-{i}"))
                .spawn(move || {
                    let first = catch_unwind(AssertUnwindSafe(|| backend.connect()))
                        .unwrap_or_else(|payload| {
                            Err(DbError::Panicked(format!(
                                "opening a connection: {}",
                                panic_text(&*payload)
                            )))
                        });
                    let conn = match first {
                        Ok(c) => {
                            let _ = ready_tx.send(Ok(()));
                            c
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    serve_jobs(&*backend, conn, &rx, &counters);
                })
                .map_err(|e| DbError::Connect {
                    backend: "pool",
                    target: format!("thread {i}"),
                    problem: format!("cannot start the thread: {e}"),
                })?;
            handles.push(handle);
            // Each thread reports its connection before the next starts.
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(DbError::Panicked(
                        "a pool thread died opening its connection".into(),
                    ))
                }
            }
        }
        Ok(ConnectionPool {
            jobs: Arc::new(Mutex::new(Some(tx))),
            queue: queue.max(1),
            counters,
            threads: Arc::new(Mutex::new(handles)),
        })
    }

    /// Runs `work` with a connection on one of the pool's threads; the
    /// future resolves with what it returns (Twisted's
    /// `runWithConnection`).
    pub fn run_with<R, W>(&self, work: W) -> DbCall<R>
    where
        R: Send + 'static,
        W: FnOnce(&mut B::Connection) -> Result<R, DbError> + Send + 'static,
    {
        let (tx, rx) = torsion::oneshot::channel();
        let counters = self.counters.clone();
        let job: Job<B::Connection> = Box::new(move |conn| {
            let answer = match conn {
                Err(no_connection) => Err(no_connection),
                Ok(conn) => match catch_unwind(AssertUnwindSafe(|| work(conn))) {
                    Ok(answer) => answer,
                    Err(payload) => {
                        counters.panicked.fetch_add(1, Ordering::Relaxed);
                        Err(DbError::Panicked(panic_text(&*payload)))
                    }
                },
            };
            counters.completed.fetch_add(1, Ordering::Relaxed);
            tx.send(answer);
        });
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(jobs) = jobs.as_ref() else {
            return DbCall::failed(DbError::PoolClosed);
        };
        match jobs.try_send(job) {
            Ok(()) => DbCall::waiting(rx),
            Err(TrySendError::Full(_)) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                DbCall::failed(DbError::QueueFull { queue: self.queue })
            }
            Err(TrySendError::Disconnected(_)) => DbCall::failed(DbError::PoolClosed),
        }
    }

    /// What the pool has done so far.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            completed: self.counters.completed.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
            panicked: self.counters.panicked.load(Ordering::Relaxed),
            reconnects: self.counters.reconnects.load(Ordering::Relaxed),
        }
    }

    /// Stops taking calls, for every clone (their calls answer
    /// [`DbError::PoolClosed`]), and waits until the threads have finished
    /// what was queued.
    pub fn shutdown(&self) {
        drop(self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take());
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// After a connection cannot be opened, calls in the next this long fail
/// at once with the same reason instead of each trying again: a database
/// that is down, or a host that does not answer, is not asked once per
/// queued call (each attempt can take the whole connect timeout).
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(500);

/// One pool thread's life after its first connection: each queued call in
/// turn, with a new connection first when the old one is no longer usable
/// (a call finding none, and failing to open one, answers with why; so do
/// the calls of the next [`RECONNECT_BACKOFF`]). A panic in the backend's
/// own code is an answer too: the thread goes on. Ends when every sender
/// is gone and the queue is empty.
fn serve_jobs<B: Backend>(
    backend: &B,
    conn: B::Connection,
    jobs: &crossbeam_channel::Receiver<Job<B::Connection>>,
    counters: &Counters,
) {
    let mut conn = Some(conn);
    let mut refused: Option<(Instant, DbError)> = None;
    for job in jobs {
        if let Some(c) = conn.as_mut() {
            if !catch_unwind(AssertUnwindSafe(|| backend.is_usable(c))).unwrap_or(false) {
                conn = None;
            }
        }
        if conn.is_none() {
            if let Some((at, why)) = &refused {
                if at.elapsed() < RECONNECT_BACKOFF {
                    job(Err(why.clone()));
                    continue;
                }
            }
            match catch_unwind(AssertUnwindSafe(|| backend.connect())) {
                Ok(Ok(c)) => {
                    counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    refused = None;
                    conn = Some(c);
                }
                Ok(Err(e)) => {
                    refused = Some((Instant::now(), e.clone()));
                    job(Err(e));
                    continue;
                }
                Err(payload) => {
                    counters.panicked.fetch_add(1, Ordering::Relaxed);
                    let e = DbError::Panicked(format!(
                        "opening a new connection: {}",
                        panic_text(&*payload)
                    ));
                    refused = Some((Instant::now(), e.clone()));
                    job(Err(e));
                    continue;
                }
            }
        }
        match conn.as_mut() {
            Some(c) => job(Ok(c)),
            None => job(Err(DbError::PoolClosed)),
        }
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

/// The future of one pool call: resolves with the work's result, or the
/// reason it did not run.
#[must_use = "a DbCall does nothing unless awaited (the work runs either way)"]
pub struct DbCall<R> {
    state: CallState<R>,
}

enum CallState<R> {
    Waiting(torsion::oneshot::Receiver<Result<R, DbError>>),
    Failed(Option<DbError>),
}

impl<R> DbCall<R> {
    fn waiting(rx: torsion::oneshot::Receiver<Result<R, DbError>>) -> DbCall<R> {
        DbCall {
            state: CallState::Waiting(rx),
        }
    }

    fn failed(e: DbError) -> DbCall<R> {
        DbCall {
            state: CallState::Failed(Some(e)),
        }
    }
}

impl<R> std::future::Future for DbCall<R> {
    type Output = Result<R, DbError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Both states are Unpin (a oneshot receiver and an error).
        let this = self.get_mut();
        match &mut this.state {
            CallState::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|answer| answer.unwrap_or(Err(DbError::PoolClosed))),
            CallState::Failed(e) => Poll::Ready(Err(e.take().unwrap_or(DbError::PoolClosed))),
        }
    }
}
