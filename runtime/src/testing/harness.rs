//! One protocol on an in-memory transport (Twisted's `StringTransport`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use bytes::BytesMut;

use crate::clock::ManualClock;
use crate::connection::machine::{Action, Machine};
use crate::connection::protocol::Protocol;
use crate::connection::reason::DisconnectReason;
use crate::connection::transport::{FlowLimits, Transport};
use crate::shard::wake_flag::WakeFlag;

/// How a [`ProtocolHarness`] is set up: `Default` and the `with_*` setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HarnessOptions {
    /// The clock the protocol's timers run on (share one between harnesses
    /// to keep them in step).
    pub clock: ManualClock,
    /// What `Transport::peer_addr` returns.
    pub peer: SocketAddr,
    /// What `Transport::local_addr` returns.
    pub local: SocketAddr,
    /// Buffer limits, as on a real server.
    pub limits: FlowLimits,
    /// What `Transport::shard_id` returns.
    pub shard_id: usize,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        HarnessOptions {
            clock: ManualClock::new(),
            peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
            local: SocketAddr::from(([127, 0, 0, 1], 7000)),
            limits: FlowLimits::default(),
            shard_id: 0,
        }
    }
}

crate::with_setters!(HarnessOptions {
    with_clock => clock: ManualClock,
    with_peer => peer: SocketAddr,
    with_local => local: SocketAddr,
    with_limits => limits: FlowLimits,
    with_shard_id => shard_id: usize,
});

/// Drives one protocol through an in-memory transport, with the same
/// connection state machine as a socket (`connection/machine.rs`): every
/// decision (callback order, flow control, close, the reason it ends) is the
/// driver's own.
pub struct ProtocolHarness<P: Protocol> {
    machine: Machine<P>,
    /// Woken by what the protocol's future waits on (a timer of the manual
    /// clock, a reply on a manual bus): the next settle polls it.
    wake: Arc<WakeFlag>,
    waker: Waker,
    clock: ManualClock,
    /// Sent by the peer, not yet read (reading paused, or closing).
    pending_input: BytesMut,
    pending_eof: bool,
    written: Vec<u8>,
    peer_reading: bool,
}

impl<P: Protocol> std::fmt::Debug for ProtocolHarness<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtocolHarness")
            .field("transport", self.machine.transport())
            .field("written", &self.written.len())
            .field("lost", &self.machine.lost_reason())
            .finish()
    }
}

impl<P: Protocol> ProtocolHarness<P> {
    /// Connects `protocol` (calls `connection_made`) on a fresh manual clock.
    pub fn new(protocol: P) -> Self {
        Self::with_options(protocol, HarnessOptions::default())
    }

    /// Connects `protocol` with the given options.
    pub fn with_options(protocol: P, options: HarnessOptions) -> Self {
        let transport = Transport::new(
            options.peer,
            options.local,
            options.shard_id,
            options.clock.clock(),
            options.limits,
            None,
        );
        let (wake, waker) = WakeFlag::raised();
        wake.take();
        let mut h = ProtocolHarness {
            machine: Machine::new(protocol, transport),
            waker,
            wake,
            clock: options.clock,
            pending_input: BytesMut::new(),
            pending_eof: false,
            written: Vec::new(),
            peer_reading: true,
        };
        let action = h.machine.start();
        h.perform(action);
        h.settle();
        h
    }

    /// Performs what the machine asked for, from memory; false when the
    /// connection came to rest (or ended).
    fn perform(&mut self, action: Action) -> bool {
        match action {
            Action::Continue => true,
            Action::Wait => false,
            Action::Close => {
                // Flushed: the peer's FIN needs no waiting in memory.
                self.finish(DisconnectReason::Closed);
                false
            }
            Action::Read => {
                if !self.pending_input.is_empty() {
                    let input = self.pending_input.split();
                    self.machine.input_buffer().extend_from_slice(&input);
                    let action = self.machine.data_arrived();
                    self.perform(action)
                } else if self.pending_eof && !self.machine.eof_seen() {
                    let action = self.machine.eof_arrived();
                    self.perform(action)
                } else {
                    false
                }
            }
            Action::Finish(reason) => {
                self.finish(reason);
                false
            }
        }
    }

    /// Brings the connection to rest: delivers input, moves output to the
    /// peer, runs flow-control and close logic, step by step as the driver.
    fn settle(&mut self) {
        while self.is_open() {
            if self.wake.take() {
                self.machine.woken();
            }
            let mut cx = Context::from_waker(&self.waker);
            let polled = match self.machine.before_flush() {
                Some(action) => Some(action),
                None => self.machine.poll_if_due(&mut cx),
            };
            let action = match polled {
                Some(action) => action,
                None => {
                    let core = &self.machine.transport().core;
                    if self.peer_reading && self.machine.flush_allowed() {
                        let out = core.take_queued();
                        if !out.is_empty() {
                            core.touch();
                            self.written.extend_from_slice(&out);
                        }
                    }
                    let flushed = core.buffered_len() == 0;
                    self.machine.after_flush(flushed)
                }
            };
            if !self.perform(action) {
                if self.wake.is_set() {
                    continue;
                }
                return;
            }
        }
        // Ended: the protocol's future (if any) runs on until it is done.
        while self.machine.future_pending() {
            self.wake.take();
            let mut cx = Context::from_waker(&self.waker);
            if self.machine.poll_after_end(&mut cx).is_ready() || !self.wake.is_set() {
                return;
            }
        }
    }

    fn finish(&mut self, reason: DisconnectReason) {
        if !self.is_open() {
            return;
        }
        let reason = self.machine.end(reason);
        self.machine.connection_lost(&reason);
    }

    /// The peer sends `data` (delivered at once unless reading is paused or
    /// the connection is closing; then it waits, as in the kernel).
    pub fn receive(&mut self, data: &[u8]) {
        if self.is_open() && !self.pending_eof {
            self.pending_input.extend_from_slice(data);
            self.machine.transport().core.touch();
        }
        self.settle();
    }

    /// The peer shuts down its sending side (a half-close).
    pub fn receive_eof(&mut self) {
        self.pending_eof = true;
        self.settle();
    }

    /// The connection is lost from outside (peer reset, timeout…):
    /// `connection_lost(reason)` unless it already ended.
    pub fn disconnect(&mut self, reason: DisconnectReason) {
        self.finish(reason);
    }

    /// The server starts shutting down (`shutdown_requested`).
    pub fn request_shutdown(&mut self) {
        self.machine.transport().core.request_shutdown();
        self.settle();
    }

    /// Advances the clock by `by`, firing due timers, then settles.
    pub fn advance(&mut self, by: Duration) {
        self.clock.advance(by);
        self.settle();
    }

    /// Whether the peer reads what the protocol writes. While it does not,
    /// output stays queued on the transport, so the water marks and the hard
    /// cap come into play.
    pub fn set_peer_reading(&mut self, reading: bool) {
        self.peer_reading = reading;
        self.settle();
    }

    /// Everything written and delivered so far, taken (cleared).
    pub fn take_written(&mut self) -> Vec<u8> {
        self.settle();
        std::mem::take(&mut self.written)
    }

    /// Everything written and delivered so far.
    pub fn written(&mut self) -> &[u8] {
        self.settle();
        &self.written
    }

    /// The protocol's transport (the same type it gets on a shard).
    pub fn transport(&self) -> &Transport {
        self.machine.transport()
    }

    /// The protocol under test.
    pub fn protocol(&self) -> &P {
        self.machine.protocol()
    }

    /// The protocol under test, mutably.
    pub fn protocol_mut(&mut self) -> &mut P {
        self.machine.protocol_mut()
    }

    /// The manual clock the protocol's timers run on.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// Why the connection ended, once it has.
    pub fn lost_reason(&self) -> Option<&DisconnectReason> {
        self.machine.lost_reason()
    }

    /// True until `connection_lost` was called.
    pub fn is_open(&self) -> bool {
        self.machine.lost_reason().is_none()
    }

    /// True once the protocol asked to close or abort.
    pub fn is_closing(&self) -> bool {
        self.machine.transport().is_closing()
    }

    /// True while `pause_writing` is in force.
    pub fn is_writing_paused(&self) -> bool {
        self.machine.transport().is_writing_paused()
    }

    /// Input the protocol left unconsumed.
    pub fn unconsumed(&self) -> &[u8] {
        self.machine.unconsumed()
    }

    pub(crate) fn settle_now(&mut self) {
        self.settle();
    }

    pub(crate) fn take_delivered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[derive(Default)]
    struct Log(Rc<RefCell<Vec<String>>>);

    impl Protocol for Log {
        fn connection_made(&mut self, _t: &Transport) {
            self.0.borrow_mut().push("made".into());
        }
        fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
            let d = data.split();
            self.0
                .borrow_mut()
                .push(format!("data {}", String::from_utf8_lossy(&d)));
            match &d[..] {
                b"close" => t.close(),
                b"abort" => t.abort(),
                b"panic" => panic!("deliberate"),
                b"big" => t.write(&[0u8; 100_000]).unwrap(),
                _ => t.write(&d).unwrap(),
            }
        }
        fn eof_received(&mut self, t: &Transport, _data: &mut BytesMut) {
            self.0.borrow_mut().push("eof".into());
            t.write(b"bye").unwrap();
            t.close();
        }
        fn pause_writing(&mut self, _t: &Transport) {
            self.0.borrow_mut().push("pause".into());
        }
        fn resume_writing(&mut self, _t: &Transport) {
            self.0.borrow_mut().push("resume".into());
        }
        fn connection_lost(&mut self, reason: &DisconnectReason) {
            self.0.borrow_mut().push(format!("lost {}", reason.name()));
        }
    }

    fn harness() -> (ProtocolHarness<Log>, Rc<RefCell<Vec<String>>>) {
        let log = Rc::new(RefCell::new(Vec::new()));
        (ProtocolHarness::new(Log(log.clone())), log)
    }

    #[test]
    fn echoes_and_closes_after_flushing() {
        let (mut h, log) = harness();
        h.receive(b"hi");
        assert_eq!(h.take_written(), b"hi");
        h.receive(b"close");
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::Closed));
        h.receive(b"ignored");
        assert_eq!(
            *log.borrow(),
            ["made", "data hi", "data close", "lost closed"]
        );
    }

    #[test]
    fn abort_and_panic_end_the_connection_once() {
        let (mut h, log) = harness();
        h.receive(b"abort");
        h.disconnect(DisconnectReason::Reset);
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::Aborted));
        assert_eq!(log.borrow().last().unwrap(), "lost aborted");
        let (mut h, log) = harness();
        h.receive(b"panic");
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::Panic));
        assert_eq!(log.borrow().last().unwrap(), "lost panic");
    }

    #[test]
    fn half_close_reaches_the_protocol() {
        let (mut h, log) = harness();
        h.receive(b"x");
        h.receive_eof();
        assert_eq!(h.take_written(), b"xbye");
        assert_eq!(*log.borrow(), ["made", "data x", "eof", "lost closed"]);
    }

    #[test]
    fn water_marks_pause_and_resume_writing() {
        let (mut h, log) = harness();
        h.set_peer_reading(false);
        h.receive(b"big");
        assert!(h.is_writing_paused());
        assert!(h.written().is_empty());
        h.set_peer_reading(true);
        assert!(!h.is_writing_paused());
        assert_eq!(h.take_written().len(), 100_000);
        assert_eq!(*log.borrow(), ["made", "data big", "pause", "resume"]);
    }

    #[test]
    fn the_idle_timeout_fires_only_after_a_quiet_period() {
        let (mut h, log) = harness();
        h.transport()
            .set_idle_timeout(Some(Duration::from_secs(10)));
        h.advance(Duration::from_secs(6));
        h.receive(b"still here");
        h.advance(Duration::from_secs(6));
        assert!(h.is_open(), "activity at 6 s pushed the deadline to 16 s");
        h.advance(Duration::from_secs(4));
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::TimedOut));
        assert_eq!(log.borrow().last().unwrap(), "lost timed_out");
    }

    #[test]
    fn an_idle_timeout_can_be_cancelled() {
        let (mut h, _log) = harness();
        h.transport().set_idle_timeout(Some(Duration::from_secs(1)));
        h.transport().set_idle_timeout(None);
        h.advance(Duration::from_secs(60));
        assert!(h.is_open());
        assert_eq!(h.clock().pending(), 0, "no timer left behind");
    }

    #[test]
    fn a_corked_transport_sends_on_uncork_past_high_water_or_on_close() {
        let (mut h, _log) = harness();
        let t = h.transport().clone();
        t.cork();
        t.write(b"one ").unwrap();
        t.write(b"two").unwrap();
        assert!(h.written().is_empty(), "held while corked");
        t.uncork();
        assert_eq!(h.take_written(), b"one two");
        // Past the high-water mark the cork gives way.
        t.cork();
        t.write(&vec![7u8; FlowLimits::default().high_water + 1])
            .unwrap();
        assert_eq!(h.take_written().len(), FlowLimits::default().high_water + 1);
        // A close sends what the cork held.
        t.write(b"bye").unwrap();
        assert!(h.written().is_empty());
        t.close();
        assert_eq!(h.take_written(), b"bye");
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::Closed));
    }

    /// An async connection in memory: its future runs on the harness's
    /// polls, its timers on the manual clock.
    #[test]
    fn an_async_connection_runs_deterministically_on_the_manual_clock() {
        use crate::AsyncProtocol;
        let mut h = ProtocolHarness::new(AsyncProtocol::new(
            |mut conn: crate::Connection| async move {
                conn.transport().write(b"hello\n").unwrap();
                while let Some(bytes) = conn.read().await {
                    // Think for a second, then answer in capitals.
                    conn.clock().sleep(Duration::from_secs(1)).await;
                    if conn.write(&bytes.to_ascii_uppercase()).await.is_err() {
                        break;
                    }
                }
                conn.transport().write(b"bye\n").unwrap();
            },
        ));
        assert_eq!(h.take_written(), b"hello\n");
        h.receive(b"abc");
        assert!(h.take_written().is_empty(), "still thinking");
        h.advance(Duration::from_millis(999));
        assert!(h.take_written().is_empty());
        h.advance(Duration::from_millis(1));
        assert_eq!(h.take_written(), b"ABC");
        // EOF ends the loop; returning closes (after the last write).
        h.receive_eof();
        assert_eq!(h.take_written(), b"bye\n");
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::Closed));
    }

    #[test]
    fn an_async_connection_stops_reading_while_busy_and_after_a_shutdown() {
        use crate::AsyncProtocol;
        let mut h = ProtocolHarness::new(AsyncProtocol::new(
            |mut conn: crate::Connection| async move {
                while let Some(bytes) = conn.read().await {
                    conn.clock().sleep(Duration::from_secs(1)).await;
                    // Err: the harness closed the connection.
                    let _ = conn.write(&bytes).await;
                }
            },
        ));
        h.receive(b"one");
        // Busy (sleeping) with nothing asked for: what comes now waits.
        h.receive(b"two");
        assert!(h.transport().is_reading_paused());
        h.advance(Duration::from_secs(1));
        assert_eq!(h.take_written(), b"one");
        h.advance(Duration::from_secs(1));
        assert_eq!(h.take_written(), b"two");
        // A shutdown: input ends, the loop ends, the connection closes.
        h.request_shutdown();
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::Shutdown));
    }

    #[test]
    fn a_panicking_future_ends_its_connection_with_panic() {
        use crate::AsyncProtocol;
        let mut h = ProtocolHarness::new(AsyncProtocol::new(
            |mut conn: crate::Connection| async move {
                let _ = conn.read().await;
                if conn.buffered_input() == 0 {
                    panic!("deliberate");
                }
            },
        ));
        h.receive(b"x");
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::Panic));
    }

    #[test]
    fn shutdown_closes_with_reason_shutdown() {
        let (mut h, _log) = harness();
        h.request_shutdown();
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::Shutdown));
    }
}
