//! One shard's chat room: its clients, the names it owns, and the protocol
//! logic that crosses shards.
//!
//! Everything here runs on one shard and is `Rc`/`RefCell`, never locked.
//! Connection events come from [`ChatClient`](super::ChatClient); messages
//! from other shards (and this one) come from the bus through
//! [`Room::on_message`].

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use torsion::{BusHandle, DelayedCall, Transport};

use super::message::ChatMessage;
use super::names::{owner_shard, validate_name};
use crate::line_receiver::LineConnection;
use crate::text::as_text;

/// Chat settings (the same on every shard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatConfig {
    /// Longest input line, in bytes (default 4096).
    pub max_line: usize,
    /// How long a client may stay nameless (default 30 s).
    pub register_timeout: Duration,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_line: 4096,
            register_timeout: Duration::from_secs(30),
        }
    }
}

enum State {
    Nameless,
    /// A claim is in flight; lines wait in `queued`.
    Claiming,
    Named(String),
}

struct Client {
    conn: LineConnection,
    state: State,
    queued: VecDeque<Bytes>,
    register_timer: Option<DelayedCall>,
}

struct WhoGather {
    conn: u64,
    remaining: usize,
    names: Vec<String>,
}

/// One shard's chat state.
pub struct Room {
    shard: usize,
    shards: usize,
    config: ChatConfig,
    bus: OnceCell<BusHandle<ChatMessage>>,
    clients: RefCell<HashMap<u64, Client>>,
    /// Named clients on this shard, for delivery.
    named: RefCell<Vec<(u64, Transport)>>,
    /// Names this shard owns: name → (holder's shard, holder's connection).
    owned: RefCell<HashMap<String, (usize, u64)>>,
    /// Claims this shard's clients made: request → (connection, name).
    claims: RefCell<HashMap<u64, (u64, String)>>,
    whos: RefCell<HashMap<u64, WhoGather>>,
    next_id: Cell<u64>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("shard", &self.shard)
            .field("clients", &self.clients.borrow().len())
            .field("named", &self.named.borrow().len())
            .finish()
    }
}

fn line(text: &str) -> Bytes {
    let mut v = Vec::with_capacity(text.len() + 2);
    v.extend_from_slice(text.as_bytes());
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

impl Room {
    /// A room for shard `shard` of `shards`; give it its bus with
    /// [`Room::set_bus`] before the first connection.
    pub fn new(shard: usize, shards: usize, config: ChatConfig) -> Rc<Room> {
        Rc::new(Room {
            shard,
            shards,
            config,
            bus: OnceCell::new(),
            clients: RefCell::new(HashMap::new()),
            named: RefCell::new(Vec::new()),
            owned: RefCell::new(HashMap::new()),
            claims: RefCell::new(HashMap::new()),
            whos: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        })
    }

    /// Connects the room to the bus (once).
    pub fn set_bus(&self, bus: BusHandle<ChatMessage>) {
        let _ = self.bus.set(bus);
    }

    /// The settings.
    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    /// Clients connected to this shard.
    pub fn client_count(&self) -> usize {
        self.clients.borrow().len()
    }

    /// Named clients on this shard.
    pub fn named_count(&self) -> usize {
        self.named.borrow().len()
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
        if let Some(c) = self.clients.borrow().get(&id) {
            let _ = c.conn.transport().write_bytes(line(text));
        }
    }

    /// A new connection: greets it and starts its registration timer.
    pub(crate) fn join(self: &Rc<Self>, conn: LineConnection) -> u64 {
        let id = self.next_id();
        let room = Rc::downgrade(self);
        let timer = conn
            .transport()
            .clock()
            .call_later(self.config.register_timeout, move || {
                if let Some(room) = room.upgrade() {
                    room.registration_expired(id);
                }
            });
        let _ = conn.transport().write_bytes(line("What's your name?"));
        self.clients.borrow_mut().insert(
            id,
            Client {
                conn,
                state: State::Nameless,
                queued: VecDeque::new(),
                register_timer: Some(timer),
            },
        );
        id
    }

    fn registration_expired(&self, id: u64) {
        let transport = match self.clients.borrow().get(&id) {
            Some(c) if !matches!(c.state, State::Named(_)) => c.conn.transport().clone(),
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
        if let Some(t) = client.register_timer {
            t.cancel();
        }
        if let State::Named(name) = client.state {
            self.named.borrow_mut().retain(|(cid, _)| *cid != id);
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
        // A claim still in flight is released when its answer comes back.
    }

    /// A line from client `id`.
    pub(crate) fn on_line(&self, id: u64, raw: Bytes) {
        let claiming = match self.clients.borrow_mut().get_mut(&id) {
            Some(c) if matches!(c.state, State::Claiming) => {
                c.queued.push_back(raw.clone());
                true
            }
            Some(_) => false,
            None => return,
        };
        if !claiming {
            self.handle_line(id, &raw);
        }
    }

    fn handle_line(&self, id: u64, raw: &[u8]) {
        let Ok(text) = as_text(raw) else {
            self.reply(id, "Invalid UTF-8, line ignored.");
            return;
        };
        let name = match self.clients.borrow().get(&id).map(|c| &c.state) {
            Some(State::Named(name)) => Some(name.clone()),
            Some(State::Nameless) => None,
            Some(State::Claiming) | None => return,
        };
        match name {
            None => self.register(id, text),
            Some(name) => self.chat(id, &name, text),
        }
    }

    fn register(&self, id: u64, name: &str) {
        if validate_name(name).is_err() {
            self.reply(id, "Invalid name, please choose another.");
            return;
        }
        let request = self.next_id();
        if let Some(c) = self.clients.borrow_mut().get_mut(&id) {
            c.state = State::Claiming;
        }
        self.claims
            .borrow_mut()
            .insert(request, (id, name.to_string()));
        self.send(
            owner_shard(name, self.shards),
            ChatMessage::Claim {
                name: name.to_string(),
                shard: self.shard,
                conn: id,
                request,
            },
        );
    }

    fn chat(&self, id: u64, name: &str, text: &str) {
        if let Some(command) = text.strip_prefix('/') {
            let (word, rest) = command.split_once(' ').unwrap_or((command, ""));
            match word {
                "who" => return self.ask_who(id),
                "quit" => {
                    if let Some(c) = self.clients.borrow().get(&id) {
                        c.conn.transport().close();
                    }
                    return;
                }
                "me" => {
                    let action = if rest.is_empty() {
                        format!("* {name}")
                    } else {
                        format!("* {name} {rest}")
                    };
                    return self.deliver_from(id, line(&action));
                }
                _ => {
                    return self.reply(id, &format!("Unknown command \"/{word}\"."));
                }
            }
        }
        self.deliver_from(id, line(&format!("<{name}> {text}")));
    }

    /// Writes `line` to every named client here but `from`, and sends it once
    /// to every other shard.
    fn deliver_from(&self, from: u64, line: Bytes) {
        for (cid, t) in self.named.borrow().iter() {
            if *cid != from {
                let _ = t.write_bytes(line.clone());
            }
        }
        if self.shards > 1 {
            if let Some(bus) = self.bus.get() {
                if let Err(e) = bus.broadcast(ChatMessage::Deliver { line }) {
                    tracing::error!(shard = self.shard, "chat broadcast failed: {e}");
                }
            }
        }
    }

    fn ask_who(&self, id: u64) {
        let request = self.next_id();
        self.whos.borrow_mut().insert(
            request,
            WhoGather {
                conn: id,
                remaining: self.shards,
                names: Vec::new(),
            },
        );
        if let Some(bus) = self.bus.get() {
            let _ = bus.broadcast_all(ChatMessage::WhoAsk {
                shard: self.shard,
                request,
            });
        }
    }

    /// A bus message for this shard.
    pub fn on_message(&self, msg: ChatMessage) {
        match msg {
            ChatMessage::Claim {
                name,
                shard,
                conn,
                request,
            } => {
                let granted = match self.owned.borrow_mut().entry(name) {
                    Entry::Occupied(_) => false,
                    Entry::Vacant(slot) => {
                        slot.insert((shard, conn));
                        true
                    }
                };
                self.send(shard, ChatMessage::ClaimResult { request, granted });
            }
            ChatMessage::ClaimResult { request, granted } => self.claim_answered(request, granted),
            ChatMessage::Release { name, shard, conn } => {
                let mut owned = self.owned.borrow_mut();
                if owned.get(&name) == Some(&(shard, conn)) {
                    owned.remove(&name);
                }
            }
            ChatMessage::Deliver { line } => {
                for (_, t) in self.named.borrow().iter() {
                    let _ = t.write_bytes(line.clone());
                }
            }
            ChatMessage::WhoAsk { shard, request } => {
                let names = self
                    .clients
                    .borrow()
                    .values()
                    .filter_map(|c| match &c.state {
                        State::Named(n) => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                self.send(shard, ChatMessage::WhoReply { request, names });
            }
            ChatMessage::WhoReply { request, names } => {
                let done = {
                    let mut whos = self.whos.borrow_mut();
                    let Some(g) = whos.get_mut(&request) else {
                        return;
                    };
                    g.names.extend(names);
                    g.remaining -= 1;
                    if g.remaining == 0 {
                        whos.remove(&request)
                    } else {
                        None
                    }
                };
                if let Some(mut g) = done {
                    g.names.sort();
                    self.reply(g.conn, &format!("Users: {}", g.names.join(" ")));
                }
            }
        }
    }

    fn claim_answered(&self, request: u64, granted: bool) {
        let Some((id, name)) = self.claims.borrow_mut().remove(&request) else {
            return;
        };
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
            if granted {
                if let Some(t) = client.register_timer.take() {
                    t.cancel();
                }
                client.state = State::Named(name.clone());
                client.conn.transport().clone()
            } else {
                client.state = State::Nameless;
                client.conn.transport().clone()
            }
        };
        if granted {
            self.named.borrow_mut().push((id, transport));
            self.reply(id, &format!("Welcome, {name}!"));
        } else {
            self.reply(id, "Name taken, please choose another.");
        }
        // Lines that arrived while the claim was in flight, in order, until
        // one of them starts another claim.
        loop {
            let next = match self.clients.borrow_mut().get_mut(&id) {
                Some(c) if !matches!(c.state, State::Claiming) => c.queued.pop_front(),
                _ => None,
            };
            match next {
                Some(raw) => self.handle_line(id, &raw),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatClient;
    use crate::codec::LineCodec;
    use crate::line_receiver::LineReceiver;
    use torsion::testing::{HarnessOptions, ProtocolHarness};
    use torsion::{DisconnectReason, ManualBus, ManualClock};

    type Client = ProtocolHarness<LineReceiver<ChatClient>>;

    /// Rooms for `n` pretend shards on one thread, a manual bus between
    /// them and one manual clock.
    struct World {
        bus: ManualBus<ChatMessage>,
        rooms: Vec<Rc<Room>>,
        clock: ManualClock,
    }

    impl World {
        fn new(n: usize, config: ChatConfig) -> World {
            let bus = ManualBus::new(n);
            let rooms: Vec<Rc<Room>> = (0..n)
                .map(|s| {
                    let room = Room::new(s, n, config.clone());
                    let r = room.clone();
                    room.set_bus(bus.attach(s, move |m| r.on_message(m)).unwrap());
                    room
                })
                .collect();
            World {
                bus,
                rooms,
                clock: ManualClock::new(),
            }
        }

        fn connect(&self, shard: usize) -> Client {
            let room = self.rooms[shard].clone();
            let codec = LineCodec::lf_or_crlf().max_length(room.config().max_line);
            ProtocolHarness::with_options(
                LineReceiver::with_codec(ChatClient::new(room), codec),
                HarnessOptions {
                    clock: self.clock.clone(),
                    shard_id: shard,
                    ..HarnessOptions::default()
                },
            )
        }

        /// A connected client that registered `name`.
        fn named(&self, shard: usize, name: &str) -> Client {
            let mut c = self.connect(shard);
            c.receive(format!("{name}\r\n").as_bytes());
            self.bus.pump();
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
        w.bus.pump();
        assert_eq!(text(&mut other), "Name taken, please choose another.\r\n");
        other.receive(b"bob\r\n");
        w.bus.pump();
        assert_eq!(text(&mut other), "Welcome, bob!\r\n");
        let mut nameless = w.connect(1);
        text(&mut nameless);

        alice.receive(b"hello there\r\n");
        w.bus.pump();
        assert_eq!(text(&mut other), "<alice> hello there\r\n");
        assert_eq!(text(&mut alice), "", "no echo to the sender");
        assert_eq!(text(&mut nameless), "", "nameless clients get nothing");
        other.receive(b"hi alice\n");
        w.bus.pump();
        assert_eq!(text(&mut alice), "<bob> hi alice\r\n");
    }

    #[test]
    fn a_name_is_free_again_after_its_holder_leaves() {
        let w = World::new(2, ChatConfig::default());
        let mut alice = w.named(1, "alice");
        alice.disconnect(DisconnectReason::Reset);
        w.bus.pump();
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
        w.bus.pump();
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
        let mut alice = w.connect(0);
        alice.receive(b"alice\r\nfirst\r\nsecond\r\n");
        w.bus.pump();
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
        w.bus.pump();
        assert_eq!(text(&mut alice), "Users: alice bob zed\r\n");

        alice.receive(b"/me waves\r\n");
        w.bus.pump();
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
        w.bus.pump();
        assert_eq!(bob.lost_reason(), Some(&DisconnectReason::Closed));
        alice.receive(b"/who\r\n");
        w.bus.pump();
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
        w.bus.pump();
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
        w.bus.pump();
        let _ghost = w.named(1, "ghost");
    }
}
