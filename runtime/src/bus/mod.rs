//! The cross-shard bus: typed messages between shards.
//!
//! A [`Bus<M>`] has one inbox per shard: an unbounded crossbeam channel plus
//! the shard's doorbell (see `doorbell.rs`). Each shard *attaches* once, on
//! its own thread, giving a handler that runs on that shard for every
//! message it receives; it gets back a [`BusHandle`] to send with:
//! [`BusHandle::send_to`] one shard, [`BusHandle::broadcast`] every other
//! shard (or [`BusHandle::broadcast_all`] including itself).
//!
//! # Ordering
//!
//! Messages from one shard to another arrive in the order they were sent
//! (one FIFO channel per destination; each sender's pushes are ordered).
//!
//! # How a shard is woken (and what it costs)
//!
//! The receiving task drains its inbox in batches (up to 256 messages, then
//! it yields so connections get their turn) until it is empty. Then it
//! *parks*: it sets its `parked` flag, checks the inbox once more (a message
//! pushed before the flag was visible is found here), and waits on its
//! doorbell — an io_uring read, so a parked shard costs no CPU at all. A
//! sender pushes its message and then swaps the destination's `parked` flag
//! to false; only the sender that finds it true rings the bell (one
//! `write(2)`). So a burst of any number of messages to a parked shard costs
//! one ring and one wake-up, and messages to a shard that is awake cost no
//! syscall at all. `SeqCst` fences on both sides close the race between
//! "push, then check flag" and "set flag, then check inbox". Messages a
//! shard sends to itself go through the same inbox (keeping order) and wake
//! the receiving task directly, without a syscall.
//!
//! # When a shard stops
//!
//! A shard's inbox closes when its receiving task ends (the shard stopped,
//! or [`BusHandle::stop_receiving`]): sends to it fail with
//! [`BusError::Disconnected`] from then on, and messages still queued are
//! dropped (an [`Rpc`] answers the calls among them with
//! [`RpcError::Stopped`] instead).
//!
//! Inboxes are unbounded: a shard that cannot keep up accumulates messages.
//! Handlers should be quick (queue work, write to transports) — they run on
//! the shard between connection callbacks. A panic in a handler is logged,
//! counted and contained; the next message is delivered as usual.
//!
//! # From other threads
//!
//! [`Bus::sender`] gives a [`BusSender`] that any thread may use (a
//! blocking worker, a bridge to another system): it pushes and rings
//! exactly as a shard does.
//!
//! # Request and response
//!
//! [`Rpc`] (`rpc.rs`) builds awaitable calls on a bus: a shard asks another
//! to serve a request (an async function there) and awaits the response on
//! its own shard.
//!
//! # In tests
//!
//! [`ManualBus`] gives every shard of a test a handle on one thread, with no
//! executor: messages wait until [`ManualBus::pump`] delivers them, in order,
//! so cross-shard protocol logic is tested deterministically with the test
//! kit.

pub(crate) mod doorbell;
pub mod invoke;
pub mod oneshot;
pub mod rpc;

pub use rpc::{Rpc, RpcCall, RpcError, RpcMessage};

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::task::{Context, Waker};

use crossbeam_channel::{Receiver, Sender};

use crate::bus::doorbell::{doorbell, Doorbell, DoorbellReceiver};
use crate::counters::ShardCounter;
use crate::shard::wake_flag::WakeFlag;
use crate::shard::{self, ShardInfo};

/// Most messages handled per turn before yielding to other tasks.
const BATCH: usize = 256;

/// Bus errors.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// A shard id outside `0..shards`.
    #[error("no shard {shard} on this bus ({shards} shards)")]
    NoSuchShard {
        /// The shard asked for.
        shard: usize,
        /// The bus's shard count.
        shards: usize,
    },
    /// The shard already attached (each shard attaches once).
    #[error("shard {0} is already attached to this bus")]
    AlreadyAttached(usize),
    /// The destination's inbox is gone (its shard stopped).
    #[error("shard {0} has stopped receiving")]
    Disconnected(usize),
    /// A shard's doorbell (a socket pair) could not be made; the OS error
    /// is the source.
    #[error("cannot create the bus's doorbells")]
    Setup(#[source] std::sync::Arc<std::io::Error>),
}

/// Equal when the same kind of error about the same shards (a `Setup`
/// error: the same kind of OS error).
impl PartialEq for BusError {
    fn eq(&self, other: &Self) -> bool {
        use BusError::*;
        match (self, other) {
            (
                NoSuchShard { shard, shards },
                NoSuchShard {
                    shard: s2,
                    shards: n2,
                },
            ) => shard == s2 && shards == n2,
            (AlreadyAttached(a), AlreadyAttached(b)) | (Disconnected(a), Disconnected(b)) => a == b,
            (Setup(a), Setup(b)) => a.kind() == b.kind(),
            _ => false,
        }
    }
}

impl Eq for BusError {}

struct Inbox<M> {
    tx: Sender<M>,
    bell: Doorbell,
    parked: AtomicBool,
    /// The shard stopped receiving (its receive loop ended: the shard
    /// stopped, or `stop_receiving`): sends to it fail.
    closed: AtomicBool,
    /// Times the receive loop woke from its park (written by its shard).
    wake_ups: AtomicU64,
    /// Messages this shard's handler was given (written by its shard).
    received: ShardCounter,
    /// Messages this shard sent, to any shard (written by its shard: a
    /// [`BusHandle`] lives on the shard that attached).
    sent: ShardCounter,
}

/// One shard's traffic on a bus, read from any thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BusShardStats {
    /// The shard.
    pub shard: usize,
    /// Messages the shard sent (to any shard, itself included).
    pub sent: u64,
    /// Messages handed to the shard's handler.
    pub received: u64,
    /// Messages waiting in the shard's inbox now.
    pub inbox_depth: u64,
    /// Times the shard's receiving task woke from its park.
    pub wake_ups: u64,
}

/// A shard's receiving end, waiting for the shard to attach.
type Unattached<M> = Mutex<Option<(Receiver<M>, DoorbellReceiver)>>;

struct Shared<M> {
    inboxes: Vec<Inbox<M>>,
    /// Taken once by each shard when it attaches (start-up only).
    receivers: Vec<Unattached<M>>,
}

/// A bus between `n` shards, carrying messages of type `M`. Cheap to clone;
/// `Send + Sync`, so the factory closure of every shard can hold it.
pub struct Bus<M> {
    shared: Arc<Shared<M>>,
}

impl<M> Clone for Bus<M> {
    fn clone(&self) -> Self {
        Bus {
            shared: self.shared.clone(),
        }
    }
}

impl<M> fmt::Debug for Bus<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("shards", &self.shared.inboxes.len())
            .finish()
    }
}

impl<M: Send + 'static> Bus<M> {
    /// A bus with one inbox per shard (`shards` must match the server's).
    pub fn new(shards: usize) -> Result<Bus<M>, BusError> {
        let mut inboxes = Vec::with_capacity(shards);
        let mut receivers = Vec::with_capacity(shards);
        for _ in 0..shards {
            let (tx, rx) = crossbeam_channel::unbounded();
            let (bell, bell_rx) =
                doorbell().map_err(|e| BusError::Setup(std::sync::Arc::new(e)))?;
            inboxes.push(Inbox {
                tx,
                bell,
                parked: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                wake_ups: AtomicU64::new(0),
                received: ShardCounter::default(),
                sent: ShardCounter::default(),
            });
            receivers.push(Mutex::new(Some((rx, bell_rx))));
        }
        Ok(Bus {
            shared: Arc::new(Shared { inboxes, receivers }),
        })
    }

    /// How many shards the bus connects.
    pub fn shard_count(&self) -> usize {
        self.shared.inboxes.len()
    }

    /// How many times `shard`'s receiving task has woken from its park (a
    /// ring from another shard, or a send to itself); `None` for a shard
    /// the bus does not have. A shard nobody sends to does not wake: this
    /// stays put while the bus is idle.
    pub fn wake_ups(&self, shard: usize) -> Option<u64> {
        self.shared
            .inboxes
            .get(shard)
            .map(|i| i.wake_ups.load(Relaxed))
    }

    /// A sender for threads that are not shards (see [`BusSender`]).
    pub fn sender(&self) -> BusSender<M> {
        BusSender {
            shared: self.shared.clone(),
        }
    }

    /// Every shard's traffic (messages sent, received, waiting), in shard
    /// order: relaxed reads, for metrics.
    pub fn shard_stats(&self) -> Vec<BusShardStats> {
        self.shared
            .inboxes
            .iter()
            .enumerate()
            .map(|(shard, inbox)| BusShardStats {
                shard,
                sent: inbox.sent.get(),
                received: inbox.received.get(),
                inbox_depth: inbox.tx.len() as u64,
                wake_ups: inbox.wake_ups.load(Relaxed),
            })
            .collect()
    }

    /// Attaches the current shard: `handler` runs on this shard for every
    /// message sent to it. Call once per shard, on the shard (typically in
    /// the factory closure).
    ///
    /// # Panics
    /// When called off a shard (no glommio executor on this thread).
    pub fn attach<H>(&self, shard: &ShardInfo, handler: H) -> Result<BusHandle<M>, BusError>
    where
        H: FnMut(M) + 'static,
    {
        self.attach_with_leftovers(shard, handler, || {}, |_| {})
    }

    /// Like [`Bus::attach`]; when the shard stops receiving, `closing`
    /// runs, then `leftover` gets each message still in its inbox (an
    /// [`Rpc`] answers the calls it is serving, and those among the
    /// leftovers, with an error instead of leaving their callers waiting).
    pub(crate) fn attach_with_leftovers<H, C, L>(
        &self,
        shard: &ShardInfo,
        handler: H,
        closing: C,
        leftover: L,
    ) -> Result<BusHandle<M>, BusError>
    where
        H: FnMut(M) + 'static,
        C: FnOnce() + 'static,
        L: FnMut(M) + 'static,
    {
        let shards = self.shard_count();
        let slot = self
            .shared
            .receivers
            .get(shard.id)
            .ok_or(BusError::NoSuchShard {
                shard: shard.id,
                shards,
            })?;
        let (rx, bell_rx) = slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .ok_or(BusError::AlreadyAttached(shard.id))?;
        let local = Rc::new(LocalWake::default());
        let closer = Rc::new(InboxCloser {
            shared: self.shared.clone(),
            me: shard.id,
            rx: rx.clone(),
            closing: RefCell::new(Some(Box::new(closing))),
            leftover: RefCell::new(Box::new(leftover)),
            done: Cell::new(false),
        });
        let weak: std::rc::Weak<dyn CloseInbox> = Rc::downgrade(&closer) as _;
        ATTACHED.with(|a| {
            let mut a = a.borrow_mut();
            a.retain(|w| w.strong_count() > 0);
            a.push(weak);
        });
        let task = glommio::spawn_local(receive_loop(
            self.shared.clone(),
            shard.id,
            rx,
            bell_rx,
            local.clone(),
            handler,
            CloseOnDrop(closer.clone()),
        ))
        .detach();
        Ok(BusHandle {
            kind: HandleKind::Real {
                shared: self.shared.clone(),
                me: shard.id,
                local,
                task,
                closer: closer as Rc<dyn CloseInbox>,
            },
        })
    }
}

/// Wakes this shard's own receive loop without a syscall.
#[derive(Default)]
struct LocalWake {
    pending: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl LocalWake {
    fn wake(&self) {
        self.pending.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// Closes a shard's inbox: later sends fail, and what is still queued goes
/// to the leftover handler. Done once, when the shard stops (every inbox a
/// shard attached is closed by [`close_inboxes_here`] before its executor
/// ends) or its receive loop ends (cancelled, `stop_receiving`).
struct InboxCloser<M> {
    shared: Arc<Shared<M>>,
    me: usize,
    rx: Receiver<M>,
    closing: RefCell<Option<Box<dyn FnOnce()>>>,
    leftover: RefCell<Box<dyn FnMut(M)>>,
    done: Cell<bool>,
}

impl<M> InboxCloser<M> {
    fn close(&self) {
        if self.done.replace(true) {
            return;
        }
        // Closed first, then drained: a sender that pushed after the drain
        // sees the flag (it checks after pushing), so every message is
        // either drained here or refused to its sender (or both).
        self.shared.inboxes[self.me].closed.store(true, SeqCst);
        fence(SeqCst);
        if let Some(closing) = self.closing.borrow_mut().take() {
            shard::run_guarded("bus closing handler", closing);
        }
        while let Ok(msg) = self.rx.try_recv() {
            let mut leftover = self.leftover.borrow_mut();
            shard::run_guarded("bus leftover handler", || (*leftover)(msg));
        }
    }
}

/// Something a shard closes when it stops.
trait CloseInbox {
    fn close(&self);
}

impl<M> CloseInbox for InboxCloser<M> {
    fn close(&self) {
        InboxCloser::close(self)
    }
}

thread_local! {
    /// The inboxes attached on this thread, to close when its shard stops.
    static ATTACHED: RefCell<Vec<std::rc::Weak<dyn CloseInbox>>> = const { RefCell::new(Vec::new()) };
}

/// Closes every bus inbox the current thread's shard attached (sends to
/// them fail from now on, calls waiting in them are answered): called by
/// the shard thread when it stops, while its executor still runs.
pub(crate) fn close_inboxes_here() {
    let attached = ATTACHED.with(|a| std::mem::take(&mut *a.borrow_mut()));
    for closer in attached.iter().filter_map(std::rc::Weak::upgrade) {
        closer.close();
    }
}

/// Closes the inbox when the receive loop's future is dropped.
struct CloseOnDrop<M>(Rc<InboxCloser<M>>);

impl<M> Drop for CloseOnDrop<M> {
    fn drop(&mut self) {
        self.0.close();
    }
}

async fn receive_loop<M, H>(
    shared: Arc<Shared<M>>,
    me: usize,
    rx: Receiver<M>,
    bell: DoorbellReceiver,
    local: Rc<LocalWake>,
    mut handler: H,
    _closing: CloseOnDrop<M>,
) where
    M: Send + 'static,
    H: FnMut(M) + 'static,
{
    let mut bell = bell.listen();
    let inbox = &shared.inboxes[me];
    // glommio polls a new task inside `spawn_local`: wait for the next turn,
    // so that `attach` has returned (and its caller stored the handle) before
    // the first message is handled.
    futures_lite::future::yield_now().await;
    loop {
        // Drain in batches, yielding between them.
        // (The channel cannot disconnect: its senders live in `shared`,
        // which this loop holds.)
        let mut handled = 0;
        while let Ok(msg) = rx.try_recv() {
            // Counted before the handler runs, so a scrape that sees the
            // handler's effects sees the message counted.
            inbox.received.add(1);
            shard::run_guarded("bus handler", || handler(msg));
            handled += 1;
            if handled % BATCH == 0 {
                glommio::yield_if_needed().await;
            }
        }
        // Park: flag first, then one last look, then sleep on the bell.
        local.pending.set(false);
        inbox.parked.store(true, SeqCst);
        fence(SeqCst);
        if !rx.is_empty() {
            inbox.parked.store(false, SeqCst);
            continue;
        }
        // (The bell cannot reach end-of-file here: this loop holds the
        // shared inboxes, and with them every bell's sending end.)
        futures_lite::future::or(
            async {
                bell.rung().await;
            },
            futures_lite::future::poll_fn(|cx| {
                if local.pending.get() {
                    Poll::Ready(())
                } else {
                    *local.waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            }),
        )
        .await;
        inbox.parked.store(false, SeqCst);
        inbox.wake_ups.fetch_add(1, Relaxed);
    }
}

/// Pushes `msg` into `shard`'s inbox from another thread and rings its
/// bell if it is parked (the sender's half of the park protocol above).
fn deliver<M>(shared: &Shared<M>, shard: usize, msg: M) -> Result<(), BusError> {
    let shards = shared.inboxes.len();
    let inbox = shared
        .inboxes
        .get(shard)
        .ok_or(BusError::NoSuchShard { shard, shards })?;
    if inbox.closed.load(SeqCst) {
        return Err(BusError::Disconnected(shard));
    }
    inbox
        .tx
        .send(msg)
        .map_err(|_| BusError::Disconnected(shard))?;
    fence(SeqCst);
    if inbox.closed.load(SeqCst) {
        // Closed meanwhile: nobody may ever read it (its leftover handler
        // may have; see `CloseOnDrop`).
        return Err(BusError::Disconnected(shard));
    }
    if inbox.parked.swap(false, SeqCst) {
        inbox.bell.ring();
    }
    Ok(())
}

/// Sends into a bus from any thread — a blocking worker, a bridge to
/// another system — not only from a shard: the same inboxes and doorbells,
/// so a parked shard wakes for it, and one thread's messages to a shard
/// arrive in the order it sent them. `Send + Sync`, cheap to clone. Its
/// messages count in the receiving shard's `received` but in no shard's
/// `sent` (those count shards' own sends).
pub struct BusSender<M> {
    shared: Arc<Shared<M>>,
}

impl<M> Clone for BusSender<M> {
    fn clone(&self) -> Self {
        BusSender {
            shared: self.shared.clone(),
        }
    }
}

impl<M> fmt::Debug for BusSender<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusSender")
            .field("shards", &self.shared.inboxes.len())
            .finish()
    }
}

impl<M: Send + 'static> BusSender<M> {
    /// Sends `msg` to `shard`.
    pub fn send_to(&self, shard: usize, msg: M) -> Result<(), BusError> {
        deliver(&self.shared, shard, msg)
    }

    /// Sends a copy of `msg` to every shard.
    pub fn broadcast_all(&self, msg: M) -> Result<(), BusError>
    where
        M: Clone,
    {
        for shard in 0..self.shared.inboxes.len() {
            deliver(&self.shared, shard, msg.clone())?;
        }
        Ok(())
    }

    /// How many shards the bus connects.
    pub fn shard_count(&self) -> usize {
        self.shared.inboxes.len()
    }
}

enum HandleKind<M> {
    Real {
        shared: Arc<Shared<M>>,
        me: usize,
        local: Rc<LocalWake>,
        task: glommio::task::JoinHandle<()>,
        closer: Rc<dyn CloseInbox>,
    },
    Manual {
        core: Rc<ManualCore<M>>,
        me: usize,
    },
}

/// One shard's end of a bus: send from here. `!Send`: it belongs to the
/// shard that attached.
pub struct BusHandle<M> {
    kind: HandleKind<M>,
}

impl<M> fmt::Debug for BusHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusHandle")
            .field("shard", &self.shard_id())
            .field("shards", &self.shard_count())
            .finish()
    }
}

impl<M: Send + 'static> BusHandle<M> {
    /// Sends `msg` to `shard` (which may be this one).
    pub fn send_to(&self, shard: usize, msg: M) -> Result<(), BusError> {
        match &self.kind {
            HandleKind::Real {
                shared, me, local, ..
            } => {
                // Counted before the message is queued (and taken back if
                // it cannot be): a receiver never handles a message its
                // sender has not counted, so a quiet bus always shows
                // sent = received + waiting.
                let sent = &shared.inboxes[*me].sent;
                sent.add(1);
                let queued = if shard == *me {
                    let inbox = &shared.inboxes[*me];
                    let queued = if inbox.closed.load(SeqCst) {
                        Err(BusError::Disconnected(shard))
                    } else {
                        inbox
                            .tx
                            .send(msg)
                            .map_err(|_| BusError::Disconnected(shard))
                    };
                    if queued.is_ok() {
                        local.wake();
                    }
                    queued
                } else {
                    deliver(shared, shard, msg)
                };
                if queued.is_err() {
                    sent.add(u64::MAX); // wrapping: one back
                }
                queued
            }
            HandleKind::Manual { core, .. } => {
                let shards = core.queues.len();
                let q = core
                    .queues
                    .get(shard)
                    .ok_or(BusError::NoSuchShard { shard, shards })?;
                q.borrow_mut().push_back(msg);
                Ok(())
            }
        }
    }

    /// Sends a copy of `msg` to every other shard.
    pub fn broadcast(&self, msg: M) -> Result<(), BusError>
    where
        M: Clone,
    {
        let me = self.shard_id();
        for shard in (0..self.shard_count()).filter(|&s| s != me) {
            self.send_to(shard, msg.clone())?;
        }
        Ok(())
    }

    /// Sends a copy of `msg` to every shard, this one included.
    pub fn broadcast_all(&self, msg: M) -> Result<(), BusError>
    where
        M: Clone,
    {
        for shard in 0..self.shard_count() {
            self.send_to(shard, msg.clone())?;
        }
        Ok(())
    }
}

impl<M> BusHandle<M> {
    /// The shard this handle sends from.
    pub fn shard_id(&self) -> usize {
        match &self.kind {
            HandleKind::Real { me, .. } | HandleKind::Manual { me, .. } => *me,
        }
    }

    /// How many shards the bus connects.
    pub fn shard_count(&self) -> usize {
        match &self.kind {
            HandleKind::Real { shared, .. } => shared.inboxes.len(),
            HandleKind::Manual { core, .. } => core.queues.len(),
        }
    }

    /// Runs `future` on this handle's shard (on a manual bus: during
    /// [`ManualBus::pump`]); dropping the returned task cancels it.
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + 'static) -> LocalTask {
        match &self.kind {
            HandleKind::Real { .. } => LocalTask::Real(glommio::spawn_local(future)),
            HandleKind::Manual { core, .. } => {
                let (woken, waker) = WakeFlag::raised();
                let cancelled = Rc::new(Cell::new(false));
                core.tasks.borrow_mut().push(ManualTask {
                    future: Box::pin(future),
                    woken,
                    waker,
                    cancelled: cancelled.clone(),
                });
                LocalTask::Manual(cancelled)
            }
        }
    }

    /// Stops this shard's receiving task: no further message is handled
    /// here (those still queued are dropped). Dropping the handle does
    /// *not* do this; the shard keeps receiving.
    pub fn stop_receiving(&self) {
        if let HandleKind::Real { task, closer, .. } = &self.kind {
            closer.close();
            task.cancel();
        }
    }
}

type ManualHandler<M> = Box<dyn FnMut(M)>;

struct ManualCore<M> {
    queues: Vec<RefCell<VecDeque<M>>>,
    handlers: Vec<RefCell<Option<ManualHandler<M>>>>,
    /// Tasks spawned through the bus's handles (an [`Rpc`]'s calls that
    /// wait), polled by [`ManualBus::pump`].
    tasks: RefCell<Vec<ManualTask>>,
}

/// A task of a [`ManualBus`]: polled when its waker raised its flag.
struct ManualTask {
    future: Pin<Box<dyn Future<Output = ()>>>,
    woken: Arc<WakeFlag>,
    waker: Waker,
    cancelled: Rc<Cell<bool>>,
}

/// A task started on the shard of a [`BusHandle`] ([`BusHandle::spawn`]):
/// dropping it cancels the task.
pub(crate) enum LocalTask {
    /// On a real shard: glommio's task (dropping it cancels).
    Real(#[allow(dead_code)] glommio::Task<()>),
    /// On a manual bus: its cancelled flag.
    Manual(Rc<Cell<bool>>),
}

impl Drop for LocalTask {
    fn drop(&mut self) {
        if let LocalTask::Manual(cancelled) = self {
            cancelled.set(true);
        }
    }
}

/// A bus for tests: every shard's handle lives on the test's thread and
/// messages move only when [`ManualBus::pump`] is called.
pub struct ManualBus<M> {
    core: Rc<ManualCore<M>>,
}

impl<M> fmt::Debug for ManualBus<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualBus")
            .field("shards", &self.core.queues.len())
            .finish()
    }
}

impl<M: Send + 'static> ManualBus<M> {
    /// A manual bus between `shards` pretend shards.
    pub fn new(shards: usize) -> ManualBus<M> {
        ManualBus {
            core: Rc::new(ManualCore {
                queues: (0..shards).map(|_| RefCell::new(VecDeque::new())).collect(),
                handlers: (0..shards).map(|_| RefCell::new(None)).collect(),
                tasks: RefCell::new(Vec::new()),
            }),
        }
    }

    /// Attaches pretend shard `shard` with its handler.
    pub fn attach<H>(&self, shard: usize, handler: H) -> Result<BusHandle<M>, BusError>
    where
        H: FnMut(M) + 'static,
    {
        let shards = self.core.queues.len();
        let slot = self
            .core
            .handlers
            .get(shard)
            .ok_or(BusError::NoSuchShard { shard, shards })?;
        if slot.borrow().is_some() {
            return Err(BusError::AlreadyAttached(shard));
        }
        *slot.borrow_mut() = Some(Box::new(handler));
        Ok(BusHandle {
            kind: HandleKind::Manual {
                core: self.core.clone(),
                me: shard,
            },
        })
    }

    /// How many pretend shards the bus connects.
    pub fn shard_count(&self) -> usize {
        self.core.queues.len()
    }

    /// Messages waiting for delivery.
    pub fn pending(&self) -> usize {
        self.core.queues.iter().map(|q| q.borrow().len()).sum()
    }

    /// Delivers queued messages (and those they cause) until every inbox is
    /// empty and every task spawned on the bus's shards (an [`Rpc`]'s
    /// waiting calls) has run as far as it can; returns how many messages
    /// were delivered.
    pub fn pump(&self) -> usize {
        let mut delivered = 0;
        loop {
            let mut moved = self.run_tasks();
            for (shard, queue) in self.core.queues.iter().enumerate() {
                let next = queue.borrow_mut().pop_front();
                if let Some(msg) = next {
                    moved = true;
                    delivered += 1;
                    let mut handler = self.core.handlers[shard].borrow_mut().take();
                    if let Some(h) = handler.as_mut() {
                        shard::run_guarded("bus handler", || h(msg));
                    }
                    *self.core.handlers[shard].borrow_mut() = handler;
                }
            }
            if !moved {
                return delivered;
            }
        }
    }

    /// Polls the bus's woken tasks once each; true if any was polled.
    fn run_tasks(&self) -> bool {
        let mut tasks = std::mem::take(&mut *self.core.tasks.borrow_mut());
        let mut polled = false;
        tasks.retain_mut(|task| {
            if task.cancelled.get() {
                return false;
            }
            if !task.woken.take() {
                return true;
            }
            polled = true;
            let mut cx = Context::from_waker(&task.waker);
            let future = &mut task.future;
            let done = shard::call_guarded("bus task", || future.as_mut().poll(&mut cx).is_ready());
            !matches!(done, Some(true) | None)
        });
        // Tasks spawned while these ran were queued meanwhile.
        let mut queued = self.core.tasks.borrow_mut();
        tasks.append(&mut queued);
        *queued = tasks;
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_bus_delivers_in_send_order_per_pair() {
        let bus = ManualBus::<(usize, u32)>::new(3);
        type Inboxes = Rc<RefCell<Vec<Vec<(usize, u32)>>>>;
        let got: Inboxes = Rc::new(RefCell::new(vec![vec![]; 3]));
        let handles: Vec<_> = (0..3)
            .map(|s| {
                let got = got.clone();
                bus.attach(s, move |m| got.borrow_mut()[s].push(m)).unwrap()
            })
            .collect();
        for i in 0..5 {
            handles[0].broadcast((0, i)).unwrap();
            handles[1].send_to(2, (1, i)).unwrap();
        }
        handles[2].broadcast_all((2, 0)).unwrap();
        assert_eq!(bus.pending(), 18);
        assert_eq!(bus.pump(), 18);
        let got = got.borrow();
        let from = |shard: usize, src: usize| -> Vec<u32> {
            got[shard]
                .iter()
                .filter(|m| m.0 == src)
                .map(|m| m.1)
                .collect()
        };
        assert_eq!(from(1, 0), vec![0, 1, 2, 3, 4]);
        assert_eq!(from(2, 0), vec![0, 1, 2, 3, 4]);
        assert_eq!(from(2, 1), vec![0, 1, 2, 3, 4]);
        assert!(from(0, 0).is_empty(), "broadcast skips the sender");
        assert_eq!(from(2, 2), vec![0]);
    }

    #[test]
    fn bad_shards_are_errors() {
        let bus = ManualBus::<u8>::new(2);
        let h = bus.attach(0, |_| {}).unwrap();
        assert_eq!(
            bus.attach(0, |_| {}).unwrap_err(),
            BusError::AlreadyAttached(0)
        );
        assert_eq!(
            h.send_to(5, 1).unwrap_err(),
            BusError::NoSuchShard {
                shard: 5,
                shards: 2
            }
        );
        assert_eq!(
            bus.attach(9, |_| {}).unwrap_err(),
            BusError::NoSuchShard {
                shard: 9,
                shards: 2
            }
        );
    }
}
