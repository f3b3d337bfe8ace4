//! The decisions of one connection, apart from its I/O.
//!
//! A [`Machine`] owns a connection's protocol, its transport and its unread
//! input, and decides, step by step, what happens next: which callback is
//! due (`shutdown_requested`, `pause_writing`/`resume_writing`,
//! `data_received`, `eof_received`), whether to read, whether the
//! connection is ready to close, and why it ends. It performs the callbacks
//! itself (under `catch_unwind`) and leaves every byte of I/O to whoever
//! drives it:
//!
//! * the socket driver (`driver.rs`) flushes with `sendmsg`, reads with
//!   glommio, half-closes and lingers;
//! * the test kit's [`ProtocolHarness`](crate::testing::ProtocolHarness)
//!   moves bytes from and to memory.
//!
//! So a protocol test and a real connection go through the same call order.
//! A step is two calls around the flush:
//!
//! 1. [`Machine::before_flush`]: an abort ends the connection at once; a
//!    pending shutdown notice is delivered;
//! 2. the driver offers the outbound queue to the peer;
//! 3. [`Machine::after_flush`]: more than the hard cap still queued when the
//!    peer takes no more is a slow consumer; the water marks turn into
//!    `pause_writing`/`resume_writing` (one resume owed per pause); a
//!    requested close waits for the queue to drain, then says
//!    [`Action::Close`]; while reading is paused nothing is read; input left
//!    unconsumed at a pause is offered again on resume (Twisted's
//!    `resumeProducing`); after the peer's EOF nothing more is read;
//!    otherwise [`Action::Read`].
//!
//! After a read the driver appends the bytes to [`Machine::input_buffer`]
//! and calls [`Machine::data_arrived`] (or [`Machine::eof_arrived`] for
//! EOF), which delivers them and enforces the read-buffer bound. At the end
//! [`Machine::end`] picks the final reason (a clean close during shutdown is
//! [`DisconnectReason::Shutdown`]) and [`Machine::connection_lost`] tells
//! the protocol, exactly once.
//!
//! # A protocol's own future
//!
//! A protocol may run a future on the connection's task
//! ([`Protocol::poll_future`]; the async connection does). The machine
//! polls it, first thing in a step, whenever a poll is due: after
//! `connection_made`, after every other callback (it may have handed the
//! future input, EOF, a resume or a shutdown) and whenever the driver's task
//! was woken ([`Machine::woken`]: a timer, a reply from another shard or a
//! blocking thread the future waits on wakes that task). So the future and
//! the callbacks share one task, one flush per turn, no hand-off between
//! tasks. `Ready` means nothing is running now (a callback may start
//! something, and the next poll runs it); if the last poll said `Pending`
//! when the connection ends, [`Machine::run_out`] polls on until `Ready`
//! (its reads see the end). A future that panicked is never polled again.

use std::task::{Context, Poll};

use bytes::BytesMut;

use crate::connection::protocol::Protocol;
use crate::connection::reason::DisconnectReason;
use crate::connection::transport::Transport;
use crate::shard;

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Something happened (a callback ran): take another step.
    Continue,
    /// Nothing to do until the peer, the protocol or a timer moves.
    Wait,
    /// Read from the peer: append to [`Machine::input_buffer`], then call
    /// [`Machine::data_arrived`] (or [`Machine::eof_arrived`] at EOF).
    Read,
    /// A close was requested and every byte is flushed: half-close, linger,
    /// then end with [`DisconnectReason::Closed`].
    Close,
    /// The connection is over: call [`Machine::end`] with this reason.
    Finish(DisconnectReason),
}

/// One connection's protocol, transport, unread input and flow-control
/// state, and the rules that move it.
pub(crate) struct Machine<P: Protocol> {
    protocol: P,
    transport: Transport,
    /// Bytes received and not yet consumed by the protocol.
    input: BytesMut,
    /// The peer's EOF was read (no more input will come).
    eof: bool,
    /// `pause_writing` was delivered; `resume_writing` is owed.
    pause_notified: bool,
    /// Input was left unconsumed while reading was paused: offer it again
    /// when reading resumes.
    offer_buffered: bool,
    shutdown_notified: bool,
    /// Why the connection ended, once `connection_lost` was called.
    lost: Option<DisconnectReason>,
    /// The last `poll_future` said `Pending`: work is under way.
    future_pending: bool,
    /// A callback or the future panicked: the protocol is not polled again.
    poisoned: bool,
    /// `poll_future` is due: something may have moved the future on.
    poll_due: bool,
}

impl<P: Protocol> Machine<P> {
    /// A connection that has not started yet ([`Machine::start`]).
    pub(crate) fn new(protocol: P, transport: Transport) -> Self {
        Machine {
            protocol,
            transport,
            input: BytesMut::new(),
            eof: false,
            pause_notified: false,
            offer_buffered: false,
            shutdown_notified: false,
            lost: None,
            future_pending: false,
            poisoned: false,
            poll_due: true,
        }
    }

    /// The connection's transport.
    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The protocol.
    pub(crate) fn protocol(&self) -> &P {
        &self.protocol
    }

    /// The protocol, mutably.
    pub(crate) fn protocol_mut(&mut self) -> &mut P {
        &mut self.protocol
    }

    /// Input the protocol left unconsumed.
    pub(crate) fn unconsumed(&self) -> &[u8] {
        &self.input
    }

    /// Where the driver appends what it read.
    pub(crate) fn input_buffer(&mut self) -> &mut BytesMut {
        &mut self.input
    }

    /// True once the peer's EOF was read.
    pub(crate) fn eof_seen(&self) -> bool {
        self.eof
    }

    /// Calls `connection_made`.
    pub(crate) fn start(&mut self) -> Action {
        self.callback("connection_made", |p, t, _| p.connection_made(t))
    }

    /// The first half of a step: an abort, or a shutdown notice to deliver.
    pub(crate) fn before_flush(&mut self) -> Option<Action> {
        let core = &self.transport.core;
        if let Some(reason) = core.abort_reason() {
            return Some(Action::Finish(reason));
        }
        if core.shutdown_requested() && !self.shutdown_notified {
            self.shutdown_notified = true;
            return Some(self.callback("shutdown_requested", |p, t, _| p.shutdown_requested(t)));
        }
        None
    }

    /// The second half of a step, once the driver offered the outbound
    /// queue to the peer; `flushed` says whether all of it left.
    pub(crate) fn after_flush(&mut self, flushed: bool) -> Action {
        let core = &self.transport.core;
        let limits = core.limits();
        let queued = core.buffered_len();
        if !flushed && queued > limits.hard_cap {
            tracing::warn!(
                shard = self.transport.shard_id(),
                peer = %self.transport.peer_addr(),
                queued,
                cap = limits.hard_cap,
                "slow consumer: the peer is not reading and the outbound queue is over its hard cap; aborting connection"
            );
            return Action::Finish(DisconnectReason::SlowConsumer);
        }
        if !self.pause_notified && core.writing_paused() {
            self.pause_notified = true;
            return self.callback("pause_writing", |p, t, _| p.pause_writing(t));
        }
        if self.pause_notified && queued <= limits.low_water {
            self.pause_notified = false;
            core.clear_writing_paused();
            return self.callback("resume_writing", |p, t, _| p.resume_writing(t));
        }
        if core.close_requested() {
            return if flushed { Action::Close } else { Action::Wait };
        }
        if core.reading_paused() {
            return Action::Wait;
        }
        if self.offer_buffered {
            self.offer_buffered = false;
            return self.data_arrived();
        }
        if self.eof {
            return Action::Wait;
        }
        Action::Read
    }

    /// Hands the input buffer to `data_received`, then enforces the read
    /// bound and notes input left behind by a pause.
    pub(crate) fn data_arrived(&mut self) -> Action {
        let action = self.callback("data_received", |p, t, input| p.data_received(t, input));
        if action == Action::Continue {
            let core = &self.transport.core;
            if self.input.len() > core.limits().max_read_buffer && !core.is_abort_or_close() {
                return Action::Finish(DisconnectReason::ReadBufferFull);
            }
            self.offer_buffered = core.reading_paused() && !self.input.is_empty();
        }
        action
    }

    /// The peer half-closed: calls `eof_received` (once) with the input
    /// left unconsumed; if the protocol paused reading and left some of it,
    /// it is offered to `data_received` again on resume.
    pub(crate) fn eof_arrived(&mut self) -> Action {
        if std::mem::replace(&mut self.eof, true) {
            return Action::Continue;
        }
        let action = self.callback("eof_received", |p, t, input| p.eof_received(t, input));
        if action == Action::Continue {
            self.offer_buffered = self.transport.core.reading_paused() && !self.input.is_empty();
            if !self.offer_buffered {
                self.input.clear();
            }
        }
        action
    }

    /// The driver's task was woken: whatever woke it may be something the
    /// protocol's future waits on.
    pub(crate) fn woken(&mut self) {
        self.poll_due = !self.poisoned;
    }

    /// Polls the protocol's future if a poll is due: `None` when not due,
    /// else `Continue` (take another step: it may have written or closed)
    /// or `Finish(Panic)`.
    pub(crate) fn poll_if_due(&mut self, cx: &mut Context<'_>) -> Option<Action> {
        if !self.poll_due {
            return None;
        }
        self.poll_due = false;
        let mut ready = false;
        let action = self.callback("the connection's future", |p, t, input| {
            ready = p.poll_future(t, input, cx).is_ready();
        });
        // A callback sets a poll due; this one is the poll.
        self.poll_due = false;
        self.future_pending = !ready && !self.poisoned;
        Some(action)
    }

    /// After the connection ended: polls the protocol's future until it is
    /// done (`Ready`, or a panic, which is contained and counted).
    pub(crate) fn poll_after_end(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.future_pending || self.poisoned {
            return Poll::Ready(());
        }
        let mut ready = false;
        let transport = &self.transport;
        let protocol = &mut self.protocol;
        let input = &mut self.input;
        let ok = shard::run_guarded("the connection's future", || {
            ready = protocol.poll_future(transport, input, cx).is_ready();
        });
        if ready || !ok {
            self.future_pending = false;
            self.poisoned |= !ok;
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// After the connection ended: resolves once the protocol's future is
    /// done (at once for a protocol without one).
    pub(crate) async fn run_out(mut self) {
        futures_lite::future::poll_fn(|cx| self.poll_after_end(cx)).await
    }

    /// True while the protocol's future has work under way (its last
    /// poll said `Pending`).
    pub(crate) fn future_pending(&self) -> bool {
        self.future_pending && !self.poisoned
    }

    /// Runs one protocol callback with the transport marked as driven (so
    /// writes wait for the driver's flush), containing a panic. The
    /// protocol's future is due a poll after it.
    fn callback(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut P, &Transport, &mut BytesMut),
    ) -> Action {
        let core = &self.transport.core;
        core.set_driving(true);
        let ok = shard::run_guarded(what, || {
            f(&mut self.protocol, &self.transport, &mut self.input)
        });
        self.transport.core.set_driving(false);
        if ok {
            self.poll_due = !self.poisoned;
            Action::Continue
        } else {
            self.poisoned = true;
            self.poll_due = false;
            Action::Finish(DisconnectReason::Panic)
        }
    }

    /// The connection is over: the reason `connection_lost` will get (a
    /// clean close during a shutdown is [`DisconnectReason::Shutdown`]);
    /// the transport is marked closed (writes fail from now on).
    pub(crate) fn end(&mut self, reason: DisconnectReason) -> DisconnectReason {
        let core = &self.transport.core;
        core.mark_closed();
        if core.shutdown_requested() && reason.is_clean() {
            DisconnectReason::Shutdown
        } else {
            reason
        }
    }

    /// Why the connection ended, once `connection_lost` was called.
    pub(crate) fn lost_reason(&self) -> Option<&DisconnectReason> {
        self.lost.as_ref()
    }

    /// Whether the driver may offer the outbound queue to the peer now (not
    /// while the protocol corks it; see `Transport::cork`).
    pub(crate) fn flush_allowed(&self) -> bool {
        self.transport.core.flush_allowed()
    }

    /// Calls `connection_lost` (at most once).
    pub(crate) fn connection_lost(&mut self, reason: &DisconnectReason) {
        if self.lost.is_none() {
            self.lost = Some(reason.clone());
            shard::run_guarded("connection_lost", || self.protocol.connection_lost(reason));
        }
    }
}
