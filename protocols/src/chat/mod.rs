//! A chat server across shards: Twisted's docs chat server (`chat.py`),
//! sharded, with names held globally and messages fanned out over the bus.
//!
//! # Semantics (Twisted's, then ours)
//!
//! On connect the server sends `What's your name?`. The first line is the
//! name: `Name taken, please choose another.` if anyone on any shard holds
//! it (the client stays nameless and may try again), else `Welcome, <name>!`
//! and the name is held until the client disconnects. Every later line `msg`
//! reaches every other named client on every shard as `<name> msg` (the
//! angle brackets are literal, as in Twisted's `"<%s> %s"`); the sender does
//! not get its own line; nameless clients get nothing. Output lines end with
//! `\r\n`; input lines may end with `\r\n` or `\n`.
//!
//! Beyond Twisted: names are 1–32 bytes of UTF-8 without whitespace,
//! control characters or invisible format characters (Unicode Cf: U+200B,
//! U+202E, U+2060, U+FEFF…) (`Invalid name, please choose another.`);
//! `/who` answers one line `Users: a b c` (every named user on every shard,
//! sorted); `/me waves` delivers `* <name> waves`; `/quit` frees the name at
//! once, then flushes and closes; other `/word` lines get `Unknown command
//! "/word".`; a line that is not UTF-8 gets `Invalid UTF-8, line ignored.`;
//! control characters other than tab in a line (ESC, CR, BEL, C1…) are
//! replaced by U+FFFD before anyone else sees it; a line over the limit
//! (default 4096 bytes) gets `Line too long.` and the connection is closed;
//! a client that has not registered within the registration timeout
//! (default 30 s) gets `Registration timed out.` and is closed.
//!
//! # Shared state by ownership, no locks
//!
//! Each shard's [`Room`] is `Rc`/`RefCell` state on that shard. The name
//! registry is partitioned: a name belongs to shard `hash(name) % shards`,
//! and claims and releases are bus messages to that shard, answered by bus
//! message — the owner handles them one at a time, so under any race exactly
//! one client wins a name. A chat line is formatted once, as one `Bytes`;
//! it is written to the local recipients and crosses to each other shard
//! **once** (one bus message per shard), where it is written to that shard's
//! recipients. Writes are queued on each transport and flushed by its
//! connection's driver after the current batch of bus messages, so a burst of
//! lines to one client leaves in one `sendmsg`.
//!
//! # Across machines
//!
//! With a [`cluster`] (Redis), several nodes share one room: every named
//! client on every node gets every line, names are unique across nodes,
//! and `/who` lists them all. See the [`cluster`] module.
//!
//! # Back-pressure and slow consumers
//!
//! One fast sender cannot get healthy readers cut: while a reader is behind
//! (its queue above the high-water mark), the room stops reading from its
//! senders, on every shard (local hold plus a cross-shard window that the
//! behind shard stops acknowledging) — see [`Room`]'s docs for the
//! mechanism and its bound. A reader that stays behind for the stall
//! timeout (`--stall-timeout`, default 2 s) no longer holds anyone back;
//! if it still does not read, its unread output reaches the hard cap
//! (`--max-outbound`, default 1 MiB for chat) and it is disconnected as a
//! slow consumer (logged, counted); everyone else keeps receiving. So a
//! client that never reads stalls the room once, for at most the stall
//! timeout, and memory stays bounded however many clients stop reading.
//! A client has at most one name claim or `/who` in flight; its further
//! input waits in its socket meanwhile.

mod client;
pub mod cluster;
mod connection;
mod message;
mod metrics;
mod names;
mod requests;
mod room;
mod server;
pub mod testing;
#[cfg(feature = "websocket")]
mod websocket;
mod wire;

pub use client::ChatClient;
pub use connection::ChatConnection;
pub use message::{ChatMessage, ClaimOutcome};
pub use metrics::{ChatMetrics, ChatShardStats};
pub use names::{validate_name, InvalidName, MAX_NAME_BYTES};
pub use requests::{RoomAnswer, RoomRequest, RoomRpc};
pub use room::{
    fanout_window, printable, ChatConfig, Room, DEFAULT_FLUSH_WINDOW, DEFAULT_MAX_OUTBOUND,
    MAX_COALESCED_SLEEP,
};
pub use server::{chat_factory, start_chat_server, ChatBuses, ChatFactory};
#[cfg(feature = "websocket")]
pub use websocket::{WsChatClient, CHAT_PAGE};
pub use wire::ChatWire;
