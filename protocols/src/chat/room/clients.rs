//! A connection's life in the room: its greeting and registration timer,
//! its lines and commands, `/quit`, leaving.
//!
//! # Bounded work per client
//!
//! A client has at most one request in flight: its name claim or its
//! `/who` is an awaited call to other shards (`requests.rs`), a future on
//! the client's own connection task, and its reading is paused while it
//! runs (its next lines wait in its socket, not in memory). `/who` answers
//! are built once per shard (cached until a name changes) and shared by
//! reference.

use std::rc::Rc;

use bytes::Bytes;

use super::{line, printable, Client, Room, State};
use crate::chat::names::{owner_shard, validate_name};
use crate::chat::requests::{self, PendingRequest};
use torsion::Transport;

use crate::chat::wire::ChatWire;

impl Room {
    /// A new connection, whose lines go out framed for `wire`: greets it
    /// and starts its registration timer.
    pub(crate) fn join(self: &Rc<Self>, transport: Transport, wire: ChatWire) -> u64 {
        let id = self.next_id();
        let timer = (!self.config.register_timeout.is_zero()).then(|| {
            let room = Rc::downgrade(self);
            transport
                .clock()
                .call_later(self.config.register_timeout, move || {
                    if let Some(room) = room.upgrade() {
                        room.registration_expired(id);
                    }
                })
        });
        // Err: the connection is closing, and its end reason says why.
        let _ = transport.write_bytes(wire.frame(&line("What's your name?")));
        self.clients.borrow_mut().insert(
            id,
            Client {
                transport,
                wire,
                state: State::Nameless,
                register_timer: timer,
                request_pending: false,
            },
        );
        self.stats.set_clients(self.clients.borrow().len());
        id
    }

    pub(super) fn registration_expired(&self, id: u64) {
        let (transport, wire) = match self.clients.borrow().get(&id) {
            Some(c) if matches!(c.state, State::Nameless) => (c.transport.clone(), c.wire),
            _ => return,
        };
        // Err: the connection is closing, and its end reason says why.
        let _ = transport.write_bytes(wire.frame(&line("Registration timed out.")));
        wire.close(&transport, "registration timed out");
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
    pub(super) fn start_request(&self, id: u64) {
        if let Some(c) = self.clients.borrow_mut().get_mut(&id) {
            c.request_pending = true;
        }
        self.update_reading(id);
    }

    /// Client `id`'s request is done (its reading resumes, unless held).
    pub(super) fn end_request(&self, id: u64) {
        if let Some(c) = self.clients.borrow_mut().get_mut(&id) {
            c.request_pending = false;
        }
        self.update_reading(id);
    }

    pub(super) fn register(&self, id: u64, name: &str) -> Option<PendingRequest> {
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

    pub(super) fn chat(&self, id: u64, name: &str, text: &str) -> Option<PendingRequest> {
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
    pub(super) fn quit(&self, id: u64) {
        let (name, transport, wire) = {
            let mut clients = self.clients.borrow_mut();
            let Some(c) = clients.get_mut(&id) else {
                return;
            };
            let State::Named(name) = std::mem::replace(&mut c.state, State::Leaving) else {
                return;
            };
            (name, c.transport.clone(), c.wire)
        };
        self.release_name(id, name);
        wire.close(&transport, "quit");
    }
}
