//! The per-shard connection pool: for each [`Origin`], idle keep-alive
//! connections (most recently used first), a count of the open ones, and a
//! queue of requests waiting for one when the origin is at its cap
//! (Twisted's `HTTPConnectionPool`, with the queue Twisted #7614 asks for).
//!
//! # Design
//!
//! One pool per [`super::HttpClient`], used from one shard: `Rc` and
//! `RefCell`, no locks, never borrowed across an `.await`. A request holds a
//! [`PooledConnection`] — a connection, or first only the right to open one
//! (a *slot*) — from the moment it is admitted until its response body
//! ends; dropping it at any point (a timeout, a cancelled request, an error)
//! gives the slot back and closes a connection whose state is unknown, so
//! a cancelled request never leaks a slot and never leaves a connection
//! with a half-read response in the pool. A freed slot or a reusable
//! connection goes straight to the first waiter (FIFO); a waiter that is
//! dropped after being handed one passes it on.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use torsion::{Clock, Connection};

use super::target::Origin;

/// What the pool has done, for metrics and tests (one client's pool).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections opened.
    pub opened: u64,
    /// Requests sent on a connection that had served one before.
    pub reused: u64,
    /// Requests that had to wait because their origin was at its cap.
    pub queued: u64,
    /// Connections open now (idle or in use), all origins.
    pub open: usize,
    /// Idle connections now, all origins.
    pub idle: usize,
}

/// One origin's connections.
#[derive(Default)]
struct HostPool {
    /// Open connections (in use, idle, or being opened).
    open: usize,
    /// Idle connections, with when they became idle (last = most recent).
    idle: Vec<(Connection, Instant)>,
    waiters: VecDeque<Rc<Waiter>>,
}

/// What a waiter is handed.
enum Handed {
    /// A reusable connection.
    Connection(Connection),
    /// The right to open one.
    Slot,
}

#[derive(Default)]
struct Waiter {
    handed: RefCell<Option<Handed>>,
    waker: RefCell<Option<Waker>>,
}

impl Waiter {
    fn hand(&self, what: Handed) {
        *self.handed.borrow_mut() = Some(what);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// The pool's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolLimits {
    pub max_per_origin: usize,
    pub max_idle_per_origin: usize,
    pub idle_timeout: Duration,
}

/// The pool itself (shared by a client's clones).
pub(crate) struct Pool {
    hosts: RefCell<HashMap<Origin, HostPool>>,
    limits: PoolLimits,
    clock: Clock,
    opened: Cell<u64>,
    reused: Cell<u64>,
    queued: Cell<u64>,
}

impl Pool {
    pub fn new(limits: PoolLimits, clock: Clock) -> Rc<Pool> {
        Rc::new(Pool {
            hosts: RefCell::default(),
            limits: PoolLimits {
                max_per_origin: limits.max_per_origin.max(1),
                ..limits
            },
            clock,
            opened: Cell::new(0),
            reused: Cell::new(0),
            queued: Cell::new(0),
        })
    }

    pub fn stats(&self) -> PoolStats {
        let hosts = self.hosts.borrow();
        PoolStats {
            opened: self.opened.get(),
            reused: self.reused.get(),
            queued: self.queued.get(),
            open: hosts.values().map(|h| h.open).sum(),
            idle: hosts.values().map(|h| h.idle.len()).sum(),
        }
    }

    /// Admits a request to `origin`: an idle connection, a slot to open
    /// one, or (at the cap) a place in the queue until one of those is
    /// handed over. `reuse` false: never an idle connection (idle ones are
    /// closed to make room at the cap) — for a request sent again because a
    /// reused connection had closed.
    pub async fn acquire(self: &Rc<Pool>, origin: &Origin, reuse: bool) -> PooledConnection {
        let waiter = {
            let mut hosts = self.hosts.borrow_mut();
            let host = hosts.entry(origin.clone()).or_default();
            let now = self.clock.now();
            if reuse {
                while let Some((conn, since)) = host.idle.pop() {
                    if now.saturating_duration_since(since) < self.limits.idle_timeout
                        && usable(&conn)
                    {
                        self.reused.set(self.reused.get() + 1);
                        return self.lease(origin, Some(conn), true);
                    }
                    host.open -= 1;
                }
            } else {
                // Room for a new connection, closing idle ones for it.
                while host.open >= self.limits.max_per_origin && host.idle.pop().is_some() {
                    host.open -= 1;
                }
            }
            if host.open < self.limits.max_per_origin {
                host.open += 1;
                return self.lease(origin, None, false);
            }
            self.queued.set(self.queued.get() + 1);
            let waiter = Rc::new(Waiter::default());
            host.waiters.push_back(waiter.clone());
            waiter
        };
        let handed = Waiting {
            pool: self.clone(),
            origin: origin.clone(),
            waiter,
            done: false,
        }
        .await;
        match handed {
            Handed::Connection(conn) if reuse => {
                self.reused.set(self.reused.get() + 1);
                self.lease(origin, Some(conn), true)
            }
            // Not wanted: closed, its place taken for a new one.
            Handed::Connection(_) | Handed::Slot => self.lease(origin, None, false),
        }
    }

    fn lease(
        self: &Rc<Pool>,
        origin: &Origin,
        conn: Option<Connection>,
        reused: bool,
    ) -> PooledConnection {
        PooledConnection {
            pool: self.clone(),
            origin: origin.clone(),
            conn,
            reused,
            given_back: false,
        }
    }

    /// Takes back a connection (`Some` and reusable) or a slot.
    fn give_back(&self, origin: &Origin, conn: Option<Connection>) {
        let mut hosts = self.hosts.borrow_mut();
        let Some(host) = hosts.get_mut(origin) else {
            return;
        };
        if let Some(conn) = conn.filter(usable) {
            if let Some(w) = host.waiters.pop_front() {
                w.hand(Handed::Connection(conn));
                return;
            }
            if host.idle.len() < self.limits.max_idle_per_origin {
                host.idle.push((conn, self.clock.now()));
                return;
            }
        }
        host.open -= 1;
        if let Some(w) = host.waiters.pop_front() {
            host.open += 1;
            w.hand(Handed::Slot);
        }
        if host.open == 0 && host.waiters.is_empty() {
            hosts.remove(origin);
        }
    }

    fn note_opened(&self) {
        self.opened.set(self.opened.get() + 1);
    }
}

/// Whether an idle connection can carry a request: not ended, nothing
/// unread on it (a server that sent bytes unasked is not trusted again).
fn usable(conn: &Connection) -> bool {
    !conn.is_input_ended() && conn.buffered_input() == 0
}

/// A request's hold on its origin: a connection, or the right to open one.
/// Dropped, it gives the slot back and closes the connection; only
/// [`PooledConnection::finish`] with `reusable` keeps the connection.
pub(crate) struct PooledConnection {
    pool: Rc<Pool>,
    origin: Origin,
    conn: Option<Connection>,
    /// The connection served a request before.
    pub reused: bool,
    /// `finish` gave the slot (and perhaps the connection) back.
    given_back: bool,
}

impl PooledConnection {
    /// The connection, once there is one.
    pub fn connection(&mut self) -> Option<&mut Connection> {
        self.conn.as_mut()
    }

    /// Sets the connection opened on this slot.
    pub fn opened(&mut self, conn: Connection) {
        self.pool.note_opened();
        self.conn = Some(conn);
    }

    /// Ends the lease: a `reusable` connection goes back to the pool.
    pub fn finish(mut self, reusable: bool) {
        let conn = self.conn.take().filter(|_| reusable);
        self.given_back = true;
        self.pool.give_back(&self.origin, conn);
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if self.given_back {
            return;
        }
        // The connection (if any) is closed when dropped here.
        drop(self.conn.take());
        self.pool.give_back(&self.origin, None);
    }
}

/// Waiting in an origin's queue.
struct Waiting {
    pool: Rc<Pool>,
    origin: Origin,
    waiter: Rc<Waiter>,
    done: bool,
}

impl Future for Waiting {
    type Output = Handed;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Handed> {
        let handed = self.waiter.handed.borrow_mut().take();
        match handed {
            Some(h) => {
                self.done = true;
                Poll::Ready(h)
            }
            None => {
                *self.waiter.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let handed = self.waiter.handed.borrow_mut().take();
        match handed {
            // Handed over but never taken: pass it on.
            Some(Handed::Connection(conn)) => self.pool.give_back(&self.origin, Some(conn)),
            Some(Handed::Slot) => self.pool.give_back(&self.origin, None),
            None => {
                if let Some(host) = self.pool.hosts.borrow_mut().get_mut(&self.origin) {
                    host.waiters.retain(|w| !Rc::ptr_eq(w, &self.waiter));
                }
            }
        }
    }
}
