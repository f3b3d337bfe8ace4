//! One shard's chat room: its clients, the names it owns, and the protocol
//! logic that crosses shards.
//!
//! Everything here runs on one shard and is `Rc`/`RefCell`, never locked.
//! Connection events come from [`ChatClient`](super::ChatClient); messages
//! from other shards (and this one) come from the bus through
//! [`Room::on_message`].
//!
//! # Back-pressure: a fast sender cannot get healthy readers cut
//!
//! Every line reaches every named client, so a recipient that is behind is
//! behind on *every* sender's lines. The room therefore throttles its
//! senders, not its readers, the way Twisted's producer/consumer would:
//!
//! * **Locally.** A write that takes a recipient's queue above the
//!   high-water mark marks it *congested* on the spot
//!   (`Transport::is_writing_paused`). While any recipient on this shard is
//!   congested, the room *holds*: it pauses reading from every named client
//!   here (`pause_reading`; the line framing then delivers no further line,
//!   and TCP slows the senders down). When the recipient drains to the
//!   low-water mark (`resume_writing`) the hold ends.
//! * **Across shards.** Lines sent to another shard are counted against a
//!   window per destination ([`fanout_window`]: a quarter of the outbound
//!   cap, shared between the other shards). The destination acknowledges
//!   what it has written to its recipients — but not while it is congested.
//!   A shard with more than a window unacknowledged at any destination holds
//!   its senders too. Bus traffic for lines is bounded by the windows.
//! * **Stalled readers.** A recipient that stays congested for the stall
//!   timeout (default 2 s) stops holding the room back: it is marked
//!   *stalled*, the room moves on, and if it still does not read, its queue
//!   reaches the hard cap and it is cut as a slow consumer. So a client that
//!   never reads stalls the room for at most the stall timeout, once.
//!
//! A fast reader's queue thus stays under about `high water + one line +
//! (shards − 1) × (window + one line)`, a fraction of the hard cap, however
//! fast anyone sends.
//!
//! # The flush window: one send for several messages
//!
//! Every line goes to every named client, so at a steady rate a reader gets
//! one line every few hundred microseconds, and sending each on its own
//! costs one `send` (and one wake-up of its connection) per line per
//! reader: the bulk of the room's CPU. With a flush window (default 1.25 ms,
//! `--flush-window`), the first line written opens the window, every
//! reader's transport is *corked* (`Transport::cork`), and when the window
//! closes the room uncorks them all: each reader's lines of the whole window
//! leave in one `sendmsg`. The trade is latency for CPU, as NATS's flusher
//! and Kafka's `linger.ms` make it: a line waits at most the window before
//! it is sent. A cork gives way at the high-water mark, so a burst is never
//! held back and back-pressure works as below. Zero turns the window off.
//!
//! The default, 1.25 ms, was chosen with the shard sleeping through the
//! window (below), against 1 ms, with Twisted in the same runs
//! (BENCHMARKS.md, third pass): at 10,000 msgs/s 1.25 ms spent 1/3.28 of
//! Twisted's CPU per delivery and 1 ms 1/2.92 (medians of 3 interleaved
//! rounds), and the corrected p99 of 100 clients was no better with 1 ms
//! (its advantage in a run without Twisted did not reproduce). With
//! 1.25 ms the median p99 stayed under 5 ms at every rate up to 20,000
//! msgs/s; single rounds cross it at times. That tail is the machine's, not
//! the window's: on the project's VM a sleeping thread now and then wakes
//! 2–5 ms late (`scripts/timer-lateness`), and windows close late by as
//! much, with coalescing on or off (BENCHMARKS.md, "where its tail comes
//! from"); when nothing wakes late, p99 is 2–3 ms at every rate from
//! 2,000 to 40,000 msgs/s. Closing a window early once it
//! held a number of lines (Kafka's `batch.size`) was tried and measured
//! worse on both counts: the early uncork of every reader mid-turn cost
//! more sends and a longer tail.
//!
//! # Sleeping through the window
//!
//! Corking saves the sends, not the wake-ups: the shard still woke for
//! each incoming line (a readable socket) only to queue it. While a window
//! is open the room therefore asks the shard to sleep through single
//! wake-ups until the window closes (`Clock::coalesce_wakeups_for`, default
//! on, `--coalesce-wakeups off` to turn it off): the lines that arrive
//! meanwhile, other shards' lines and cluster lines too, are read together
//! when it wakes at the window's end, join that window and leave with it.
//! A line still waits at most about the window (plus the time to read what
//! came), so the latency bound is the same; what goes is a wake-up, a
//! reactor turn and a read per line. Everything else on the shard (a new
//! client's greeting, `/who` answers, a metrics scrape, a protocol a
//! library user serves beside chat) waits with the window too, by at most
//! one window and never more than [`MAX_COALESCED_SLEEP`] (5 ms: a longer
//! window is slept through for its first 5 ms only); turn it off when
//! that matters. BENCHMARKS.md measured it against `--coalesce-wakeups
//! off` in the same runs (two sets of 3 rounds): with it off, CPU per
//! delivery was 1.01–1.04× at 2,000 msgs/s and 1.14–1.35× from 10,000 up
//! (medians), and the capacity lower.
//!
//! # Bounded work per client
//!
//! A client has at most one request in flight: its name claim or its
//! `/who` is an awaited call to other shards (`requests.rs`), a future on
//! the client's own connection task, and its reading is paused while it
//! runs (its next lines wait in its socket, not in memory). `/who` answers
//! are built once per shard (cached until a name changes) and shared by
//! reference.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use torsion::{BusHandle, DelayedCall, Transport};

use super::cluster::ClusterLink;
use super::message::{ChatMessage, ClaimOutcome};
use super::metrics::{ChatMetrics, ChatShardStats};
use super::names::{owner_shard, validate_name};
use super::requests::{self, PendingRequest, RoomRpc};
use super::server::DEFAULT_MAX_OUTBOUND;
use crate::framed::FramedConnection;

/// Chat settings (the same on every shard). Build from `Default` and the
/// `with_*` setters (`ChatConfig::default().with_max_line(1024)`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatConfig {
    /// Longest input line, in bytes (default 4096).
    pub max_line: usize,
    /// How long a client may stay nameless (default 30 s; zero: no limit).
    pub register_timeout: Duration,
    /// How long a congested reader may hold the room's senders back before
    /// the room stops waiting for it (default 2 s; zero: never wait).
    pub stall_timeout: Duration,
    /// Each client's outbound hard cap (`--max-outbound`, default 1 MiB):
    /// unread output past it cuts the client as a slow consumer. It also
    /// sizes the cross-shard window ([`fanout_window`]).
    pub max_outbound: usize,
    /// How long lines to one reader may wait so that the lines of several
    /// messages leave in one send (`--flush-window`; zero: each message is
    /// sent on its own). See "The flush window" in the module docs.
    pub flush_window: Duration,
    /// While a flush window is open, let the shard sleep through single
    /// wake-ups (readable sockets, other shards' lines) and handle what came
    /// together when the window closes (`--coalesce-wakeups`, default on;
    /// no effect without a window). See "Sleeping through the window" in
    /// the module docs.
    pub coalesce_wakeups: bool,
    /// Where each shard's room keeps its counters for scrapes (default: a
    /// set of its own, read only through [`Room::stats`]).
    pub metrics: ChatMetrics,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_line: 4096,
            register_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(2),
            max_outbound: DEFAULT_MAX_OUTBOUND,
            flush_window: DEFAULT_FLUSH_WINDOW,
            coalesce_wakeups: true,
            metrics: ChatMetrics::new(),
        }
    }
}

torsion::with_setters!(ChatConfig {
    with_max_line => max_line: usize,
    #[doc = "(zero: no limit)"]
    with_register_timeout => register_timeout: Duration,
    #[doc = "(zero: never wait)"]
    with_stall_timeout => stall_timeout: Duration,
    with_max_outbound => max_outbound: usize,
    #[doc = "(zero: no window)"]
    with_flush_window => flush_window: Duration,
    #[doc = "(off: the shard wakes for each input while a window is open)"]
    with_coalesce_wakeups => coalesce_wakeups: bool,
    #[doc = "(register the same set with a `torsion::metrics::Metrics` to scrape it)"]
    with_metrics => metrics: ChatMetrics,
});

/// The longest a shard sleeps through wake-ups for one flush window (see
/// "Sleeping through the window" in the module docs): with a longer window
/// it wakes per input again for the rest of it, so a new client's greeting
/// or a `/who` answer never waits longer than this for the window.
pub const MAX_COALESCED_SLEEP: Duration = Duration::from_millis(5);

/// The default flush window (see the module docs for how it was chosen).
pub const DEFAULT_FLUSH_WINDOW: Duration = Duration::from_micros(1250);

/// Smallest cross-shard window: a few whole lines.
const MIN_WINDOW: usize = 16 * 1024;

/// Bytes of lines one shard may have sent to another and not yet had
/// acknowledged before it holds its senders: a quarter of the outbound cap,
/// shared among the other shards (at least 16 KiB).
pub fn fanout_window(max_outbound: usize, shards: usize) -> usize {
    (max_outbound / 4 / shards.saturating_sub(1).max(1)).max(MIN_WINDOW)
}

enum State {
    Nameless,
    Named(String),
    /// Said `/quit`: the name is released, the connection is closing.
    Leaving,
}

struct Client {
    conn: FramedConnection,
    state: State,
    register_timer: Option<DelayedCall>,
    /// Its claim or `/who` is under way: reading is paused until then.
    request_pending: bool,
}

/// A named client as a recipient of lines.
struct Recipient {
    id: u64,
    transport: Transport,
    /// Its queue went above the high-water mark and has not drained yet.
    congested: Cell<bool>,
    /// Congested for longer than the stall timeout: no longer holds the
    /// room back.
    stalled: Cell<bool>,
    stall_timer: RefCell<Option<DelayedCall>>,
}

/// One shard's chat state.
pub struct Room {
    shard: usize,
    shards: usize,
    config: ChatConfig,
    window: usize,
    bus: OnceCell<BusHandle<ChatMessage>>,
    /// Claims and `/who` between the shards' rooms.
    rpc: OnceCell<Rc<RoomRpc>>,
    /// The node's cluster bridge, when the node is part of a cluster.
    cluster: OnceCell<ClusterLink>,
    /// Itself, for timers.
    me: Weak<Room>,
    clients: RefCell<HashMap<u64, Client>>,
    /// Named clients on this shard, for delivery.
    named: RefCell<Vec<Rc<Recipient>>>,
    /// Names this shard owns: name → (holder's shard, holder's connection).
    owned: RefCell<HashMap<String, (usize, u64)>>,
    /// This shard's names, space-separated, as `/who` answers send them.
    names_cache: RefCell<Option<Bytes>>,
    /// Congested recipients here that are not stalled.
    congested: Cell<usize>,
    /// Bytes of lines sent to each shard and not yet acknowledged.
    unacked: RefCell<Vec<usize>>,
    /// Destinations with more than a window unacknowledged.
    over_window: Cell<usize>,
    /// Bytes of lines received from each shard and not yet acknowledged.
    owed: RefCell<Vec<usize>>,
    /// Whether the named clients' reading is paused right now.
    holding: Cell<bool>,
    /// The flush window is open: lines written since it opened wait in
    /// their readers' corked transports until it closes.
    window_open: Cell<bool>,
    next_id: Cell<u64>,
    stats: Arc<ChatShardStats>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("shard", &self.shard)
            .field("clients", &self.clients.borrow().len())
            .field("named", &self.named.borrow().len())
            .field("holding", &self.holding.get())
            .finish()
    }
}

fn line(text: &str) -> Bytes {
    let mut v = Vec::with_capacity(text.len() + 2);
    v.extend_from_slice(text.as_bytes());
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

/// `text` with every control character but tab replaced by U+FFFD, so no
/// client can send escape sequences, carriage returns or bells to other
/// clients' terminals. (Only C0/C1 controls and DEL: bidi and other format
/// characters stay, as right-to-left scripts need them.)
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let suspicious = text
        .bytes()
        .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f || b == 0xc2);
    if !suspicious || !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                }
            })
            .collect(),
    )
}

impl Room {
    /// A room for shard `shard` of `shards`; give it its bus with
    /// [`Room::set_bus`] before the first connection.
    pub fn new(shard: usize, shards: usize, config: ChatConfig) -> Rc<Room> {
        let window = fanout_window(config.max_outbound, shards);
        let stats = config.metrics.register(shard);
        Rc::new_cyclic(|me| Room {
            shard,
            shards,
            config,
            window,
            bus: OnceCell::new(),
            rpc: OnceCell::new(),
            cluster: OnceCell::new(),
            me: me.clone(),
            clients: RefCell::new(HashMap::new()),
            named: RefCell::new(Vec::new()),
            owned: RefCell::new(HashMap::new()),
            names_cache: RefCell::new(None),
            congested: Cell::new(0),
            unacked: RefCell::new(vec![0; shards]),
            over_window: Cell::new(0),
            owed: RefCell::new(vec![0; shards]),
            holding: Cell::new(false),
            window_open: Cell::new(false),
            next_id: Cell::new(0),
            stats,
        })
    }

    /// Connects the room to the bus (once).
    pub fn set_bus(&self, bus: BusHandle<ChatMessage>) {
        let _ = self.bus.set(bus);
    }

    /// Connects the room to the calls between rooms (once).
    pub fn set_rpc(&self, rpc: Rc<RoomRpc>) {
        let _ = self.rpc.set(rpc);
    }

    /// Makes the room part of a cluster of nodes (once, before the first
    /// connection): lines, names and `/who` also go through `link`.
    pub fn set_cluster(&self, link: ClusterLink) {
        let _ = self.cluster.set(link);
    }

    /// The settings.
    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    /// Clients connected to this shard.
    pub fn client_count(&self) -> usize {
        self.clients.borrow().len()
    }

    /// This room's counters (clients, users, messages, deliveries).
    pub fn stats(&self) -> &ChatShardStats {
        &self.stats
    }

    /// Named clients on this shard.
    pub fn named_count(&self) -> usize {
        self.named.borrow().len()
    }

    /// True while the room holds its senders back (a reader here is
    /// congested, or another shard has not acknowledged a window of lines).
    pub fn is_holding(&self) -> bool {
        self.holding.get()
    }

    fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    fn send(&self, shard: usize, msg: ChatMessage) {
        match self.bus.get() {
            Some(bus) => {
                if let Err(e) = bus.send_to(shard, msg) {
                    tracing::error!(shard = self.shard, "chat bus send failed: {e}");
                }
            }
            None => tracing::error!(shard = self.shard, "chat room has no bus"),
        }
    }

    fn reply(&self, id: u64, text: &str) {
        let transport = match self.clients.borrow().get(&id) {
            Some(c) => c.conn.transport().clone(),
            None => return,
        };
        let _ = transport.write_bytes(line(text));
        if transport.is_writing_paused() {
            self.recipient_congested(id);
        }
    }

    /// Pauses or resumes client `id`'s reading as its state and the room's
    /// hold require.
    fn update_reading(&self, id: u64) {
        let clients = self.clients.borrow();
        let Some(c) = clients.get(&id) else { return };
        let wait = match c.state {
            State::Named(_) => c.request_pending || self.holding.get(),
            State::Nameless | State::Leaving => c.request_pending,
        };
        let t = c.conn.transport();
        if wait {
            t.pause_reading();
        } else {
            t.resume_reading();
        }
    }

    /// Starts or ends the hold when its causes change.
    fn update_hold(&self) {
        let hold = self.congested.get() > 0 || self.over_window.get() > 0;
        if self.holding.replace(hold) == hold {
            return;
        }
        tracing::trace!(shard = self.shard, hold, "chat room hold");
        let ids: Vec<u64> = self.named.borrow().iter().map(|r| r.id).collect();
        for id in ids {
            self.update_reading(id);
        }
    }

    /// A new connection: greets it and starts its registration timer.
    pub(crate) fn join(self: &Rc<Self>, conn: FramedConnection) -> u64 {
        let id = self.next_id();
        let timer = (!self.config.register_timeout.is_zero()).then(|| {
            let room = Rc::downgrade(self);
            conn.transport()
                .clock()
                .call_later(self.config.register_timeout, move || {
                    if let Some(room) = room.upgrade() {
                        room.registration_expired(id);
                    }
                })
        });
        let _ = conn.transport().write_bytes(line("What's your name?"));
        self.clients.borrow_mut().insert(
            id,
            Client {
                conn,
                state: State::Nameless,
                register_timer: timer,
                request_pending: false,
            },
        );
        self.stats.set_clients(self.clients.borrow().len());
        id
    }

    fn registration_expired(&self, id: u64) {
        let transport = match self.clients.borrow().get(&id) {
            Some(c) if matches!(c.state, State::Nameless) => c.conn.transport().clone(),
            _ => return,
        };
        let _ = transport.write_bytes(line("Registration timed out."));
        transport.close();
    }

    /// A connection ended: forget it and give its name back.
    pub(crate) fn leave(&self, id: u64) {
        let Some(client) = self.clients.borrow_mut().remove(&id) else {
            return;
        };
        self.stats.set_clients(self.clients.borrow().len());
        if let Some(t) = client.register_timer {
            t.cancel();
        }
        if let State::Named(name) = client.state {
            self.release_name(id, name);
        }
        // A claim still in flight is released when its answer comes back (its
        // future runs on after the connection); a /who finds nobody to answer.
    }

    /// Takes `id` off the recipients and tells the name's owner.
    fn release_name(&self, id: u64, name: String) {
        self.unname(id);
        let owner = owner_shard(&name, self.shards);
        self.send(
            owner,
            ChatMessage::Release {
                name,
                shard: self.shard,
                conn: id,
            },
        );
    }

    /// Takes `id` off the recipients (its name is no longer shown).
    fn unname(&self, id: u64) {
        let removed = {
            let mut named = self.named.borrow_mut();
            let removed = named
                .iter()
                .position(|r| r.id == id)
                .map(|i| named.swap_remove(i));
            self.stats.set_users(named.len());
            removed
        };
        if let Some(r) = removed {
            if let Some(t) = r.stall_timer.borrow_mut().take() {
                t.cancel();
            }
            if r.congested.get() && !r.stalled.get() {
                self.congestion_eased();
            }
        }
        self.names_cache.borrow_mut().take();
    }

    /// A line from client `id`; a request it starts (a name claim, a
    /// `/who`) comes back as a future for the client's connection task.
    pub(crate) fn on_line(&self, id: u64, raw: Bytes) -> Option<PendingRequest> {
        let Ok(text) = std::str::from_utf8(&raw) else {
            self.reply(id, "Invalid UTF-8, line ignored.");
            return None;
        };
        let (name, pending) = match self.clients.borrow().get(&id) {
            Some(c) => match &c.state {
                State::Named(name) => (Some(name.clone()), c.request_pending),
                State::Nameless => (None, c.request_pending),
                State::Leaving => return None,
            },
            None => return None,
        };
        if pending {
            // Reading is paused while a request is under way, and the line
            // framing delivers nothing while paused: unreachable unless that
            // contract is broken. Say so rather than lose it quietly.
            tracing::error!(
                shard = self.shard,
                conn = id,
                "line received while a request was under way; dropped"
            );
            return None;
        }
        match name {
            None => self.register(id, text),
            Some(name) => self.chat(id, &name, text),
        }
    }

    /// Marks client `id` busy with a request (its reading pauses).
    fn start_request(&self, id: u64) {
        if let Some(c) = self.clients.borrow_mut().get_mut(&id) {
            c.request_pending = true;
        }
        self.update_reading(id);
    }

    /// Client `id`'s request is done (its reading resumes, unless held).
    fn end_request(&self, id: u64) {
        if let Some(c) = self.clients.borrow_mut().get_mut(&id) {
            c.request_pending = false;
        }
        self.update_reading(id);
    }

    fn register(&self, id: u64, name: &str) -> Option<PendingRequest> {
        if validate_name(name).is_err() {
            self.reply(id, "Invalid name, please choose another.");
            return None;
        }
        let (room, rpc) = (self.me.upgrade()?, self.rpc.get()?.clone());
        self.start_request(id);
        let name = name.to_string();
        let owner = owner_shard(&name, self.shards);
        Some(Box::pin(async move {
            let outcome = requests::claim(&rpc, owner, name.clone(), id).await;
            room.claim_answered(id, name, outcome);
        }))
    }

    fn chat(&self, id: u64, name: &str, text: &str) -> Option<PendingRequest> {
        if let Some(command) = text.strip_prefix('/') {
            let (word, rest) = command.split_once(' ').unwrap_or((command, ""));
            match word {
                "who" => return self.ask_who(id),
                "quit" => self.quit(id),
                "me" => {
                    let rest = printable(rest);
                    let action = if rest.is_empty() {
                        format!("* {name}")
                    } else {
                        format!("* {name} {rest}")
                    };
                    self.deliver_from(id, line(&action));
                }
                _ => {
                    let word = printable(word);
                    self.reply(id, &format!("Unknown command \"/{word}\"."));
                }
            }
            return None;
        }
        self.deliver_from(id, line(&format!("<{name}> {}", printable(text))));
        None
    }

    /// `/quit`: the name is free at once (not when the close completes),
    /// then the connection flushes and closes.
    fn quit(&self, id: u64) {
        let (name, transport) = {
            let mut clients = self.clients.borrow_mut();
            let Some(c) = clients.get_mut(&id) else {
                return;
            };
            let State::Named(name) = std::mem::replace(&mut c.state, State::Leaving) else {
                return;
            };
            (name, c.conn.transport().clone())
        };
        self.release_name(id, name);
        transport.close();
    }

    /// Writes `line` to every named client here but `from`, and sends it once
    /// to every other shard.
    fn deliver_from(&self, from: u64, line: Bytes) {
        self.stats.message_sent();
        self.write_to_named(Some(from), &line, 1);
        if let Some(cluster) = self.cluster.get() {
            cluster.line(line.clone());
        }
        if self.shards > 1 {
            if let Some(bus) = self.bus.get() {
                if let Err(e) = bus.broadcast(ChatMessage::Deliver {
                    line: line.clone(),
                    from: self.shard,
                }) {
                    tracing::error!(shard = self.shard, "chat broadcast failed: {e}");
                }
            }
            let mut unacked = self.unacked.borrow_mut();
            let mut crossed = 0;
            for (shard, n) in unacked.iter_mut().enumerate() {
                if shard != self.shard {
                    let before = *n;
                    *n += line.len();
                    if before <= self.window && *n > self.window {
                        crossed += 1;
                    }
                }
            }
            drop(unacked);
            if crossed > 0 {
                self.over_window.set(self.over_window.get() + crossed);
                self.update_hold();
            }
        }
    }

    /// Queues `line` (which holds `lines` lines) for every named client
    /// here but `except`; marks the ones it takes above their high-water
    /// mark congested.
    fn write_to_named(&self, except: Option<u64>, line: &Bytes, lines: usize) {
        let windowed = !self.config.flush_window.is_zero();
        let mut newly_congested = Vec::new();
        let mut clock = None;
        let mut readers = 0;
        for r in self.named.borrow().iter() {
            if Some(r.id) == except {
                continue;
            }
            readers += 1;
            if windowed {
                r.transport.cork();
                clock.get_or_insert_with(|| r.transport.clock());
            }
            let _ = r.transport.write_shared(line);
            if r.transport.is_writing_paused() && !r.congested.get() {
                newly_congested.push(r.id);
            }
        }
        self.stats.delivered(readers * lines);
        if let Some(clock) = clock {
            self.open_window(&clock);
        }
        for id in newly_congested {
            self.recipient_congested(id);
        }
    }

    /// Opens the flush window unless it is open: it closes (and every
    /// reader's held lines are sent) `flush_window` from now.
    fn open_window(&self, clock: &torsion::Clock) {
        if self.window_open.replace(true) {
            return;
        }
        if self.config.coalesce_wakeups {
            clock.coalesce_wakeups_for(self.config.flush_window.min(MAX_COALESCED_SLEEP));
        }
        let room = self.me.clone();
        // The window closes by itself; the handle is not needed.
        let _ = clock.call_later(self.config.flush_window, move || {
            if let Some(room) = room.upgrade() {
                room.close_window();
            }
        });
    }

    /// Sends what the flush window held: uncorks every named reader.
    fn close_window(&self) {
        self.window_open.set(false);
        for r in self.named.borrow().iter() {
            r.transport.uncork();
        }
    }

    /// Named client `id` as a recipient (a clone of its entry, so no
    /// borrow of the list is held while it is acted on).
    fn recipient(&self, id: u64) -> Option<Rc<Recipient>> {
        self.named.borrow().iter().find(|r| r.id == id).cloned()
    }

    /// Recipient `id`'s queue is above its high-water mark.
    pub(crate) fn recipient_congested(&self, id: u64) {
        let Some(r) = self.recipient(id) else { return };
        if r.congested.replace(true) {
            return;
        }
        if self.config.stall_timeout.is_zero() {
            r.stalled.set(true);
            return;
        }
        let room = self.me.clone();
        let timer = r
            .transport
            .clock()
            .call_later(self.config.stall_timeout, move || {
                if let Some(room) = room.upgrade() {
                    room.stall_expired(id);
                }
            });
        *r.stall_timer.borrow_mut() = Some(timer);
        self.congested.set(self.congested.get() + 1);
        self.update_hold();
    }

    /// Recipient `id` drained to its low-water mark.
    pub(crate) fn recipient_drained(&self, id: u64) {
        let Some(r) = self.recipient(id) else { return };
        if !r.congested.replace(false) {
            return;
        }
        if let Some(t) = r.stall_timer.borrow_mut().take() {
            t.cancel();
        }
        if !r.stalled.replace(false) {
            self.congestion_eased();
        }
    }

    /// One congested recipient fewer: acknowledge what others sent once
    /// none is left, and perhaps end the hold.
    fn congestion_eased(&self) {
        self.congested.set(self.congested.get() - 1);
        if self.congested.get() == 0 {
            self.send_owed_acks();
        }
        self.update_hold();
    }

    fn stall_expired(&self, id: u64) {
        let Some(r) = self.recipient(id) else { return };
        r.stall_timer.borrow_mut().take();
        if !r.congested.get() || r.stalled.replace(true) {
            return;
        }
        tracing::debug!(
            shard = self.shard,
            conn = id,
            queued = r.transport.buffered_len(),
            "chat reader stalled: no longer holding the room back"
        );
        self.congestion_eased();
    }

    /// Acknowledges every shard's lines written since the last ack.
    fn send_owed_acks(&self) {
        let owed: Vec<(usize, usize)> = self
            .owed
            .borrow_mut()
            .iter_mut()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| (s, std::mem::take(n)))
            .collect();
        for (shard, bytes) in owed {
            self.send(
                shard,
                ChatMessage::Ack {
                    from: self.shard,
                    bytes,
                },
            );
        }
    }

    /// `/who`: every shard's names (and, clustered, every other node's),
    /// gathered by a future on the client's connection task.
    fn ask_who(&self, id: u64) -> Option<PendingRequest> {
        let (room, rpc) = (self.me.upgrade()?, self.rpc.get()?.clone());
        self.start_request(id);
        // Asked now, awaited after the shards' answers.
        let others = self.cluster.get().map(ClusterLink::who);
        Some(Box::pin(async move {
            let mut parts = requests::every_shards_names(&rpc).await;
            let mut reachable = true;
            if let Some(others) = others {
                match others.await {
                    Ok(o) => {
                        parts.push(o.names);
                        reachable = o.reachable;
                    }
                    Err(_) => reachable = false,
                }
            }
            room.who_answered(id, &parts, reachable);
        }))
    }

    /// This shard's names, space-separated (built once per change).
    pub(crate) fn names(&self) -> Bytes {
        self.names_cache
            .borrow_mut()
            .get_or_insert_with(|| {
                let clients = self.clients.borrow();
                let mut out = BytesMut::new();
                for r in self.named.borrow().iter() {
                    if let Some(State::Named(n)) = clients.get(&r.id).map(|c| &c.state) {
                        if !out.is_empty() {
                            out.put_u8(b' ');
                        }
                        out.extend_from_slice(n.as_bytes());
                    }
                }
                out.freeze()
            })
            .clone()
    }

    fn who_answered(&self, id: u64, parts: &[Bytes], reachable: bool) {
        let mut all: Vec<&[u8]> = parts
            .iter()
            .flat_map(|p| p.split(|&b| b == b' '))
            .filter(|n| !n.is_empty())
            .collect();
        all.sort_unstable();
        let list = all.join(&b' ');
        let mut text = format!("Users: {}", String::from_utf8_lossy(&list));
        if !reachable {
            text.push_str(" (other servers unreachable)");
        }
        self.reply(id, &text);
        self.end_request(id);
    }

    /// The owner's side of a claim: free here (and, clustered, in Redis)?
    pub(crate) async fn serve_claim(&self, shard: usize, name: String, conn: u64) -> ClaimOutcome {
        let free = match self.owned.borrow_mut().entry(name.clone()) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert((shard, conn));
                true
            }
        };
        if !free {
            return ClaimOutcome::Taken;
        }
        let Some(cluster) = self.cluster.get().cloned() else {
            return ClaimOutcome::Granted;
        };
        // Clustered: Redis decides across nodes (the name stays taken here
        // until it answers).
        let outcome = cluster.claim(name.clone()).await;
        if outcome != ClaimOutcome::Granted {
            let mut owned = self.owned.borrow_mut();
            if owned.get(&name) == Some(&(shard, conn)) {
                owned.remove(&name);
            }
        }
        outcome
    }

    /// A bus message for this shard.
    pub fn on_message(&self, msg: ChatMessage) {
        match msg {
            ChatMessage::Release { name, shard, conn } => {
                let mut owned = self.owned.borrow_mut();
                if owned.get(&name) == Some(&(shard, conn)) {
                    owned.remove(&name);
                    drop(owned);
                    if let Some(cluster) = self.cluster.get() {
                        cluster.release(name);
                    }
                }
            }
            ChatMessage::NameLost { name } => {
                let holder = self.owned.borrow_mut().remove(&name);
                if let Some((shard, conn)) = holder {
                    self.send(shard, ChatMessage::Revoke { name, conn });
                }
            }
            ChatMessage::Revoke { name, conn } => self.revoke(conn, &name),
            ChatMessage::Remote { lines, count } => self.write_to_named(None, &lines, count),
            ChatMessage::Deliver { line, from } => {
                self.write_to_named(None, &line, 1);
                let mut owed = self.owed.borrow_mut();
                if let Some(n) = owed.get_mut(from) {
                    *n += line.len();
                    if self.congested.get() == 0 && *n >= self.window / 4 {
                        let bytes = std::mem::take(n);
                        drop(owed);
                        self.send(
                            from,
                            ChatMessage::Ack {
                                from: self.shard,
                                bytes,
                            },
                        );
                    }
                }
            }
            ChatMessage::Ack { from, bytes } => {
                let mut unacked = self.unacked.borrow_mut();
                let Some(n) = unacked.get_mut(from) else {
                    return;
                };
                let before = *n;
                *n = n.saturating_sub(bytes);
                let uncrossed = before > self.window && *n <= self.window;
                drop(unacked);
                if uncrossed {
                    self.over_window.set(self.over_window.get() - 1);
                    self.update_hold();
                }
            }
        }
    }

    /// Client `id` loses `name` (another node took it while this one was
    /// cut off from Redis past its lease): it is nameless again.
    fn revoke(&self, id: u64, name: &str) {
        let named = matches!(
            self.clients.borrow().get(&id).map(|c| &c.state),
            Some(State::Named(n)) if n == name
        );
        if !named {
            return;
        }
        self.unname(id);
        if let Some(c) = self.clients.borrow_mut().get_mut(&id) {
            c.state = State::Nameless;
        }
        tracing::warn!(
            shard = self.shard,
            conn = id,
            name,
            "chat name lost to another node after an outage"
        );
        self.reply(
            id,
            "Your name was taken on another server while this one was cut off; please choose another.",
        );
        self.update_reading(id);
    }

    fn claim_answered(&self, id: u64, name: String, outcome: ClaimOutcome) {
        let granted = outcome == ClaimOutcome::Granted;
        let transport = {
            let mut clients = self.clients.borrow_mut();
            let Some(client) = clients.get_mut(&id) else {
                drop(clients);
                // The client left while claiming: give the name back.
                if granted {
                    self.send(
                        owner_shard(&name, self.shards),
                        ChatMessage::Release {
                            name,
                            shard: self.shard,
                            conn: id,
                        },
                    );
                }
                return;
            };
            client.request_pending = false;
            if granted {
                if let Some(t) = client.register_timer.take() {
                    t.cancel();
                }
                client.state = State::Named(name.clone());
            }
            client.conn.transport().clone()
        };
        if granted {
            self.named.borrow_mut().push(Rc::new(Recipient {
                id,
                transport,
                congested: Cell::new(false),
                stalled: Cell::new(false),
                stall_timer: RefCell::new(None),
            }));
            self.stats.set_users(self.named.borrow().len());
            self.names_cache.borrow_mut().take();
            self.reply(id, &format!("Welcome, {name}!"));
        } else if outcome == ClaimOutcome::Taken {
            self.reply(id, "Name taken, please choose another.");
        } else {
            self.reply(
                id,
                "Names cannot be checked across servers right now, please try again.",
            );
        }
        // Reading resumes (unless the room holds): lines that arrived while
        // the claim was in flight are delivered next, in order.
        self.update_reading(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::testing::ManualChat;
    use crate::chat::ChatClient;
    use crate::codec::LineCodec;
    use crate::framed::LineReceiver;
    use torsion::testing::{HarnessOptions, ProtocolHarness};
    use torsion::{DisconnectReason, FlowLimits, ManualClock};

    type Client = ProtocolHarness<LineReceiver<ChatClient>>;

    /// Rooms for `n` pretend shards on one thread, the manual buses between
    /// them and one manual clock.
    struct World {
        chat: ManualChat,
        rooms: Vec<Rc<Room>>,
        clock: ManualClock,
    }

    impl World {
        fn new(n: usize, config: ChatConfig) -> World {
            let chat = ManualChat::new(n, config);
            World {
                rooms: chat.rooms.clone(),
                chat,
                clock: ManualClock::new(),
            }
        }

        fn pump_buses(&self) -> usize {
            self.chat.pump()
        }

        fn pending(&self) -> usize {
            self.chat.pending()
        }

        fn connect(&self, shard: usize) -> Client {
            let room = self.rooms[shard].clone();
            let codec = LineCodec::lf_or_crlf().max_length(room.config().max_line);
            let limits = FlowLimits::default()
                .with_high_water(1024)
                .with_low_water(256)
                .with_hard_cap(room.config().max_outbound);
            ProtocolHarness::with_options(
                LineReceiver::with_codec(ChatClient::new(room), codec),
                HarnessOptions::default()
                    .with_clock(self.clock.clone())
                    .with_shard_id(shard)
                    .with_limits(limits),
            )
        }

        /// Delivers the bus's messages, then lets open flush windows close
        /// (the clock moves by the window): what a client sees a moment
        /// later.
        fn pump(&self) {
            self.pump_buses();
            while let Some(r) = self.rooms.iter().find(|r| r.window_open.get()) {
                self.clock.advance(r.config.flush_window);
            }
        }

        /// Runs clients and bus until nothing moves any more, letting
        /// open flush windows close (the clock moves by the window).
        fn settle(&self, clients: &mut [&mut Client]) {
            loop {
                for c in clients.iter_mut() {
                    c.written();
                }
                if self.pump_buses() > 0 {
                    continue;
                }
                match self.rooms.iter().find(|r| r.window_open.get()) {
                    Some(r) => {
                        self.clock.advance(r.config.flush_window);
                    }
                    None => return,
                }
            }
        }

        /// A connected client that registered `name`.
        fn named(&self, shard: usize, name: &str) -> Client {
            let mut c = self.connect(shard);
            c.receive(format!("{name}\r\n").as_bytes());
            self.pump_buses();
            assert_eq!(
                text(&mut c),
                format!("What's your name?\r\nWelcome, {name}!\r\n")
            );
            c
        }
    }

    fn text(c: &mut Client) -> String {
        String::from_utf8(c.take_written()).unwrap()
    }

    #[test]
    fn the_twisted_transcript_across_shards() {
        let w = World::new(2, ChatConfig::default());
        let mut alice = w.named(0, "alice");
        let mut other = w.connect(1);
        assert_eq!(text(&mut other), "What's your name?\r\n");
        other.receive(b"alice\n");
        w.pump();
        assert_eq!(text(&mut other), "Name taken, please choose another.\r\n");
        other.receive(b"bob\r\n");
        w.pump();
        assert_eq!(text(&mut other), "Welcome, bob!\r\n");
        let mut nameless = w.connect(1);
        text(&mut nameless);

        alice.receive(b"hello there\r\n");
        w.pump();
        assert_eq!(text(&mut other), "<alice> hello there\r\n");
        assert_eq!(text(&mut alice), "", "no echo to the sender");
        assert_eq!(text(&mut nameless), "", "nameless clients get nothing");
        other.receive(b"hi alice\n");
        w.pump();
        assert_eq!(text(&mut alice), "<bob> hi alice\r\n");
    }

    #[test]
    fn clustered_claims_wait_for_redis_and_lines_names_and_who_go_to_the_bridge() {
        use crate::chat::cluster::{ClusterLink, Request};
        let w = World::new(2, ChatConfig::default());
        let (link, bridge) = ClusterLink::manual();
        for r in &w.rooms {
            r.set_cluster(link.clone());
        }
        let owner = owner_shard("ann", 2);
        let mut ann = w.connect(0);
        text(&mut ann);
        let claim = |ann: &mut Client, outcome| {
            ann.receive(b"ann\r\n");
            w.pump_buses();
            assert_eq!(text(ann), "", "no answer before Redis's");
            let Ok(Request::Claim { name, answer }) = bridge.try_recv() else {
                panic!("the claim goes to the bridge");
            };
            assert_eq!(name, "ann");
            answer.send(outcome);
            w.pump();
            text(ann)
        };
        assert_eq!(
            claim(&mut ann, ClaimOutcome::Unavailable),
            "Names cannot be checked across servers right now, please try again.\r\n"
        );
        assert_eq!(
            claim(&mut ann, ClaimOutcome::Taken),
            "Name taken, please choose another.\r\n"
        );
        assert_eq!(claim(&mut ann, ClaimOutcome::Granted), "Welcome, ann!\r\n");
        ann.receive(b"hello\r\n");
        w.pump();
        assert!(matches!(
            bridge.try_recv(),
            Ok(Request::Line(line)) if line == Bytes::from_static(b"<ann> hello\r\n")
        ));
        // Other nodes' lines reach every named client here.
        w.rooms[0].on_message(ChatMessage::Remote {
            lines: Bytes::from_static(b"<bob> one\r\n<bob> two\r\n"),
            count: 2,
        });
        w.pump();
        assert_eq!(text(&mut ann), "<bob> one\r\n<bob> two\r\n");
        // /who waits for the other nodes' names too.
        ann.receive(b"/who\r\n");
        w.pump();
        let Ok(Request::Who(answer)) = bridge.try_recv() else {
            panic!("/who asks the bridge");
        };
        assert_eq!(text(&mut ann), "");
        answer.send(crate::chat::cluster::OtherNodes {
            names: Bytes::from_static(b"bob zed"),
            reachable: true,
        });
        w.pump();
        assert_eq!(text(&mut ann), "Users: ann bob zed\r\n");
        // A name another node took during an outage is revoked.
        w.rooms[owner].on_message(ChatMessage::NameLost { name: "ann".into() });
        w.pump();
        assert_eq!(
            text(&mut ann),
            "Your name was taken on another server while this one was cut off; please choose another.\r\n"
        );
        assert_eq!(w.rooms[0].named_count(), 0);
        assert!(bridge.try_recv().is_err(), "a revoked name is not released");
        assert_eq!(claim(&mut ann, ClaimOutcome::Granted), "Welcome, ann!\r\n");
        ann.receive(b"/quit\r\n");
        w.pump();
        assert!(matches!(
            bridge.try_recv(),
            Ok(Request::Release { name }) if name == "ann"
        ));
    }

    #[test]
    fn a_name_is_free_again_after_its_holder_leaves() {
        let w = World::new(2, ChatConfig::default());
        let mut alice = w.named(1, "alice");
        alice.disconnect(DisconnectReason::Reset);
        w.pump();
        let _again = w.named(0, "alice");
        assert_eq!(w.rooms[1].named_count(), 0);
    }

    #[test]
    fn racing_claims_have_exactly_one_winner_per_name() {
        let w = World::new(3, ChatConfig::default());
        let mut clients: Vec<Client> = (0..30).map(|i| w.connect(i % 3)).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            text(c);
            c.receive(format!("name{}\r\n", i % 10).as_bytes());
        }
        w.pump();
        let mut winners = Vec::new();
        for c in clients.iter_mut() {
            let t = text(c);
            if let Some(n) = t.strip_prefix("Welcome, ") {
                winners.push(n.trim_end().trim_end_matches('!').to_string());
            } else {
                assert_eq!(t, "Name taken, please choose another.\r\n");
            }
        }
        winners.sort();
        let want: Vec<String> = (0..10).map(|i| format!("name{i}")).collect();
        assert_eq!(winners, want);
    }

    #[test]
    fn lines_sent_while_a_claim_is_in_flight_follow_the_welcome() {
        let w = World::new(2, ChatConfig::default());
        let mut bob = w.named(1, "bob");
        // On the shard that does not own the name: the claim is a call to
        // the other shard, which answers when the bus moves.
        let here = 1 - owner_shard("alice", 2);
        let mut alice = w.connect(here);
        alice.receive(b"alice\r\nfirst\r\nsecond\r\n");
        // Reading waits for the claim: nothing past the name is read yet.
        assert_eq!(alice.unconsumed(), b"first\r\nsecond\r\n");
        w.settle(&mut [&mut alice, &mut bob]);
        assert_eq!(text(&mut alice), "What's your name?\r\nWelcome, alice!\r\n");
        assert_eq!(text(&mut bob), "<alice> first\r\n<alice> second\r\n");
    }

    #[test]
    fn commands_and_bad_input() {
        let w = World::new(2, ChatConfig::default());
        let mut alice = w.named(0, "alice");
        let mut zed = w.named(1, "zed");
        let mut bob = w.named(1, "bob");

        alice.receive(b"/who\r\n");
        w.pump();
        assert_eq!(text(&mut alice), "Users: alice bob zed\r\n");

        alice.receive(b"/me waves\r\n");
        w.pump();
        assert_eq!(text(&mut bob), "* alice waves\r\n");
        assert_eq!(text(&mut zed), "* alice waves\r\n");
        assert_eq!(text(&mut alice), "");

        alice.receive(b"/dance\r\n");
        assert_eq!(text(&mut alice), "Unknown command \"/dance\".\r\n");

        alice.receive(b"caf\xe9\r\n");
        assert_eq!(text(&mut alice), "Invalid UTF-8, line ignored.\r\n");
        assert!(alice.is_open());

        let mut anon = w.connect(0);
        text(&mut anon);
        for bad in [&b"two words\r\n"[..], b"\r\n", b"x\x01\r\n"] {
            anon.receive(bad);
            assert_eq!(text(&mut anon), "Invalid name, please choose another.\r\n");
        }
        anon.receive(&[b'n'; 33]);
        anon.receive(b"\r\n");
        assert_eq!(text(&mut anon), "Invalid name, please choose another.\r\n");
        anon.receive(b"\xff\r\n");
        assert_eq!(text(&mut anon), "Invalid UTF-8, line ignored.\r\n");

        bob.receive(b"/quit\r\n");
        w.pump();
        assert_eq!(bob.lost_reason(), Some(&DisconnectReason::Closed));
        alice.receive(b"/who\r\n");
        w.pump();
        assert_eq!(text(&mut alice), "Users: alice zed\r\n");
    }

    #[test]
    fn an_over_long_line_is_refused_and_closes() {
        let w = World::new(
            1,
            ChatConfig {
                max_line: 16,
                ..ChatConfig::default()
            },
        );
        let mut alice = w.named(0, "alice");
        alice.receive(&[b'x'; 17]);
        alice.receive(b"\r\n");
        assert_eq!(text(&mut alice), "Line too long.\r\n");
        assert_eq!(alice.lost_reason(), Some(&DisconnectReason::Closed));
    }

    #[test]
    fn nameless_clients_are_closed_at_the_registration_timeout() {
        let w = World::new(
            2,
            ChatConfig {
                register_timeout: Duration::from_secs(30),
                ..ChatConfig::default()
            },
        );
        let mut slow = w.connect(0);
        let mut quick = w.connect(1);
        text(&mut slow);
        quick.receive(b"quick\r\n");
        w.pump();
        w.clock.advance(Duration::from_secs(29));
        assert!(slow.is_open());
        w.clock.advance(Duration::from_secs(1));
        assert_eq!(text(&mut slow), "Registration timed out.\r\n");
        assert_eq!(slow.lost_reason(), Some(&DisconnectReason::Closed));
        assert!(quick.is_open(), "registered clients are not timed out");
    }

    #[test]
    fn a_client_leaving_mid_claim_gives_the_name_back() {
        let w = World::new(2, ChatConfig::default());
        let mut c = w.connect(0);
        c.receive(b"ghost\r\n");
        c.disconnect(DisconnectReason::Reset);
        w.pump();
        let _ghost = w.named(1, "ghost");
    }

    /// Lines `<name> i pad…` for i in `range`, as one input chunk.
    fn numbered(range: std::ops::Range<usize>, pad: usize) -> Vec<u8> {
        let pad = "x".repeat(pad);
        range
            .flat_map(|i| format!("{i} {pad}\r\n").into_bytes())
            .collect()
    }

    /// Checks `got` holds `<from> i …` lines for every i in `range`, in order.
    fn assert_in_order(got: &str, from: &str, range: std::ops::Range<usize>) {
        let seq: Vec<usize> = got
            .lines()
            .map(|l| {
                let rest = l
                    .strip_prefix(&format!("<{from}> "))
                    .unwrap_or_else(|| panic!("{l:?}"));
                rest.split(' ').next().unwrap().parse().unwrap()
            })
            .collect();
        assert_eq!(seq, range.collect::<Vec<_>>());
    }

    #[test]
    fn a_fast_sender_is_held_while_a_reader_is_behind_and_nothing_is_lost() {
        for shards in [1, 2] {
            let config = ChatConfig {
                max_outbound: 64 * 1024,
                ..ChatConfig::default()
            };
            let w = World::new(shards, config);
            let mut reader = w.named(shards - 1, "reader");
            let mut sender = w.named(0, "sender");
            reader.set_peer_reading(false);
            // 2,000 lines of ~110 bytes in one read: 220 KB, over 3x the cap.
            sender.receive(&numbered(0..2000, 100));
            w.settle(&mut [&mut reader, &mut sender]);
            assert!(w.rooms[0].is_holding(), "{shards} shards: the room holds");
            assert!(sender.transport().is_reading_paused());
            assert!(!sender.unconsumed().is_empty(), "the rest waits unread");
            let queued = reader.transport().buffered_len();
            assert!(queued < 32 * 1024, "{shards} shards: {queued} queued");
            // The reader catches up; the room lets the sender go on, and so on
            // until everything has arrived.
            reader.set_peer_reading(true);
            let mut got = String::new();
            for _ in 0..10_000 {
                w.settle(&mut [&mut reader, &mut sender]);
                got.push_str(&text(&mut reader));
                if sender.unconsumed().is_empty() && !w.rooms[0].is_holding() {
                    break;
                }
            }
            assert!(reader.is_open() && sender.is_open());
            assert_in_order(&got, "sender", 0..2000);
        }
    }

    #[test]
    fn a_reader_that_never_reads_holds_the_room_once_then_is_cut_at_the_cap() {
        let config = ChatConfig {
            max_outbound: 32 * 1024,
            ..ChatConfig::default()
        };
        let w = World::new(2, config);
        let mut stalled = w.named(1, "stalled");
        let mut healthy = w.named(1, "healthy");
        let mut sender = w.named(0, "sender");
        stalled.set_peer_reading(false);
        sender.receive(&numbered(0..1000, 100));
        w.settle(&mut [&mut stalled, &mut healthy, &mut sender]);
        assert!(
            sender.transport().is_reading_paused(),
            "held for the stalled reader"
        );
        let mut got = text(&mut healthy);
        // The stall timeout passes: the room stops waiting; the stalled
        // reader's queue reaches the cap and it is cut.
        w.clock.advance(w.rooms[1].config().stall_timeout);
        for _ in 0..10_000 {
            w.settle(&mut [&mut stalled, &mut healthy, &mut sender]);
            got.push_str(&text(&mut healthy));
            if sender.unconsumed().is_empty() && !w.rooms[0].is_holding() {
                break;
            }
        }
        assert_eq!(stalled.lost_reason(), Some(&DisconnectReason::SlowConsumer));
        assert!(healthy.is_open() && sender.is_open());
        assert_in_order(&got, "sender", 0..1000);
    }

    #[test]
    fn with_no_stall_wait_a_behind_reader_never_holds_the_room() {
        let config = ChatConfig {
            max_outbound: 32 * 1024,
            stall_timeout: Duration::ZERO,
            ..ChatConfig::default()
        };
        let w = World::new(1, config);
        let mut stalled = w.named(0, "stalled");
        let mut sender = w.named(0, "sender");
        stalled.set_peer_reading(false);
        sender.receive(&numbered(0..1000, 100));
        w.settle(&mut [&mut stalled, &mut sender]);
        assert!(!w.rooms[0].is_holding());
        assert!(sender.unconsumed().is_empty());
        assert_eq!(stalled.lost_reason(), Some(&DisconnectReason::SlowConsumer));
    }

    #[test]
    fn a_who_flood_keeps_one_request_in_flight_and_its_input_unread() {
        let config = ChatConfig {
            max_outbound: 64 * 1024,
            ..ChatConfig::default()
        };
        let w = World::new(2, config);
        let mut flooder = w.named(0, "flooder");
        let mut bob = w.named(1, "bob");
        flooder.set_peer_reading(false);
        flooder.receive(&b"/who\r\n".repeat(20_000));
        let mut answered_bob = false;
        for step in 0..100_000 {
            // One /who in flight: one question per shard, or its answers.
            assert!(w.pending() <= 2, "step {step}: {} pending", w.pending());
            if step == 50 {
                bob.receive(b"/who\r\n");
            }
            flooder.written();
            bob.written();
            let t = text(&mut bob);
            if t == "Users: bob flooder\r\n" {
                answered_bob = true;
            }
            if w.pump_buses() == 0 && w.pending() == 0 {
                if flooder.unconsumed().is_empty() || !flooder.is_open() {
                    break;
                }
                // Held for the flooder's own unread answers: let the stall
                // timeout pass, then it is cut at the cap.
                w.clock.advance(Duration::from_secs(2));
            }
        }
        assert!(answered_bob, "another client's /who is answered meanwhile");
        assert_eq!(flooder.lost_reason(), Some(&DisconnectReason::SlowConsumer));
        assert!(bob.is_open());
    }

    #[test]
    fn quit_frees_the_name_at_once() {
        let w = World::new(2, ChatConfig::default());
        let mut alice = w.named(0, "alice");
        let mut bob = w.named(1, "bob");
        // Alice does not read: her close waits to flush, as a real close
        // lingers; her name must not wait with it.
        alice.set_peer_reading(false);
        bob.receive(b"bye alice\r\n");
        w.pump();
        alice.receive(b"/quit\r\n");
        w.pump();
        assert!(alice.is_open() && alice.is_closing());
        bob.receive(b"/who\r\n");
        w.pump();
        assert_eq!(text(&mut bob), "Users: bob\r\n");
        let _again = w.named(1, "alice");
    }

    #[test]
    fn lines_wait_for_the_flush_window_then_leave_together_in_order() {
        let window = Duration::from_millis(10);
        let w = World::new(1, ChatConfig::default().with_flush_window(window));
        let mut alice = w.named(0, "alice");
        let mut bob = w.named(0, "bob");
        for i in 0..3 {
            alice.receive(format!("line {i}\r\n").as_bytes());
        }
        assert_eq!(text(&mut bob), "", "held while the window is open");
        w.clock.advance(window - Duration::from_millis(1));
        assert_eq!(text(&mut bob), "");
        w.clock.advance(Duration::from_millis(1));
        assert_eq!(
            text(&mut bob),
            "<alice> line 0\r\n<alice> line 1\r\n<alice> line 2\r\n"
        );
        // Without a window every line leaves at once.
        let w = World::new(1, ChatConfig::default().with_flush_window(Duration::ZERO));
        let mut alice = w.named(0, "alice");
        let mut bob = w.named(0, "bob");
        alice.receive(b"now\r\n");
        assert_eq!(text(&mut bob), "<alice> now\r\n");
    }

    #[test]
    fn control_characters_never_reach_other_terminals() {
        let w = World::new(1, ChatConfig::default());
        let mut alice = w.named(0, "alice");
        let mut bob = w.named(0, "bob");
        alice.receive(b"red \x1b[31mtext\rover\x07 tab\tok \xc2\x9b\r\n");
        alice.receive(b"/me \x1b]0;pwned\x07\r\n");
        w.pump();
        assert_eq!(
            text(&mut bob),
            "<alice> red \u{fffd}[31mtext\u{fffd}over\u{fffd} tab\tok \u{fffd}\r\n\
             * alice \u{fffd}]0;pwned\u{fffd}\r\n"
        );
        assert_eq!(printable("plain text"), "plain text");
    }

    #[test]
    fn a_zero_registration_timeout_means_no_limit() {
        let w = World::new(
            1,
            ChatConfig {
                register_timeout: Duration::ZERO,
                ..ChatConfig::default()
            },
        );
        let mut c = w.connect(0);
        w.clock.advance(Duration::from_secs(365 * 24 * 3600));
        assert!(c.is_open());
        assert_eq!(text(&mut c), "What's your name?\r\n");
    }
}
