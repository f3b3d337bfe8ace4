//! Chat rooms for tests: several pretend shards on the test's thread, the
//! manual buses between them (what rooms tell each other, and what they ask
//! and await), as `torsion::testing` runs protocols without sockets.

use std::rc::Rc;

use torsion::{ManualBus, RpcMessage};

use super::message::ChatMessage;
use super::requests::{RoomAnswer, RoomRequest, RoomRpc};
use super::room::{self, ChatConfig, Room};

/// `shards` rooms joined by manual buses; nothing moves until
/// [`ManualChat::pump`]. Drive clients of a room with
/// `ProtocolHarness::new(LineReceiver::with_codec(ChatClient::new(room), codec))`.
pub struct ManualChat {
    /// One room per pretend shard.
    pub rooms: Vec<Rc<Room>>,
    /// What the rooms tell each other (lines, acknowledgements, releases).
    pub messages: ManualBus<ChatMessage>,
    /// What the rooms ask and await (claims, `/who`).
    pub requests: ManualBus<RpcMessage<RoomRequest, RoomAnswer>>,
}

impl std::fmt::Debug for ManualChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualChat")
            .field("rooms", &self.rooms.len())
            .finish()
    }
}

impl ManualChat {
    /// Rooms for `shards` pretend shards with `config`.
    pub fn new(shards: usize, config: ChatConfig) -> ManualChat {
        let messages = ManualBus::new(shards);
        let calls = ManualBus::new(shards);
        let rooms = (0..shards)
            .map(|s| {
                let room = Room::new(s, shards, config.clone());
                // Weak: the room owns its handles, which own these handlers.
                let receiver = Rc::downgrade(&room);
                let handle = messages
                    .attach(s, move |m| {
                        if let Some(room) = receiver.upgrade() {
                            room.on_message(m);
                        }
                    })
                    .expect("a new manual bus has room for every shard");
                room.set_bus(handle);
                let served = Rc::downgrade(&room);
                let rpc = RoomRpc::attach_manual(&calls, s, move |from, request| {
                    room::serve(served.clone(), from, request)
                })
                .expect("a new manual bus has room for every shard");
                room.set_rpc(rpc);
                room
            })
            .collect();
        ManualChat {
            rooms,
            messages,
            requests: calls,
        }
    }

    /// Delivers both buses' messages (and runs the calls that wait) until
    /// neither has any; returns how many moved.
    pub fn pump(&self) -> usize {
        let mut moved = 0;
        loop {
            let n = self.messages.pump() + self.requests.pump();
            if n == 0 {
                return moved;
            }
            moved += n;
        }
    }

    /// Messages waiting on either bus.
    pub fn pending(&self) -> usize {
        self.messages.pending() + self.requests.pending()
    }
}
