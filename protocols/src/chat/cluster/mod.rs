//! Chat across machines: several chat nodes (torsion processes, each with
//! its shards) share one room through Redis — Redis Streams for lines,
//! Lua scripts for names, a lease for each node.
//!
//! ```text
//!  node A (torsion, 2 shards)                       node B
//!  ┌──────────────────────────────┐                 ┌───────────────┐
//!  │ shard 0 ──bus── shard 1      │                 │ shard 0 …     │
//!  │    │  line        │          │                 │    ▲          │
//!  │    └──────┬───────┘          │                 │    │ bus      │
//!  │   crossbeam channel          │                 │ reader thread │
//!  │           ▼                  │   XADD (batch)  │    ▲ XREAD    │
//!  │     writer thread ───────────┼──► Redis ───────┼────┘ BLOCK    │
//!  │     reader thread ◄──────────┼─── stream       │ writer thread │
//!  └──────────────────────────────┘   names hash    └───────────────┘
//!                                     node leases
//! ```
//!
//! # The data path
//!
//! A client's line is written to the named clients of its own shard, sent
//! once to each other shard of its node over the bus (as without a
//! cluster), and handed to the node's bridge over a channel. The bridge's
//! writer (`writer/`) batches the node's lines into one stream entry per
//! round (`XADD torsion:chat:lines`, one command for many lines: rounds
//! are paced by the pacer (`pacer.rs`) from 250 µs at low rates to 3 ms at
//! high ones). Every node's reader (`reader.rs`) follows the stream with
//! `XREAD BLOCK` and hands each other node's entry to all of its shards
//! as one bus message, written to every named client as one shared
//! buffer. A sender's lines reach every node in the order they were sent:
//! one channel, one writer, one stream, one reader.
//!
//! # Nothing lost or duplicated in a bounded outage
//!
//! Each node numbers its lines; each entry says which (see `entry.rs`).
//! While Redis is away a node keeps its lines (up to the outage bound,
//! default 30 s, `--cluster-outage`) and writes them when it is back; a
//! reader resumes from the last entry it read (the stream keeps entries
//! twice the outage bound). A write retried after a lost reply is dropped
//! by readers as a copy. Past the bound, lines are dropped by their
//! sender (`lines_dropped`) or found missing by a reader's numbering
//! (`lines_missed`: trimmed before read, or lost by a Redis restart) —
//! counted and logged, never silent.
//!
//! # Names: unique across nodes, held under a lease
//!
//! Within a node a name's owner shard decides first (as without a
//! cluster); if free there, it asks Redis, where a script (`scripts.rs`)
//! grants it atomically unless a live node holds it. Names are released
//! on disconnect or `/quit`. Each node renews its own key every quarter
//! of the lease (default 10 s, `--cluster-lease`); a node killed with
//! `kill -9` holds its names until the lease runs out. `/who` lists the
//! names of every node whose lease is live.
//!
//! # While Redis is down
//!
//! No shard ever waits for Redis: the bridge is two threads of their own.
//! Local chat goes on (this node's clients keep talking); lines for other
//! nodes wait as above; **new names are refused** ("Names cannot be
//! checked across servers right now, please try again.") because their
//! uniqueness cannot be checked; `/who` lists this node's users and says
//! "(other servers unreachable)". If the outage outlasts the lease, other
//! nodes may take this node's names; when it is back it claims them again
//! and a client whose name was taken meanwhile is told and is nameless
//! again. A node whose Redis cannot be reached when it starts does not
//! start: a clear error, exit status 2.

//!
//! # Features
//!
//! The bridge (Redis, through the `redis` crate) is the `cluster` feature;
//! with `chat` alone this module holds only what a room knows of a
//! cluster — [`ClusterLink`], the handle a room is given when its node is
//! clustered, and [`ClusterStats`] — so a chat server without Redis does
//! not compile the Redis client.

#[cfg(feature = "cluster")]
mod bridge;
#[cfg(feature = "cluster")]
mod config;
#[cfg(feature = "cluster")]
mod entry;
mod link;
#[cfg(feature = "cluster")]
mod node;
#[cfg(feature = "cluster")]
mod pacer;
#[cfg(feature = "cluster")]
mod reader;
#[cfg(feature = "cluster")]
mod scripts;
mod stats;
#[cfg(feature = "cluster")]
mod writer;

#[cfg(feature = "cluster")]
pub use bridge::{Bridge, ClusterError};
#[cfg(feature = "cluster")]
pub use config::{
    default_node_id, ClusterConfig, ClusterConfigError, DEFAULT_LEASE, DEFAULT_OUTAGE, KEY_PREFIX,
};
pub use link::{ClusterLink, OtherNodes};
#[cfg(feature = "cluster")]
pub use node::{start_chat_node, ChatNodeError};
pub use stats::{ClusterSnapshot, ClusterStats};

#[cfg(test)]
pub(crate) use link::Request;
