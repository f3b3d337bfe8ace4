//! [`AsyncProtocol`]: the [`Protocol`] an async [`Connection`] runs as,
//! and [`ConnectionFn`], the factory of a server whose every connection
//! runs one async function.
//!
//! Its callbacks feed the connection's shared state (`async_conn.rs`) and
//! its [`Protocol::poll_future`] polls the connection's future on the
//! driver's task; the module docs of `async_conn.rs` say how the two meet.
//! Without a future (a client's connection, whose [`Connection`] is used
//! from another task) it only feeds the state and wakes that task.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::BytesMut;

use crate::connection::async_conn::{ConnState, Connection};
use crate::connection::protocol::{Factory, Protocol};
use crate::connection::reason::DisconnectReason;
use crate::connection::transport::Transport;

/// What a connection's future may return: `()`, or a `Result` whose error
/// is logged (at `debug`, with the peer) before the connection closes.
pub trait ConnectionOutcome {
    /// Reports the outcome of the connection with `transport`.
    fn report(self, transport: &Transport);
}

impl ConnectionOutcome for () {
    fn report(self, _transport: &Transport) {}
}

impl<E: fmt::Display> ConnectionOutcome for Result<(), E> {
    fn report(self, transport: &Transport) {
        if let Err(e) = self {
            tracing::debug!(
                shard = transport.shard_id(),
                peer = %transport.peer_addr(),
                "connection ended with an error: {e}"
            );
        }
    }
}

enum Run<S, Fut> {
    /// Not connected yet: the function to start the future with.
    Start(S),
    /// The future, polled on the connection's task.
    Running(Pin<Box<Fut>>),
    /// A client's: its [`Connection`] is used from another task.
    Passive,
    /// Nothing (more) to poll.
    Done,
}

/// A connection whose logic is the future `start(connection)` returns,
/// run on the connection's own task (see the `async_conn.rs` module docs):
/// Twisted's `inlineCallbacks` protocol. Build one per connection, e.g.
/// from a [`FnFactory`](crate::FnFactory) that refuses some peers, or use
/// [`ConnectionFn`] / [`ServerBuilder::serve_fn`](crate::ServerBuilder::serve_fn).
///
/// When the future returns, the connection is closed (flushing first).
pub struct AsyncProtocol<S, Fut> {
    run: Run<S, Fut>,
    state: Option<Rc<ConnState>>,
}

impl<S, Fut> fmt::Debug for AsyncProtocol<S, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let run = match self.run {
            Run::Start(_) => "not started",
            Run::Running(_) => "running",
            Run::Passive => "client",
            Run::Done => "done",
        };
        f.debug_struct("AsyncProtocol")
            .field("future", &run)
            .finish()
    }
}

impl<S, Fut> AsyncProtocol<S, Fut>
where
    S: FnOnce(Connection) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ConnectionOutcome,
{
    /// A connection that runs `start(connection)` once it is made.
    pub fn new(start: S) -> Self {
        AsyncProtocol {
            run: Run::Start(start),
            state: None,
        }
    }
}

/// A client's connection: no future of its own; its [`Connection`] (made
/// with [`AsyncProtocol::passive`]) is used from another task.
pub(crate) type PassiveProtocol =
    AsyncProtocol<fn(Connection) -> std::future::Ready<()>, std::future::Ready<()>>;

impl PassiveProtocol {
    /// The protocol for a connection whose [`Connection`] is used from
    /// another task: returns it with the [`Connection`].
    pub(crate) fn passive(transport: &Transport) -> (Self, Connection) {
        let state = ConnState::new(transport.clone(), false);
        let protocol = AsyncProtocol {
            run: Run::Passive,
            state: Some(state.clone()),
        };
        (protocol, Connection::new(state))
    }
}

impl<S, Fut> AsyncProtocol<S, Fut> {
    fn state(&self) -> Option<&Rc<ConnState>> {
        self.state.as_ref()
    }
}

impl<S, Fut> Protocol for AsyncProtocol<S, Fut>
where
    S: FnOnce(Connection) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ConnectionOutcome,
{
    fn connection_made(&mut self, transport: &Transport) {
        if let Run::Start(_) = self.run {
            let state = ConnState::new(transport.clone(), true);
            self.state = Some(state.clone());
            if let Run::Start(start) = std::mem::replace(&mut self.run, Run::Done) {
                self.run = Run::Running(Box::pin(start(Connection::new(state))));
            }
        }
    }

    fn data_received(&mut self, transport: &Transport, data: &mut BytesMut) {
        let Some(state) = self.state() else { return };
        if !state.polled_by_driver {
            // A client's: read from another task, so the input moves over.
            state.take_input(data);
        } else if !state.wants_input.get() && !data.is_empty() {
            // Polled here: the input stays in the connection's buffer (the
            // future decodes from it in place, see `poll_future`); while
            // the future is busy elsewhere, read no more (TCP holds it).
            transport.pause_reading();
        }
    }

    fn eof_received(&mut self, _transport: &Transport, data: &mut BytesMut) {
        // The future sees the end of its input; the connection stays
        // half-open while it writes, and closes when it returns.
        if let Some(state) = self.state() {
            if !data.is_empty() {
                state.take_input(data);
            }
            state.end_input();
        }
    }

    fn resume_writing(&mut self, _transport: &Transport) {
        if let Some(state) = self.state() {
            state.writable();
        }
    }

    fn shutdown_requested(&mut self, _transport: &Transport) {
        if let Some(state) = self.state() {
            state.shutting_down();
        }
    }

    fn connection_lost(&mut self, reason: &DisconnectReason) {
        if let Some(state) = self.state() {
            state.ended(reason);
        }
    }

    fn poll_future(
        &mut self,
        transport: &Transport,
        input: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let Run::Running(future) = &mut self.run else {
            return Poll::Ready(());
        };
        // The connection's input becomes the future's for this poll (a
        // swap, no copy), and what it leaves goes back, so the next read
        // appends to it in place.
        let state = self
            .state
            .as_ref()
            .expect("a running connection has its state");
        lend_input(state, input);
        let polled = future.as_mut().poll(cx);
        std::mem::swap(&mut *state.input.borrow_mut(), input);
        match polled {
            Poll::Ready(outcome) => {
                self.run = Run::Done;
                outcome.report(transport);
                transport.close();
                Poll::Ready(())
            }
            Poll::Pending => {
                // Busy with something other than reading, with input
                // waiting (back in `input`): read no more until it asks
                // (TCP holds the rest).
                if !state.wants_input.get() && !input.is_empty() && !transport.is_reading_paused() {
                    transport.pause_reading();
                }
                Poll::Pending
            }
        }
    }
}

/// Moves the connection's unconsumed `input` into the shared state for a
/// poll: a swap when the state holds nothing (always, but after an EOF's
/// leftover), else appended after what it holds.
fn lend_input(state: &ConnState, input: &mut BytesMut) {
    let mut lent = state.input.borrow_mut();
    if lent.is_empty() {
        std::mem::swap(&mut *lent, input);
    } else if !input.is_empty() {
        lent.extend_from_slice(input);
        input.clear();
    }
}

/// A [`Factory`] whose every connection runs the async function `f`
/// (`ConnectionFn::new(|conn| async move { … })`), one instance per shard:
/// what [`ServerBuilder::serve_fn`](crate::ServerBuilder::serve_fn) builds.
/// Per-shard state captured by `f` needs no lock.
pub struct ConnectionFn<F> {
    f: Rc<F>,
}

impl<F> fmt::Debug for ConnectionFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionFn").finish_non_exhaustive()
    }
}

impl<F> ConnectionFn<F> {
    /// The factory of connections that each run `f(connection)`.
    pub fn new(f: F) -> Self {
        ConnectionFn { f: Rc::new(f) }
    }
}

/// The per-connection start function of a [`ConnectionFn`].
type StartWith<F> = Box<dyn FnOnce(Connection) -> <F as ConnectionHandler>::Future>;

/// An async function of a [`Connection`] (any `Fn(Connection) -> impl
/// Future`), as [`ConnectionFn`] calls it.
pub trait ConnectionHandler: 'static {
    /// The future one connection runs.
    type Future: Future<Output = Self::Outcome> + 'static;
    /// What it returns.
    type Outcome: ConnectionOutcome;
    /// Starts the connection's future.
    fn call(&self, conn: Connection) -> Self::Future;
}

impl<F, Fut> ConnectionHandler for F
where
    F: Fn(Connection) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: ConnectionOutcome,
{
    type Future = Fut;
    type Outcome = Fut::Output;
    fn call(&self, conn: Connection) -> Fut {
        self(conn)
    }
}

impl<F: ConnectionHandler> Factory for ConnectionFn<F> {
    type Protocol = AsyncProtocol<StartWith<F>, F::Future>;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Self::Protocol> {
        let f = self.f.clone();
        let start: StartWith<F> = Box::new(move |conn| f.call(conn));
        Some(AsyncProtocol::new(start))
    }
}
