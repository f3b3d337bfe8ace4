//! Names across shards: a name belongs to shard `hash(name) % shards`,
//! which answers claims one at a time (so exactly one client wins a name
//! under any race); clustered, the owner asks Redis before it answers. A
//! holder's release, a name lost to another node, and the serving side of
//! the calls between rooms ([`serve`]).

use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry;
use std::rc::{Rc, Weak};

use super::{Recipient, Room, State};
use crate::chat::message::{ChatMessage, ClaimOutcome};
use crate::chat::names::owner_shard;
use crate::chat::requests::{RoomAnswer, RoomRequest};

/// The serving side: `room` answers what shard `from` asks.
pub(crate) async fn serve(room: Weak<Room>, from: usize, request: RoomRequest) -> RoomAnswer {
    let Some(room) = room.upgrade() else {
        return RoomAnswer::Claim(ClaimOutcome::Unavailable);
    };
    match request {
        RoomRequest::Claim { name, conn } => {
            RoomAnswer::Claim(room.serve_claim(from, name, conn).await)
        }
        RoomRequest::Names => RoomAnswer::Names(room.names()),
    }
}

impl Room {
    /// Takes `id` off the recipients and tells the name's owner.
    pub(super) fn release_name(&self, id: u64, name: String) {
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
    pub(super) fn unname(&self, id: u64) {
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

    pub(super) fn claim_answered(&self, id: u64, name: String, outcome: ClaimOutcome) {
        let granted = outcome == ClaimOutcome::Granted;
        let (transport, wire) = {
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
            (client.transport.clone(), client.wire)
        };
        if granted {
            self.named.borrow_mut().push(Rc::new(Recipient {
                id,
                transport,
                wire,
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

    /// Client `id` loses `name` (another node took it while this one was
    /// cut off from Redis past its lease): it is nameless again.
    pub(super) fn revoke(&self, id: u64, name: &str) {
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

    /// `Release`: the holder gave `name` up (it left or said `/quit`).
    pub(super) fn released(&self, name: String, shard: usize, conn: u64) {
        let mut owned = self.owned.borrow_mut();
        if owned.get(&name) == Some(&(shard, conn)) {
            owned.remove(&name);
            drop(owned);
            if let Some(cluster) = self.cluster.get() {
                cluster.release(name);
            }
        }
    }

    /// `NameLost`: Redis gave `name` to another node; its holder here loses it.
    pub(super) fn name_lost(&self, name: String) {
        let holder = self.owned.borrow_mut().remove(&name);
        if let Some((shard, conn)) = holder {
            self.send(shard, ChatMessage::Revoke { name, conn });
        }
    }
}
