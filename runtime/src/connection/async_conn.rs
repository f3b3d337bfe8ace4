//! [`Connection`]: a connection's logic written top to bottom, as `async`
//! code (Twisted's `inlineCallbacks` / `async def` over a transport).
//!
//! ```no_run
//! use torsion::Server;
//!
//! // Echo, as a loop.
//! let server = Server::builder()
//!     .listen_on("tcp:7000:interface=127.0.0.1")?
//!     .serve_fn(|mut conn| async move {
//!         while let Some(bytes) = conn.read().await {
//!             if conn.write_bytes(bytes).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })?;
//! # server.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With a codec, `conn.framed(codec)` gives [`Frames`](crate::Frames)
//! (`frames.rs`, which adds `framed` to `Connection`, so this file does not
//! import it): `next().await`
//! for each frame, `send(payload).await` to frame and write one.
//!
//! # How the future and the driver meet
//!
//! There is no second I/O path. A connection is still one socket, one
//! [`Transport`] and one driver task running the connection's state
//! machine (`machine.rs`, `driver.rs`); what runs on it is an
//! [`AsyncProtocol`](crate::AsyncProtocol), a [`Protocol`](crate::Protocol)
//! whose callbacks feed a shared [`ConnState`] and whose
//! [`poll_future`](crate::Protocol::poll_future) polls the user's future —
//! on the driver's own task, with the driver's own context:
//!
//! * **reads**: the driver reads as for any protocol; `data_received` moves
//!   the bytes into the shared buffer (no copy when it is empty) and the
//!   machine polls the future, which decodes frames from it. While the
//!   future is busy with something else (a timer, a call to another shard)
//!   and input is already waiting, reading pauses, so unread input stays in
//!   the kernel (TCP back-pressure) and what is buffered stays bounded by one
//!   read plus a frame in progress, besides
//!   [`FlowLimits::max_read_buffer`](crate::FlowLimits::max_read_buffer).
//! * **writes** go to the transport as from a callback: queued, and sent in
//!   one `sendmsg` when the poll returns. A write that finds the queue above
//!   the high-water mark waits for `resume_writing` (back-pressure without
//!   callbacks).
//! * **waiting** on anything else (timers, [`Rpc`](crate::Rpc) replies,
//!   [`defer_to_thread`](crate::defer_to_thread)) registers the driver's
//!   waker, so the driver is woken and polls the future again.
//!
//! So an async echo costs what a callback echo costs: no task hand-off, no
//! extra wake-up, the same batching. The same machine gives it the idle
//! timeout, the caps, the read-rate limit, the slow-consumer cut, TLS,
//! stats and metrics; a panic in the future ends its connection with
//! [`DisconnectReason::Panic`], never the shard.
//!
//! A client's [`Connection`] ([`crate::client::connect`]) is the same state
//! used from another task: reads and writes there register that task's
//! waker instead, and the driver wakes it.
//!
//! # Ends
//!
//! The peer's EOF ends the input: reads return `None` (a frame cut short
//! is [`FrameError::Truncated`](crate::codec::FrameError::Truncated)), and
//! the connection stays half-open while the future writes. A server
//! shutdown ends the input too, after what was already received: the future
//! answers the requests it has, its loop ends, and the connection closes
//! after flushing, within the drain deadline. When the future returns the
//! connection is closed (flushing first). If the connection ends first
//! (reset, timeout, abort), reads return `None` and writes fail with
//! [`WriteError::Closed`]; the future is polled on until it returns, so
//! code after its loop (releasing a name, say) still runs.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use crate::clock::Clock;
use crate::connection::reason::DisconnectReason;
use crate::connection::transport::{Transport, WriteError};

/// What the driver side and the async side share: input not yet read, how
/// the input ended, and the wakers of a task that waits (a client's; a
/// server connection's future is polled by the driver and needs none).
pub(crate) struct ConnState {
    pub(crate) transport: Transport,
    /// Received, not yet read.
    pub(crate) input: RefCell<BytesMut>,
    /// The peer sent EOF.
    pub(crate) eof: Cell<bool>,
    /// The server is shutting down: no more input after what is buffered.
    pub(crate) shutdown: Cell<bool>,
    /// Why the connection ended, once it has.
    pub(crate) lost: RefCell<Option<DisconnectReason>>,
    /// The future last asked for input it did not find (reading goes on);
    /// false while it is busy elsewhere (reading pauses if input waits).
    pub(crate) wants_input: Cell<bool>,
    /// The future is polled by the driver (a server connection): no waker
    /// needed, every event is followed by a poll.
    pub(crate) polled_by_driver: bool,
    reader: RefCell<Option<Waker>>,
    writer: RefCell<Option<Waker>>,
    shutdown_waiter: RefCell<Option<Waker>>,
}

impl ConnState {
    pub(crate) fn new(transport: Transport, polled_by_driver: bool) -> Rc<ConnState> {
        Rc::new(ConnState {
            transport,
            input: RefCell::new(BytesMut::new()),
            eof: Cell::new(false),
            shutdown: Cell::new(false),
            lost: RefCell::new(None),
            wants_input: Cell::new(true),
            polled_by_driver,
            reader: RefCell::new(None),
            writer: RefCell::new(None),
            shutdown_waiter: RefCell::new(None),
        })
    }

    /// No more input will come: EOF, shutdown, or the end.
    pub(crate) fn input_ended(&self) -> bool {
        self.eof.get() || self.shutdown.get() || self.lost.borrow().is_some()
    }

    /// Input arrived (from `data_received`): takes it (no copy when the
    /// buffer is empty), enforces the read bound, wakes a waiting reader and
    /// pauses reading if nobody is asking for input or a quarter of the
    /// bound waits to be read.
    pub(crate) fn take_input(&self, data: &mut BytesMut) {
        {
            let mut input = self.input.borrow_mut();
            if input.is_empty() {
                std::mem::swap(&mut *input, data);
            } else {
                input.extend_from_slice(data);
                data.clear();
            }
            let limit = self.transport.limits().max_read_buffer;
            if input.len() > limit {
                tracing::debug!(
                    shard = self.transport.shard_id(),
                    peer = %self.transport.peer_addr(),
                    buffered = input.len(),
                    limit,
                    "unread input over the read buffer limit; closing"
                );
                self.transport.abort_with(DisconnectReason::ReadBufferFull);
                return;
            }
        }
        // The reader runs on another task, which may get its turn only
        // after several more reads: past a quarter of the limit, reading
        // waits for it (its next `read_with` that needs more resumes it),
        // rather than buffer a fast peer's bytes up to the limit.
        let read_ahead = (self.transport.limits().max_read_buffer / 4).max(1);
        if !self.wants_input.get() || self.input.borrow().len() >= read_ahead {
            self.transport.pause_reading();
        }
        wake(&self.reader);
    }

    /// The peer's EOF.
    pub(crate) fn end_input(&self) {
        self.eof.set(true);
        wake(&self.reader);
    }

    /// The server is shutting down.
    pub(crate) fn shutting_down(&self) {
        self.shutdown.set(true);
        // No more reads from the socket; what is buffered is still read.
        self.transport.pause_reading();
        wake(&self.reader);
        wake(&self.shutdown_waiter);
    }

    /// The queue drained to the low-water mark.
    pub(crate) fn writable(&self) {
        wake(&self.writer);
    }

    /// The connection ended.
    pub(crate) fn ended(&self, reason: &DisconnectReason) {
        *self.lost.borrow_mut() = Some(reason.clone());
        wake(&self.reader);
        wake(&self.writer);
        wake(&self.shutdown_waiter);
    }

    /// Registers the waiting task (unless the driver polls it anyway).
    fn wait_in(&self, slot: &RefCell<Option<Waker>>, cx: &Context<'_>) {
        if self.polled_by_driver {
            return;
        }
        let mut slot = slot.borrow_mut();
        match slot.as_ref() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
    }

    /// The future asks for input it does not have: reading must go on.
    fn want_input(&self, cx: &Context<'_>) {
        self.wants_input.set(true);
        if self.transport.is_reading_paused() && !self.input_ended() {
            self.transport.resume_reading();
        }
        self.wait_in(&self.reader, cx);
    }

    /// Runs `decode` over the buffered input until it yields an item,
    /// waiting for input as needed; `at_end` is true once no more will come
    /// (`decode` then frames what is left, or reports it).
    pub(crate) fn poll_decode<T, E>(
        &self,
        cx: &mut Context<'_>,
        decode: &mut impl FnMut(&mut BytesMut, bool) -> Result<Option<T>, E>,
    ) -> Poll<Option<Result<T, E>>> {
        let at_end = self.input_ended();
        let result = {
            let mut input = self.input.borrow_mut();
            if at_end && input.is_empty() {
                return Poll::Ready(None);
            }
            decode(&mut input, at_end && !self.shutdown_only())
        };
        match result {
            Ok(Some(item)) => {
                self.wants_input.set(false);
                Poll::Ready(Some(Ok(item)))
            }
            Err(e) => {
                self.wants_input.set(false);
                Poll::Ready(Some(Err(e)))
            }
            Ok(None) if at_end => {
                // A shutdown (not an EOF) with a frame in progress: that
                // request never came whole; nothing more is read.
                self.input.borrow_mut().clear();
                Poll::Ready(None)
            }
            Ok(None) => {
                self.want_input(cx);
                Poll::Pending
            }
        }
    }

    /// Input ended by the shutdown alone (the peer did not send EOF and the
    /// connection is still open): a partial frame is not the peer's error.
    fn shutdown_only(&self) -> bool {
        self.shutdown.get() && !self.eof.get() && self.lost.borrow().is_none()
    }

    /// Waits until the outbound queue is below the high-water mark (or the
    /// connection is closing).
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<Result<(), WriteError>> {
        if self.transport.is_closing() {
            return Poll::Ready(Err(WriteError::Closed));
        }
        if !self.transport.is_writing_paused() {
            return Poll::Ready(Ok(()));
        }
        self.wait_in(&self.writer, cx);
        Poll::Pending
    }
}

fn wake(slot: &RefCell<Option<Waker>>) {
    if let Some(w) = slot.borrow_mut().take() {
        w.wake();
    }
}

/// One connection, driven by `async` code: read frames or bytes, write
/// (waiting while the peer is behind), close. A server's connections get one
/// from [`ServerBuilder::serve_fn`](crate::ServerBuilder::serve_fn) or
/// [`AsyncProtocol`](crate::AsyncProtocol); a client gets one from
/// [`client::connect`](crate::client::connect). See the module docs for how
/// it runs.
///
/// Dropping it closes the connection (flushing first), as does returning
/// from a server connection's future.
pub struct Connection {
    state: Rc<ConnState>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("transport", &self.state.transport)
            .field("buffered_input", &self.state.input.borrow().len())
            .field("eof", &self.state.eof.get())
            .field("lost", &self.state.lost.borrow())
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.state.transport.close();
    }
}

impl Connection {
    pub(crate) fn new(state: Rc<ConnState>) -> Connection {
        Connection { state }
    }

    /// The next bytes received (everything buffered, at least one byte),
    /// or `None` once no more will come (the peer's EOF, the server's
    /// shutdown, or the connection's end).
    pub async fn read(&mut self) -> Option<Bytes> {
        let next = self
            .read_with(|buf, _at_end| {
                let bytes = (!buf.is_empty()).then(|| buf.split().freeze());
                Ok::<_, std::convert::Infallible>(bytes)
            })
            .await;
        next.and_then(Result::ok)
    }

    /// Waits until `decode(buffer, at_end)` takes an item off the buffered
    /// input: it is called with what has been received and not yet taken,
    /// and again each time more arrives; `at_end` says no more will come.
    /// `None` once the input ended with nothing left. The primitive under
    /// [`Connection::read`] and [`Frames`](crate::Frames).
    pub async fn read_with<T, E>(
        &mut self,
        mut decode: impl FnMut(&mut BytesMut, bool) -> Result<Option<T>, E>,
    ) -> Option<Result<T, E>> {
        let state = &self.state;
        std::future::poll_fn(|cx| state.poll_decode(cx, &mut decode)).await
    }

    /// Queues `data` (copied), then waits while the outbound queue is above
    /// the high-water mark — the peer is behind — until it drains to the
    /// low-water mark. Fails once the connection is closing.
    pub async fn write(&self, data: &[u8]) -> Result<(), WriteError> {
        self.state.transport.write(data)?;
        self.writable().await
    }

    /// Like [`Connection::write`], queueing `data` by reference (no copy
    /// for large payloads).
    pub async fn write_bytes(&self, data: Bytes) -> Result<(), WriteError> {
        self.state.transport.write_bytes(data)?;
        self.writable().await
    }

    /// Resolves once the outbound queue is below the high-water mark.
    pub async fn writable(&self) -> Result<(), WriteError> {
        if !self.state.transport.is_writing_paused() {
            return if self.state.transport.is_closed() {
                Err(WriteError::Closed)
            } else {
                Ok(())
            };
        }
        let state = &self.state;
        std::future::poll_fn(|cx| state.poll_writable(cx)).await
    }

    /// Closes after flushing (Twisted's `loseConnection`); reads end.
    pub fn close(&self) {
        self.state.transport.close();
    }

    /// Closes at once with a reset, discarding what is queued.
    pub fn abort(&self) {
        self.state.transport.abort();
    }

    /// The connection's transport: write without waiting, cork, set the
    /// idle timeout, mark work [`in flight`](Transport::in_flight)… (clone
    /// it to write from elsewhere on the shard).
    pub fn transport(&self) -> &Transport {
        &self.state.transport
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.state.transport.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.state.transport.local_addr()
    }

    /// The shard this connection lives on.
    pub fn shard_id(&self) -> usize {
        self.state.transport.shard_id()
    }

    /// The clock to sleep and time out on (real on a shard, manual in the
    /// test kit).
    pub fn clock(&self) -> Clock {
        self.state.transport.clock()
    }

    /// True once the server began shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.state.shutdown.get()
    }

    /// Resolves when the server begins shutting down (at once if it has),
    /// or when the connection ends.
    pub async fn shutdown_requested(&self) {
        let state = &self.state;
        std::future::poll_fn(|cx| {
            if state.shutdown.get() || state.lost.borrow().is_some() {
                return Poll::Ready(());
            }
            if !state.polled_by_driver {
                *state.shutdown_waiter.borrow_mut() = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Why the connection ended, once it has.
    pub fn lost_reason(&self) -> Option<DisconnectReason> {
        self.state.lost.borrow().clone()
    }

    /// Whether no more input will come: the peer's EOF was seen, the
    /// server is shutting down, or the connection ended. (A connection whose
    /// reading is paused sees a later EOF only once it reads again.)
    pub fn is_input_ended(&self) -> bool {
        self.state.input_ended()
    }

    /// Bytes received and not read yet.
    pub fn buffered_input(&self) -> usize {
        self.state.input.borrow().len()
    }

    pub(crate) fn state(&self) -> &Rc<ConnState> {
        &self.state
    }
}
