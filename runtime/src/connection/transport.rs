//! The transport handle protocols write to (Twisted's `ITransport`).
//!
//! A [`Transport`] is a cheap `Rc` handle on one connection's outbound state:
//! the queue of bytes not yet written, the close/abort request, the flow
//! control marks and the connection's addresses. It is deliberately *not*
//! the socket: the socket is pumped by the connection driver (`driver.rs`),
//! and the test kit drives the very same handle (and the same state
//! machine, `machine.rs`) from memory, so protocol code runs unchanged on
//! both.
//!
//! # How writes are batched
//!
//! `write` only appends: small writes are copied into one growing tail
//! buffer, and `write_bytes` of a large `Bytes` is queued by reference (no
//! copy). Nothing is sent from inside a protocol callback. When the callback
//! returns, the driver sends the whole queue with one vectored `sendmsg`
//! (up to 64 slices; `send` for a single chunk), so a callback that writes
//! ten times costs one syscall.
//! Writes made outside the driver (timers, other tasks) wake the driver,
//! which flushes them on its next turn.
//!
//! A protocol that writes to a transport from many events in a row (a chat
//! room fanning lines out) can *cork* it ([`Transport::cork`], Linux's
//! `TCP_CORK` in user space): writes queue but are not sent, and the driver
//! is not woken for them, until [`Transport::uncork`] — so lines from
//! several events leave in one `sendmsg`. A cork never holds back more than
//! the high-water mark, nor a close: past either, the queue is sent as if
//! uncorked, so flow control and closing work unchanged.
//!
//! # Flow control
//!
//! A write that takes the queue above the high-water mark (default 64 KiB)
//! marks the transport paused for writing at once
//! ([`Transport::is_writing_paused`], as Twisted's `write` pauses its
//! producer on the spot); the driver then calls the protocol's
//! `pause_writing`, and once the queue drains to the low-water mark (default
//! 16 KiB) `resume_writing` — Twisted's producer/consumer. Every
//! `pause_writing` is followed by one `resume_writing` (or by
//! `connection_lost`), even when the queue drained in between.
//!
//! # The hard cap: judged on what the peer does not read
//!
//! The hard cap (default 4 MiB) is judged by the driver *after* it has
//! offered the queue to the socket: when a flush leaves more than the cap
//! queued because the kernel will take no more (`EAGAIN`), the peer is not
//! reading, and the connection is aborted with
//! [`DisconnectReason::SlowConsumer`]. A burst written between two flushes
//! (fan-out from many senders in one turn) therefore never cuts a reader
//! that has room in its socket buffer. So that memory stays bounded whatever
//! a protocol does between two flushes, a single write that would take the
//! queue past **twice** the hard cap is refused at once, with the same
//! abort. Nothing is lost silently: a write the transport cannot take
//! returns a [`WriteError`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};

use crate::clock::Clock;
use crate::connection::reason::DisconnectReason;

/// Limits on one connection's buffers. The defaults suit request/response
/// and chat traffic; [`ServerBuilder::limits`](crate::ServerBuilder::limits)
/// changes them per server. Build one from `Default` and the `with_*`
/// setters (`FlowLimits::default().with_hard_cap(1 << 20)`): more limits
/// may come, so the struct cannot be written out literally outside torsion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowLimits {
    /// Queue size above which `pause_writing` is called. Default 64 KiB.
    pub high_water: usize,
    /// Queue size at or below which `resume_writing` follows. Default 16 KiB.
    pub low_water: usize,
    /// Queue size that aborts the connection as a slow consumer. Default 4 MiB.
    pub hard_cap: usize,
    /// Most unconsumed input a protocol may leave in its read buffer before
    /// the connection is closed ([`DisconnectReason::ReadBufferFull`]).
    /// Default 1 MiB.
    pub max_read_buffer: usize,
    /// After `close` has flushed and sent FIN, how long to keep reading (and
    /// discarding) until the peer closes too, so unread input does not turn
    /// the close into a reset that destroys data in flight. Default 2 s.
    pub linger: Duration,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            high_water: 64 * 1024,
            low_water: 16 * 1024,
            hard_cap: 4 * 1024 * 1024,
            max_read_buffer: 1024 * 1024,
            linger: Duration::from_secs(2),
        }
    }
}

crate::with_setters!(FlowLimits {
    with_high_water => high_water: usize,
    with_low_water => low_water: usize,
    with_hard_cap => hard_cap: usize,
    with_max_read_buffer => max_read_buffer: usize,
    with_linger => linger: Duration,
});

/// Why a write was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The connection is closing or closed; the data was not queued.
    #[error("the connection is closing or closed")]
    Closed,
    /// The write would pass the hard cap; the connection is being aborted as
    /// a slow consumer and its queue was discarded.
    #[error("outbound queue over its hard cap: connection aborted as a slow consumer")]
    SlowConsumer,
}

/// Copy writes smaller than this into the tail buffer instead of queueing
/// them by reference.
const COPY_THRESHOLD: usize = 512;

#[derive(Default)]
struct Outbound {
    /// Sealed chunks, oldest first.
    queue: VecDeque<Bytes>,
    /// Small writes not yet sealed into `queue`.
    tail: BytesMut,
    /// Total bytes in `queue` and `tail`.
    len: usize,
}

impl Outbound {
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let chunk = self.tail.split().freeze();
            self.queue.push_back(chunk);
        }
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.tail.clear();
        self.len = 0;
    }

    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let front = self.queue.front_mut().expect("advance past queued data");
            if n >= front.len() {
                n -= front.len();
                self.queue.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}

pub(crate) struct TransportCore {
    peer: SocketAddr,
    local: SocketAddr,
    shard_id: usize,
    clock: Clock,
    limits: FlowLimits,
    fd: Cell<Option<RawFd>>,
    out: RefCell<Outbound>,
    close_requested: Cell<bool>,
    abort_reason: RefCell<Option<DisconnectReason>>,
    closed: Cell<bool>,
    reading_paused: Cell<bool>,
    /// Reading is held back by the server's read-rate limit (not idleness).
    throttled: Cell<bool>,
    /// A write took the queue above the high-water mark; cleared by the
    /// driver when it has drained to the low-water mark.
    writing_paused: Cell<bool>,
    shutdown_requested: Cell<bool>,
    /// Output is held back until `uncork` (below the high-water mark).
    corked: Cell<bool>,
    /// True while the driver is inside a protocol callback or flushing: no
    /// need to wake it then.
    driving: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    idle: RefCell<IdleTimer>,
    /// Work in flight on this connection ([`Transport::in_flight`] guards).
    in_flight: Cell<usize>,
    /// Close once no work is in flight ([`Transport::close_when_idle`]).
    close_when_idle: Cell<bool>,
}

/// The idle timeout: a period, the last activity, and one pending call that
/// re-arms itself lazily (a busy connection costs one timer per period, not
/// one per read).
#[derive(Default)]
struct IdleTimer {
    period: Option<Duration>,
    last_activity: Option<std::time::Instant>,
    call: Option<crate::clock::DelayedCall>,
}

/// A handle on one connection's transport: write, close, abort, inspect.
///
/// Cloning is cheap (`Rc`); every clone is the same connection. A transport
/// is `!Send`: it belongs to the shard that owns the connection.
#[derive(Clone)]
pub struct Transport {
    pub(crate) core: Rc<TransportCore>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("peer", &self.core.peer)
            .field("local", &self.core.local)
            .field("shard", &self.core.shard_id)
            .field("buffered", &self.buffered_len())
            .field("closing", &self.is_closing())
            .finish()
    }
}

impl Transport {
    pub(crate) fn new(
        peer: SocketAddr,
        local: SocketAddr,
        shard_id: usize,
        clock: Clock,
        limits: FlowLimits,
        fd: Option<RawFd>,
    ) -> Transport {
        Transport {
            core: Rc::new(TransportCore {
                peer,
                local,
                shard_id,
                clock,
                limits,
                fd: Cell::new(fd),
                out: RefCell::new(Outbound::default()),
                close_requested: Cell::new(false),
                abort_reason: RefCell::new(None),
                closed: Cell::new(false),
                reading_paused: Cell::new(false),
                throttled: Cell::new(false),
                writing_paused: Cell::new(false),
                shutdown_requested: Cell::new(false),
                corked: Cell::new(false),
                driving: Cell::new(false),
                waker: RefCell::new(None),
                idle: RefCell::new(IdleTimer::default()),
                in_flight: Cell::new(0),
                close_when_idle: Cell::new(false),
            }),
        }
    }

    /// Marks work in flight on this connection (a request being served on
    /// a timer, another shard or the blocking pool) until the returned
    /// guard is dropped. A shutdown then lets it finish: the default
    /// `shutdown_requested` ([`Transport::close_when_idle`]) stops reading
    /// at once but closes only when no guard is left (and what was written
    /// is flushed), up to the drain deadline.
    pub fn in_flight(&self) -> InFlight {
        self.core.in_flight.set(self.core.in_flight.get() + 1);
        InFlight {
            core: self.core.clone(),
        }
    }

    /// Work marked with [`Transport::in_flight`] and not finished yet.
    pub fn in_flight_count(&self) -> usize {
        self.core.in_flight.get()
    }

    /// Stops reading now and closes (flushing first) once no work is in
    /// flight ([`Transport::in_flight`]): at once when there is none. What
    /// a protocol's `shutdown_requested` does by default, so a request
    /// being served when the server stops still gets its answer.
    pub fn close_when_idle(&self) {
        self.pause_reading();
        if self.core.in_flight.get() == 0 {
            self.close();
        } else {
            self.core.close_when_idle.set(true);
        }
    }

    /// Closes the connection ([`DisconnectReason::TimedOut`], with a reset)
    /// after `timeout` with no reads or writes; `None` cancels (Twisted's
    /// `TimeoutMixin.setTimeout`). The server's `--idle-timeout` sets this
    /// for every new connection; protocols may change it at any time.
    pub fn set_idle_timeout(&self, timeout: Option<Duration>) {
        {
            let mut idle = self.core.idle.borrow_mut();
            if let Some(call) = idle.call.take() {
                call.cancel();
            }
            idle.period = timeout;
            idle.last_activity = Some(self.core.clock.now());
        }
        if let Some(period) = timeout {
            arm_idle(&self.core, period);
        }
    }

    /// The idle timeout in force, if any.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.core.idle.borrow().period
    }

    /// Counts as activity now (Twisted's `resetTimeout`); reads and writes
    /// on the socket do this by themselves.
    pub fn reset_idle_timeout(&self) {
        self.core.touch();
    }

    /// Queues `data` to be sent (Twisted's `transport.write`). Copies it.
    pub fn write(&self, data: &[u8]) -> Result<(), WriteError> {
        self.write_many(&[data])
    }

    /// Queues `data` shared with other transports (a line fanned out to
    /// many readers): a small payload is copied and the handle not touched,
    /// a large one is queued by reference. Cheaper than
    /// `write_bytes(data.clone())` for small payloads, whose clone and drop
    /// cost two atomic reference-count updates per reader.
    pub fn write_shared(&self, data: &Bytes) -> Result<(), WriteError> {
        if data.len() < COPY_THRESHOLD {
            self.write(data)
        } else {
            self.write_bytes(data.clone())
        }
    }

    /// Queues `data` by reference: no copy for large payloads, and one
    /// allocation can fan out to many connections.
    pub fn write_bytes(&self, data: Bytes) -> Result<(), WriteError> {
        if data.len() < COPY_THRESHOLD {
            return self.write(&data);
        }
        self.admit(data.len())?;
        {
            let mut out = self.core.out.borrow_mut();
            out.seal_tail();
            out.len += data.len();
            out.queue.push_back(data);
        }
        self.written();
        Ok(())
    }

    /// Queues several pieces in order, copied into the tail buffer
    /// (Twisted's `writeSequence`); all or none.
    pub fn write_many(&self, pieces: &[&[u8]]) -> Result<(), WriteError> {
        let total = pieces.iter().map(|p| p.len()).sum();
        self.admit(total)?;
        if total > 0 {
            let mut out = self.core.out.borrow_mut();
            for p in pieces {
                out.tail.extend_from_slice(p);
            }
            out.len += total;
        }
        self.written();
        Ok(())
    }

    fn admit(&self, n: usize) -> Result<(), WriteError> {
        let core = &self.core;
        if core.closed.get() || core.close_requested.get() || core.abort_reason.borrow().is_some() {
            return Err(WriteError::Closed);
        }
        let queued = core.out.borrow().len;
        let ceiling = core.limits.hard_cap.saturating_mul(2);
        if queued.saturating_add(n) > ceiling {
            tracing::warn!(
                shard = core.shard_id,
                peer = %core.peer,
                queued,
                write = n,
                cap = core.limits.hard_cap,
                "slow consumer: a write would take the outbound queue past twice its hard cap, aborting connection"
            );
            self.abort_with(DisconnectReason::SlowConsumer);
            return Err(WriteError::SlowConsumer);
        }
        Ok(())
    }

    fn written(&self) {
        let core = &self.core;
        let over_high_water = core.out.borrow().len > core.limits.high_water;
        if over_high_water {
            core.writing_paused.set(true);
        }
        if !core.driving.get() && (over_high_water || !core.corked.get()) {
            core.wake();
        }
    }

    /// Holds output back until [`Transport::uncork`] (Linux's `TCP_CORK`,
    /// in user space): writes queue but are not sent, so writes from
    /// several events leave together in one `sendmsg`. The cork gives way
    /// on its own when the queue passes the high-water mark or the
    /// connection is closing. Hold it briefly: the peer sees nothing while
    /// it is in.
    pub fn cork(&self) {
        self.core.corked.set(true);
    }

    /// Sends what [`Transport::cork`] held back (on the driver's next turn).
    pub fn uncork(&self) {
        if self.core.corked.replace(false) && self.core.out.borrow().len > 0 {
            self.core.wake();
        }
    }

    /// True between [`Transport::cork`] and [`Transport::uncork`].
    pub fn is_corked(&self) -> bool {
        self.core.corked.get()
    }

    /// Flushes everything queued, then closes (Twisted's `loseConnection`).
    /// Reading stops at once; later writes are refused. Idempotent.
    pub fn close(&self) {
        if !self.core.close_requested.replace(true) {
            self.core.wake();
        }
    }

    /// Discards everything queued and closes at once with a reset
    /// (Twisted's `abortConnection`).
    pub fn abort(&self) {
        self.abort_with(DisconnectReason::Aborted);
    }

    /// Like [`Transport::abort`], reporting `reason` to `connection_lost`
    /// (e.g. [`DisconnectReason::TimedOut`] from a protocol's own timeout).
    /// The first abort's reason wins.
    pub fn abort_with(&self, reason: DisconnectReason) {
        if self.core.closed.get() {
            return;
        }
        {
            let mut slot = self.core.abort_reason.borrow_mut();
            if slot.is_some() {
                return;
            }
            *slot = Some(reason);
        }
        self.core.out.borrow_mut().clear();
        self.core.wake();
    }

    /// Stops reading from the peer until [`Transport::resume_reading`]
    /// (Twisted's `pauseProducing`); the peer's sends then back up in the
    /// kernel. Use it to honour `pause_writing` when echoing or proxying.
    pub fn pause_reading(&self) {
        self.core.reading_paused.set(true);
    }

    /// Resumes reading after [`Transport::pause_reading`]. Input that
    /// arrived before the pause and was left unconsumed is offered to
    /// `data_received` again first (Twisted's `resumeProducing`), so a
    /// framing layer that stopped at the pause carries on where it stopped.
    pub fn resume_reading(&self) {
        if self.core.reading_paused.replace(false) {
            self.core.touch();
            self.core.wake();
        }
    }

    /// True while reading is paused. Framing layers deliver no further
    /// frames while it is (the rest stays buffered until
    /// [`Transport::resume_reading`]).
    pub fn is_reading_paused(&self) -> bool {
        self.core.reading_paused.get()
    }

    /// True from the write that took the outbound queue above the
    /// high-water mark until it has drained to the low-water mark (when
    /// `resume_writing` is called). Set on the spot, so code that fans one
    /// write out to many transports can see at once which ones are behind.
    pub fn is_writing_paused(&self) -> bool {
        self.core.writing_paused.get()
    }

    /// The peer's address (Twisted's `getPeer`).
    pub fn peer_addr(&self) -> SocketAddr {
        self.core.peer
    }

    /// The local address (Twisted's `getHost`).
    pub fn local_addr(&self) -> SocketAddr {
        self.core.local
    }

    /// The id of the shard that owns this connection.
    pub fn shard_id(&self) -> usize {
        self.core.shard_id
    }

    /// Bytes queued and not yet handed to the kernel.
    pub fn buffered_len(&self) -> usize {
        self.core.out.borrow().len
    }

    /// The flow-control limits of this connection.
    pub fn limits(&self) -> FlowLimits {
        self.core.limits
    }

    /// True once `close` or `abort` was asked for (or the connection ended).
    pub fn is_closing(&self) -> bool {
        self.core.close_requested.get()
            || self.core.abort_reason.borrow().is_some()
            || self.core.closed.get()
    }

    /// True once the connection has ended and `connection_lost` was called.
    pub fn is_closed(&self) -> bool {
        self.core.closed.get()
    }

    /// The clock protocols schedule timeouts on (real on a shard, manual in
    /// the test kit).
    pub fn clock(&self) -> Clock {
        self.core.clock.clone()
    }

    /// Sets `TCP_NODELAY` (Nagle off). Connections start with it on.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        let fd = self.core.fd.get().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotConnected, "transport has no socket")
        })?;
        let value: libc::c_int = on.into();
        // fd is this connection's open socket (cleared before it is closed).
        crate::connection::sockopt::set(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, &value)
    }
}

/// Work in flight on a connection, from [`Transport::in_flight`] until
/// dropped.
#[must_use = "the work counts as in flight only while the guard is held"]
pub struct InFlight {
    core: Rc<TransportCore>,
}

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InFlight")
            .field("in_flight", &self.core.in_flight.get())
            .finish()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let left = self.core.in_flight.get() - 1;
        self.core.in_flight.set(left);
        if left == 0 && self.core.close_when_idle.replace(false) {
            Transport {
                core: self.core.clone(),
            }
            .close();
        }
    }
}

fn arm_idle(core: &Rc<TransportCore>, after: Duration) {
    let weak = Rc::downgrade(core);
    let call = core.clock.call_later(after, move || {
        let Some(core) = weak.upgrade() else { return };
        if core.closed.get() {
            return;
        }
        let (period, last) = {
            let idle = core.idle.borrow();
            (idle.period, idle.last_activity)
        };
        let Some(period) = period else { return };
        if core.idle_clock_stopped() {
            // The server holds this connection back (read throttling, or a
            // protocol pausing its reading with nothing left to send): the
            // peer cannot be blamed for the silence. Count from now.
            core.idle.borrow_mut().last_activity = Some(core.clock.now());
            arm_idle(&core, period);
            return;
        }
        let idle_for = last.map_or(period, |t| core.clock.now().saturating_duration_since(t));
        if idle_for >= period {
            tracing::debug!(shard = core.shard_id, peer = %core.peer, ?period, "idle timeout");
            Transport { core }.abort_with(DisconnectReason::TimedOut);
        } else {
            arm_idle(&core, period - idle_for);
        }
    });
    core.idle.borrow_mut().call = Some(call);
}

/// Driver-side access (crate-private): the connection driver and the test
/// kit pump the transport through these.
impl TransportCore {
    /// Records activity for the idle timeout (cheap when none is set).
    pub(crate) fn touch(&self) {
        let mut idle = self.idle.borrow_mut();
        if idle.period.is_some() {
            idle.last_activity = Some(self.clock.now());
        }
    }

    pub(crate) fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub(crate) fn set_waker(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        match slot.as_ref() {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    pub(crate) fn set_driving(&self, on: bool) {
        self.driving.set(on);
    }

    pub(crate) fn limits(&self) -> FlowLimits {
        self.limits
    }

    pub(crate) fn close_requested(&self) -> bool {
        self.close_requested.get()
    }

    /// Whether the queue may be sent now: not while corked, unless it is
    /// over the high-water mark or a close or an abort waits for it.
    pub(crate) fn flush_allowed(&self) -> bool {
        !self.corked.get()
            || self.out.borrow().len > self.limits.high_water
            || self.is_abort_or_close()
    }

    pub(crate) fn abort_reason(&self) -> Option<DisconnectReason> {
        self.abort_reason.borrow().clone()
    }

    pub(crate) fn is_abort_or_close(&self) -> bool {
        self.close_requested.get() || self.abort_reason.borrow().is_some()
    }

    pub(crate) fn reading_paused(&self) -> bool {
        self.reading_paused.get()
    }

    /// The driver holds reading back for the read-rate limit (`true`) or
    /// lets it go again (`false`, which counts as activity).
    pub(crate) fn set_throttled(&self, on: bool) {
        if self.throttled.replace(on) && !on {
            self.touch();
        }
    }

    /// True while silence on the connection is the server's doing, not the
    /// peer's: reading is held back (throttled or paused) and nothing waits
    /// to be sent. The idle timeout does not run then. (Paused reading with
    /// output queued is the peer not reading: that does count.)
    fn idle_clock_stopped(&self) -> bool {
        (self.reading_paused.get() || self.throttled.get()) && self.out.borrow().len == 0
    }

    /// True once a write took the queue above the high-water mark.
    pub(crate) fn writing_paused(&self) -> bool {
        self.writing_paused.get()
    }

    /// The driver delivered `resume_writing`: the next write above the
    /// high-water mark pauses again.
    pub(crate) fn clear_writing_paused(&self) {
        self.writing_paused.set(false);
    }

    pub(crate) fn request_shutdown(&self) {
        if !self.shutdown_requested.replace(true) {
            self.wake();
        }
    }

    pub(crate) fn shutdown_requested(&self) -> bool {
        self.shutdown_requested.get()
    }

    pub(crate) fn buffered_len(&self) -> usize {
        self.out.borrow().len
    }

    /// Marks the connection ended: later writes fail, the socket fd is
    /// forgotten (it is about to be closed) and the queue is dropped.
    pub(crate) fn mark_closed(&self) {
        if let Some(call) = self.idle.borrow_mut().call.take() {
            call.cancel();
        }
        self.closed.set(true);
        self.fd.set(None);
        self.out.borrow_mut().clear();
        self.waker.borrow_mut().take();
    }

    /// Runs `send` over the queued chunks, oldest first (it takes as many as
    /// it can use); `send` returns how many bytes the kernel took, which are
    /// then dropped from the queue. Nothing is allocated per call.
    pub(crate) fn send_queued<E>(
        &self,
        send: impl FnOnce(std::collections::vec_deque::Iter<'_, Bytes>) -> Result<usize, E>,
    ) -> Option<Result<usize, E>> {
        let mut out = self.out.borrow_mut();
        out.seal_tail();
        if out.queue.is_empty() {
            return None;
        }
        let result = send(out.queue.iter());
        if let Ok(n) = &result {
            out.advance(*n);
        }
        Some(result)
    }

    /// The oldest queued chunk (a cheap `Bytes` clone), if any.
    pub(crate) fn front_chunk(&self) -> Option<Bytes> {
        let mut out = self.out.borrow_mut();
        out.seal_tail();
        out.queue.front().cloned()
    }

    /// Drops `n` sent bytes from the front of the queue.
    pub(crate) fn consume(&self, n: usize) {
        self.out.borrow_mut().advance(n);
    }

    /// Takes everything queued (test kit: "what was written").
    pub(crate) fn take_queued(&self) -> Vec<u8> {
        let mut out = self.out.borrow_mut();
        out.seal_tail();
        let mut all = Vec::with_capacity(out.len);
        for chunk in out.queue.drain(..) {
            all.extend_from_slice(&chunk);
        }
        out.len = 0;
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory_transport(limits: FlowLimits) -> Transport {
        Transport::new(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            0,
            crate::clock::ManualClock::new().clock(),
            limits,
            None,
        )
    }

    #[test]
    fn writes_queue_in_order_and_coalesce() {
        let t = memory_transport(FlowLimits::default());
        t.write(b"ab").unwrap();
        t.write_bytes(Bytes::from(vec![b'c'; 1000])).unwrap();
        t.write_many(&[b"d", b"e"]).unwrap();
        t.write(b"").unwrap();
        assert_eq!(t.buffered_len(), 1004);
        let mut want = b"ab".to_vec();
        want.extend(vec![b'c'; 1000]);
        want.extend(b"de");
        assert_eq!(t.core.take_queued(), want);
        assert_eq!(t.buffered_len(), 0);
    }

    #[test]
    fn partial_sends_advance_the_queue_exactly() {
        let t = memory_transport(FlowLimits::default());
        t.write(b"hello").unwrap();
        t.write_bytes(Bytes::from(vec![b'x'; 600])).unwrap();
        t.write(b"world").unwrap();
        let mut sent = Vec::new();
        // Send 3 bytes at a time, as a congested kernel might.
        while let Some(r) = t.core.send_queued(|slices| {
            let mut n = 0;
            for s in slices {
                for &b in s.iter() {
                    if n == 3 {
                        return Ok::<usize, ()>(n);
                    }
                    sent.push(b);
                    n += 1;
                }
            }
            Ok(n)
        }) {
            r.unwrap();
        }
        let mut want = b"hello".to_vec();
        want.extend(vec![b'x'; 600]);
        want.extend(b"world");
        assert_eq!(sent, want);
        assert_eq!(t.buffered_len(), 0);
    }

    #[test]
    fn writes_after_close_are_refused_not_lost_silently() {
        let t = memory_transport(FlowLimits::default());
        t.write(b"last").unwrap();
        t.close();
        assert_eq!(t.write(b"more"), Err(WriteError::Closed));
        assert_eq!(t.core.take_queued(), b"last");
    }

    #[test]
    fn a_write_past_twice_the_hard_cap_aborts_as_slow_consumer() {
        let limits = FlowLimits {
            hard_cap: 100,
            ..FlowLimits::default()
        };
        let t = memory_transport(limits);
        // Over the cap is the driver's call (after a flush); only twice
        // the cap is refused by the write itself.
        t.write(&[0; 150]).unwrap();
        t.write(&[0; 50]).unwrap();
        assert_eq!(t.core.abort_reason(), None);
        assert_eq!(t.write(&[0; 1]), Err(WriteError::SlowConsumer));
        assert_eq!(t.core.abort_reason(), Some(DisconnectReason::SlowConsumer));
        assert_eq!(t.buffered_len(), 0, "queue discarded");
        assert_eq!(t.write(b"x"), Err(WriteError::Closed));
    }

    #[test]
    fn abort_discards_and_first_reason_wins() {
        let t = memory_transport(FlowLimits::default());
        t.write(b"pending").unwrap();
        t.abort_with(DisconnectReason::TimedOut);
        t.abort();
        assert_eq!(t.buffered_len(), 0);
        assert_eq!(t.core.abort_reason(), Some(DisconnectReason::TimedOut));
        assert!(t.is_closing());
    }

    #[test]
    fn crossing_the_high_water_mark_pauses_writing_on_the_spot() {
        let limits = FlowLimits {
            high_water: 10,
            low_water: 4,
            ..FlowLimits::default()
        };
        let t = memory_transport(limits);
        t.write(&[0; 10]).unwrap();
        assert!(!t.is_writing_paused(), "at the mark, not above it");
        t.write(&[0; 1]).unwrap();
        assert!(t.is_writing_paused());
        // Draining does not clear it: the driver does, with resume_writing.
        t.core.take_queued();
        assert!(t.is_writing_paused());
        t.core.clear_writing_paused();
        assert!(!t.is_writing_paused());
    }

    #[test]
    fn nodelay_without_a_socket_is_an_error() {
        let t = memory_transport(FlowLimits::default());
        assert_eq!(
            t.set_nodelay(true).unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
    }
}
