//! Timers on the shard: `call_later`, repeating calls, and a manual clock.
//!
//! Twisted's `reactor.callLater`, `task.LoopingCall` and `task.Clock`. A
//! [`Clock`] is a cheap, cloneable handle of one of two kinds:
//!
//! * **real** — each delayed call is a glommio task on the current shard that
//!   sleeps on a glommio `Timer` (the shard's io_uring timeout, so a parked
//!   shard wakes exactly when the earliest timer is due; no polling);
//! * **manual** — a virtual clock for tests: calls fire only inside
//!   [`ManualClock::advance`], in deadline order, so protocol logic with
//!   timeouts is tested deterministically, without sleeping.
//!
//! Protocols take their clock from [`Transport::clock`](crate::Transport::clock)
//! and so run unchanged on a real shard and in the test kit.
//!
//! Callbacks run on the shard that scheduled them. A panic in a callback is
//! caught, logged with the shard id and counted; the shard lives on.
//!
//! No delay is too long: time arithmetic saturates (a delay past what an
//! `Instant` can hold means "in a century"), so no duration a user passes
//! can make a timer panic.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::shard;

/// What "too far in the future to happen" means: a century.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `at + by`, saturating at a century past `at` instead of panicking.
fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by.min(FOREVER)).unwrap_or(at)
}

/// A handle on a shard's time source (real or manual). Cheap to clone.
#[derive(Clone)]
pub struct Clock {
    kind: ClockKind,
}

#[derive(Clone)]
enum ClockKind {
    Real,
    Manual(Rc<ManualCore>),
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ClockKind::Real => f.write_str("Clock::Real"),
            ClockKind::Manual(core) => write!(f, "Clock::Manual({:?})", core.elapsed.get()),
        }
    }
}

/// Errors from scheduling on a clock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClockError {
    /// A repeating call needs a positive interval.
    #[error("a repeating call needs an interval greater than zero")]
    ZeroInterval,
}

struct CallState {
    active: Cell<bool>,
    cancel_hook: RefCell<Option<Box<dyn FnOnce()>>>,
}

/// A call scheduled by [`Clock::call_later`]. Dropping the handle does not
/// cancel the call (as in Twisted); [`DelayedCall::cancel`] does.
#[derive(Clone)]
pub struct DelayedCall {
    state: Rc<CallState>,
}

impl fmt::Debug for DelayedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayedCall")
            .field("active", &self.state.active.get())
            .finish()
    }
}

impl DelayedCall {
    /// Cancels the call if it has not run yet. Idempotent.
    pub fn cancel(&self) {
        if self.state.active.replace(false) {
            if let Some(hook) = self.state.cancel_hook.borrow_mut().take() {
                hook();
            }
        }
    }

    /// True until the call has run or been cancelled.
    pub fn is_active(&self) -> bool {
        self.state.active.get()
    }
}

impl Clock {
    /// The shard's real clock. Scheduling on it requires running on a shard
    /// (a glommio executor thread).
    pub fn real() -> Clock {
        Clock {
            kind: ClockKind::Real,
        }
    }

    /// True for a manual (test) clock.
    pub fn is_manual(&self) -> bool {
        matches!(self.kind, ClockKind::Manual(_))
    }

    /// The current time on this clock.
    pub fn now(&self) -> Instant {
        match &self.kind {
            ClockKind::Real => Instant::now(),
            ClockKind::Manual(core) => later(core.start, core.elapsed.get()),
        }
    }

    /// For the next `window`, lets the shard sleep through single
    /// wake-ups: when it has nothing to run it waits for the end of the
    /// window (or its next timer, if earlier) instead of waking for each
    /// socket that becomes readable or each message from another shard or
    /// the blocking pool, and handles what came meanwhile together (our
    /// vendored glommio's `coalesce_wakeups_until`, `TORSION.md` item 13).
    /// For a protocol that holds its output for the window anyway (the chat
    /// room's flush window): the wake-ups per input go and the latency
    /// stays the window's. Everything on the shard waits with it, other
    /// protocols' connections too, so only call it on shards that serve
    /// such a protocol. A later call extends the window, an earlier one
    /// does not shorten it. A manual clock ignores it; on Linux before 6.1
    /// the shard sleeps as usual.
    pub fn coalesce_wakeups_for(&self, window: Duration) {
        if let ClockKind::Real = self.kind {
            glommio::coalesce_wakeups_until(later(Instant::now(), window));
        }
    }

    /// Runs `f` once, `delay` from now, on this shard (Twisted's `callLater`).
    ///
    /// # Panics
    /// On a real clock, when called outside a shard (no glommio executor on
    /// this thread).
    pub fn call_later<F>(&self, delay: Duration, f: F) -> DelayedCall
    where
        F: FnOnce() + 'static,
    {
        let state = Rc::new(CallState {
            active: Cell::new(true),
            cancel_hook: RefCell::new(None),
        });
        match &self.kind {
            ClockKind::Real => {
                let task_state = state.clone();
                let task = glommio::spawn_local(async move {
                    glommio::timer::Timer::new(delay).await;
                    if task_state.active.replace(false) {
                        task_state.cancel_hook.borrow_mut().take();
                        shard::run_guarded("timer callback", f);
                    }
                })
                .detach();
                *state.cancel_hook.borrow_mut() = Some(Box::new(move || task.cancel()));
            }
            ClockKind::Manual(core) => {
                let key = (core.elapsed.get().saturating_add(delay), core.next_seq());
                let weak = Rc::downgrade(core);
                core.queue
                    .borrow_mut()
                    .insert(key, (state.clone(), Box::new(f)));
                *state.cancel_hook.borrow_mut() = Some(Box::new(move || {
                    if let Some(core) = weak.upgrade() {
                        core.queue.borrow_mut().remove(&key);
                    }
                }));
            }
        }
        DelayedCall { state }
    }

    /// A future that resolves `delay` from now on this clock (Twisted's
    /// `deferLater`). Dropping it cancels the underlying call.
    ///
    /// # Panics
    /// On a real clock, when called outside a shard.
    pub fn sleep(&self, delay: Duration) -> Sleep {
        if let ClockKind::Real = self.kind {
            // The shard's timer itself: no task, no callback.
            let delay = delay.min(FOREVER);
            return Sleep {
                kind: SleepKind::Real {
                    when: later(Instant::now(), delay),
                    timer: glommio::timer::Timer::new(delay),
                    registered: None,
                },
            };
        }
        let state = Rc::new(SleepState {
            done: Cell::new(false),
            waker: RefCell::new(None),
        });
        let fired = state.clone();
        let call = self.call_later(delay, move || {
            fired.done.set(true);
            if let Some(w) = fired.waker.borrow_mut().take() {
                w.wake();
            }
        });
        Sleep {
            kind: SleepKind::Manual { state, call },
        }
    }

    /// A future that resolves at `deadline` on this clock (at once if it
    /// has passed): for schedules of intended times.
    ///
    /// # Panics
    /// On a real clock, when called outside a shard.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        self.sleep(deadline.saturating_duration_since(self.now()))
    }

    /// Calls `f` every `interval`, the first time one interval from now
    /// (Twisted's `LoopingCall(f).start(interval, now=False)`). Ticks keep to
    /// the intended schedule; when the shard falls behind, missed ticks are
    /// skipped rather than run in a burst, as in Twisted. If `f` panics the
    /// loop stops (logged and counted).
    pub fn looping_call<F>(&self, interval: Duration, f: F) -> Result<LoopingCall, ClockError>
    where
        F: FnMut() + 'static,
    {
        if interval.is_zero() {
            return Err(ClockError::ZeroInterval);
        }
        let state = Rc::new(LoopState {
            running: Cell::new(true),
            current: RefCell::new(None),
            ticks: Cell::new(0),
        });
        let first = later(self.now(), interval);
        schedule_tick(
            self.clone(),
            state.clone(),
            Rc::new(RefCell::new(f)),
            interval,
            first,
        );
        Ok(LoopingCall { state })
    }
}

struct SleepState {
    done: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// The future returned by [`Clock::sleep`]: a glommio timer on a real
/// clock, a delayed call on a manual one. Dropping it cancels it.
pub struct Sleep {
    kind: SleepKind,
}

enum SleepKind {
    /// The shard's timer, registered with the waker of the last poll; a
    /// poll with the same waker before the deadline leaves it as it is
    /// (a connection's future is polled at every read).
    Real {
        timer: glommio::timer::Timer,
        when: Instant,
        registered: Option<Waker>,
    },
    Manual {
        state: Rc<SleepState>,
        call: DelayedCall,
    },
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SleepKind::Real { when, .. } => f.debug_struct("Sleep").field("until", when).finish(),
            SleepKind::Manual { state, .. } => f
                .debug_struct("Sleep")
                .field("done", &state.done.get())
                .finish(),
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.get_mut().kind {
            SleepKind::Real {
                timer,
                when,
                registered,
            } => {
                if Instant::now() >= *when {
                    return Poll::Ready(());
                }
                if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    return Poll::Pending;
                }
                let polled = Pin::new(timer).poll(cx).map(|_| ());
                *registered = Some(cx.waker().clone());
                polled
            }
            SleepKind::Manual { state, .. } => {
                if state.done.get() {
                    Poll::Ready(())
                } else {
                    *state.waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let SleepKind::Manual { call, .. } = &self.kind {
            call.cancel();
        }
    }
}

struct LoopState {
    running: Cell<bool>,
    current: RefCell<Option<DelayedCall>>,
    ticks: Cell<u64>,
}

/// A repeating call made by [`Clock::looping_call`]. Dropping the handle
/// does not stop the loop (as in Twisted); [`LoopingCall::stop`] does, so
/// keep the handle unless the loop is meant to run for the shard's life.
#[must_use = "the loop runs until stop(): without this handle it cannot be stopped"]
pub struct LoopingCall {
    state: Rc<LoopState>,
}

impl fmt::Debug for LoopingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopingCall")
            .field("running", &self.state.running.get())
            .field("ticks", &self.state.ticks.get())
            .finish()
    }
}

impl LoopingCall {
    /// Stops the loop; the function is not called again.
    pub fn stop(&self) {
        self.state.running.set(false);
        if let Some(call) = self.state.current.borrow_mut().take() {
            call.cancel();
        }
    }

    /// True until stopped (or stopped by a panic in the function).
    pub fn is_running(&self) -> bool {
        self.state.running.get()
    }

    /// How many times the function has run.
    pub fn ticks(&self) -> u64 {
        self.state.ticks.get()
    }
}

fn schedule_tick<F: FnMut() + 'static>(
    clock: Clock,
    state: Rc<LoopState>,
    f: Rc<RefCell<F>>,
    interval: Duration,
    deadline: Instant,
) {
    let delay = deadline.saturating_duration_since(clock.now());
    let tick_clock = clock.clone();
    let tick_state = state.clone();
    let call = clock.call_later(delay, move || {
        if !tick_state.running.get() {
            return;
        }
        tick_state.ticks.set(tick_state.ticks.get() + 1);
        let ok = shard::run_guarded("looping call", || (f.borrow_mut())());
        if !ok {
            tick_state.running.set(false);
            return;
        }
        if !tick_state.running.get() {
            return;
        }
        let now = tick_clock.now();
        let mut next = later(deadline, interval);
        if next <= now {
            let behind = now.duration_since(deadline).as_nanos() / interval.as_nanos();
            let skip = u32::try_from(behind).unwrap_or(u32::MAX - 1);
            next = later(deadline, interval.saturating_mul(skip + 1));
        }
        schedule_tick(tick_clock, tick_state, f, interval, next);
    });
    *state.current.borrow_mut() = Some(call);
}

type ManualQueue = BTreeMap<(Duration, u64), (Rc<CallState>, Box<dyn FnOnce()>)>;

struct ManualCore {
    start: Instant,
    elapsed: Cell<Duration>,
    seq: Cell<u64>,
    queue: RefCell<ManualQueue>,
}

impl ManualCore {
    fn next_seq(&self) -> u64 {
        let s = self.seq.get();
        self.seq.set(s + 1);
        s
    }
}

/// A virtual clock for tests (Twisted's `task.Clock`): nothing fires until
/// the test calls [`ManualClock::advance`].
#[derive(Clone)]
pub struct ManualClock {
    core: Rc<ManualCore>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.core.elapsed.get())
            .field("pending", &self.core.queue.borrow().len())
            .finish()
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A manual clock at virtual time zero.
    pub fn new() -> ManualClock {
        ManualClock {
            core: Rc::new(ManualCore {
                start: Instant::now(),
                elapsed: Cell::new(Duration::ZERO),
                seq: Cell::new(0),
                queue: RefCell::new(BTreeMap::new()),
            }),
        }
    }

    /// The [`Clock`] handle protocols schedule on.
    pub fn clock(&self) -> Clock {
        Clock {
            kind: ClockKind::Manual(self.core.clone()),
        }
    }

    /// Virtual time elapsed since the clock was made.
    pub fn elapsed(&self) -> Duration {
        self.core.elapsed.get()
    }

    /// Calls waiting to fire.
    pub fn pending(&self) -> usize {
        self.core.queue.borrow().len()
    }

    /// Moves time forward by `by`, running every call that falls due, in
    /// deadline order (calls scheduled by those calls included, if due).
    /// Returns how many calls ran.
    pub fn advance(&self, by: Duration) -> usize {
        let target = self.core.elapsed.get().saturating_add(by);
        let mut ran = 0;
        loop {
            let next = {
                let mut queue = self.core.queue.borrow_mut();
                match queue.first_key_value() {
                    Some((&(at, _), _)) if at <= target => queue.pop_first(),
                    _ => None,
                }
            };
            let Some(((at, _), (state, f))) = next else {
                break;
            };
            self.core.elapsed.set(at);
            if state.active.replace(false) {
                state.cancel_hook.borrow_mut().take();
                shard::run_guarded("timer callback", f);
                ran += 1;
            }
        }
        // A call may have advanced the clock itself (a nested `advance`):
        // time never goes back.
        self.core.elapsed.set(self.core.elapsed.get().max(target));
        ran
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_calls_fire_in_deadline_order_only_when_advanced() {
        let clock = ManualClock::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        for (name, ms) in [("b", 20u64), ("a", 10), ("c", 30)] {
            let log = log.clone();
            clock
                .clock()
                .call_later(Duration::from_millis(ms), move || {
                    log.borrow_mut().push(name)
                });
        }
        assert_eq!(clock.advance(Duration::from_millis(9)), 0);
        assert!(log.borrow().is_empty());
        assert_eq!(clock.advance(Duration::from_millis(11)), 2);
        assert_eq!(*log.borrow(), vec!["a", "b"]);
        assert_eq!(clock.pending(), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(*log.borrow(), vec!["a", "b", "c"]);
    }

    #[test]
    fn cancelled_calls_never_run() {
        let clock = ManualClock::new();
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let call = clock
            .clock()
            .call_later(Duration::from_secs(1), move || r.set(true));
        assert!(call.is_active());
        call.cancel();
        call.cancel();
        assert!(!call.is_active());
        assert_eq!(clock.pending(), 0);
        clock.advance(Duration::from_secs(5));
        assert!(!ran.get());
    }

    #[test]
    fn calls_scheduled_by_calls_fire_within_the_same_advance() {
        let clock = ManualClock::new();
        let hits = Rc::new(Cell::new(0));
        let (c, h) = (clock.clock(), hits.clone());
        clock.clock().call_later(Duration::from_millis(5), move || {
            h.set(h.get() + 1);
            let h2 = h.clone();
            c.call_later(Duration::from_millis(5), move || h2.set(h2.get() + 10));
        });
        clock.advance(Duration::from_millis(10));
        assert_eq!(hits.get(), 11);
        assert_eq!(clock.elapsed(), Duration::from_millis(10));
    }

    #[test]
    fn a_tick_that_runs_long_skips_the_ticks_it_overran() {
        // The callback "takes" 3.5 intervals (it advances the manual clock
        // itself, as a slow callback lets real time pass): the ticks due at
        // 2 s, 3 s and 4 s are skipped, as in Twisted, and the schedule
        // resumes at 5 s, on the original grid.
        let clock = ManualClock::new();
        let at = Rc::new(RefCell::new(Vec::new()));
        let (c, log) = (clock.clone(), at.clone());
        let lc = clock
            .clock()
            .looping_call(Duration::from_secs(1), move || {
                let first = log.borrow().is_empty();
                log.borrow_mut().push(c.elapsed());
                if first {
                    c.advance(Duration::from_millis(3500));
                }
            })
            .unwrap();
        clock.advance(Duration::from_secs(1)); // first tick at 1 s, runs to 4.5 s
        assert_eq!(*at.borrow(), [Duration::from_secs(1)]);
        clock.advance(Duration::from_millis(400)); // 4.9 s: nothing due
        assert_eq!(at.borrow().len(), 1);
        clock.advance(Duration::from_millis(100)); // 5 s
        assert_eq!(
            *at.borrow(),
            [Duration::from_secs(1), Duration::from_secs(5)]
        );
        assert_eq!(lc.ticks(), 2);
    }

    #[test]
    fn looping_call_ticks_each_interval_on_the_manual_clock() {
        let clock = ManualClock::new();
        let n = Rc::new(Cell::new(0));
        let n2 = n.clone();
        let lc = clock
            .clock()
            .looping_call(Duration::from_secs(1), move || n2.set(n2.get() + 1))
            .unwrap();
        clock.advance(Duration::from_millis(999));
        assert_eq!(n.get(), 0);
        for _ in 0..3 {
            clock.advance(Duration::from_secs(1));
        }
        assert_eq!(n.get(), 3);
        // A 10 s jump runs the loop once per step of virtual time the clock
        // passes through; the manual clock visits each deadline, so ticks are
        // not lost in between.
        clock.advance(Duration::from_secs(10));
        assert_eq!(n.get(), 13);
        lc.stop();
        clock.advance(Duration::from_secs(10));
        assert_eq!(n.get(), 13);
        assert!(!lc.is_running());
        assert_eq!(lc.ticks(), 13);
    }

    #[test]
    fn sleep_resolves_when_the_manual_clock_passes_it() {
        let clock = ManualClock::new();
        let mut sleep = Box::pin(clock.clock().sleep(Duration::from_secs(3)));
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        let mut cx = Context::from_waker(&waker);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        clock.advance(Duration::from_secs(2));
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        clock.advance(Duration::from_secs(1));
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
        drop(sleep);
        let dropped = clock.clock().sleep(Duration::from_secs(1));
        assert_eq!(clock.pending(), 1);
        drop(dropped);
        assert_eq!(clock.pending(), 0, "dropping a sleep cancels it");
    }

    #[test]
    fn delays_too_long_for_an_instant_never_panic() {
        let clock = ManualClock::new();
        let fired = Rc::new(Cell::new(false));
        let f = fired.clone();
        let call = clock.clock().call_later(Duration::MAX, move || f.set(true));
        let _loop = clock.clock().looping_call(Duration::MAX, || {}).unwrap();
        clock.advance(Duration::from_secs(3600));
        assert!(call.is_active() && !fired.get());
        clock.advance(Duration::from_secs(1000 * 24 * 3600));
        let _ = clock.clock().now();
        let _sleep = clock.clock().sleep(Duration::MAX);
    }

    #[test]
    fn zero_interval_is_an_error() {
        let clock = ManualClock::new();
        assert_eq!(
            clock
                .clock()
                .looping_call(Duration::ZERO, || {})
                .unwrap_err(),
            ClockError::ZeroInterval
        );
    }

    #[test]
    fn a_panicking_callback_is_contained_and_stops_its_loop() {
        let clock = ManualClock::new();
        let lc = clock
            .clock()
            .looping_call(Duration::from_secs(1), || panic!("boom"))
            .unwrap();
        let after = Rc::new(Cell::new(false));
        let a = after.clone();
        clock
            .clock()
            .call_later(Duration::from_secs(2), move || a.set(true));
        clock.advance(Duration::from_secs(3));
        assert!(!lc.is_running());
        assert!(after.get(), "later calls still run after a panic");
    }
}
