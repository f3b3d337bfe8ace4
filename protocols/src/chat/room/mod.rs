//! One shard's chat room: its clients, the names it owns, and the protocol
//! logic that crosses shards.
//!
//! Everything here runs on one shard and is `Rc`/`RefCell`, never locked.
//! Connection events come from [`ChatClient`](super::ChatClient); messages
//! from other shards (and this one) come from the bus through
//! [`Room::on_message`]. One [`Room`] holds the state; its methods are kept
//! by concern, one file each:
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Room`]'s state, its setters and counters, replies, reading paused or resumed, the bus messages' dispatch |
//! | `config.rs` | [`ChatConfig`] and the defaults |
//! | `clients.rs` | a connection's life: greeting, registration timeout, its lines and commands, `/quit`, leaving |
//! | `ownership.rs` | names across shards (and Redis): claims, releases, revoked names, the owner's side of a claim |
//! | `who.rs` | `/who`: this shard's names, every shard's gathered |
//! | `fanout.rs` | lines to every reader: the flush window, back-pressure across shards, stalled readers |
//! | `tests.rs` | the room on manual buses and a manual clock |
//!
//! `requests.rs` (beside this folder) holds the calls between rooms; it does
//! not know [`Room`], so the room imports it and not the other way round.

mod clients;
mod config;
mod fanout;
mod ownership;
#[cfg(test)]
mod tests;
mod who;

pub use config::{
    fanout_window, ChatConfig, DEFAULT_FLUSH_WINDOW, DEFAULT_MAX_OUTBOUND, MAX_COALESCED_SLEEP,
};
pub(crate) use ownership::serve;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use bytes::Bytes;
use torsion::{BusHandle, DelayedCall, Transport};

use crate::chat::cluster::ClusterLink;
use crate::chat::message::ChatMessage;
use crate::chat::metrics::ChatShardStats;
use crate::chat::requests::RoomRpc;
use crate::chat::wire::ChatWire;

enum State {
    Nameless,
    Named(String),
    /// Said `/quit`: the name is released, the connection is closing.
    Leaving,
}

struct Client {
    transport: Transport,
    wire: ChatWire,
    state: State,
    register_timer: Option<DelayedCall>,
    /// Its claim or `/who` is under way: reading is paused until then.
    request_pending: bool,
}

/// A named client as a recipient of lines.
struct Recipient {
    id: u64,
    transport: Transport,
    wire: ChatWire,
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
        let (transport, wire) = match self.clients.borrow().get(&id) {
            Some(c) => (c.transport.clone(), c.wire),
            None => return,
        };
        // Err: the connection is closing, and its end reason says why.
        let _ = transport.write_bytes(wire.frame(&line(text)));
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
        let t = &c.transport;
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

    /// A bus message for this shard.
    pub fn on_message(&self, msg: ChatMessage) {
        match msg {
            ChatMessage::Release { name, shard, conn } => self.released(name, shard, conn),
            ChatMessage::NameLost { name } => self.name_lost(name),
            ChatMessage::Revoke { name, conn } => self.revoke(conn, &name),
            ChatMessage::Remote { lines, count } => self.write_to_named(None, &lines, count),
            ChatMessage::Deliver { line, from } => self.line_from_shard(from, line),
            ChatMessage::Ack { from, bytes } => self.acknowledged(from, bytes),
        }
    }
}
