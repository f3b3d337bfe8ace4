//! What shards tell each other about chat: lines, acknowledgements, name
//! releases and revocations (what they ask and await is `requests.rs`).

use bytes::Bytes;

/// A chat bus message between shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatMessage {
    /// From the cluster bridge to a name's owner shard: after this node's
    /// lease lapsed (a long Redis outage), another node took `name`.
    NameLost {
        /// The name.
        name: String,
    },
    /// From a name's owner shard to its holder's shard: the name is no
    /// longer the holder's (see `NameLost`).
    Revoke {
        /// The name.
        name: String,
        /// The holder's connection id.
        conn: u64,
    },
    /// From the cluster bridge: lines other nodes' clients sent, for every
    /// named client on the shard.
    Remote {
        /// Whole lines, each ending in `\r\n`, shared by every recipient.
        lines: Bytes,
        /// How many lines `lines` holds.
        count: usize,
    },
    /// To a name's owner: the holder is gone.
    Release {
        /// The name.
        name: String,
        /// The holder's shard.
        shard: usize,
        /// The holder's connection id (a later holder is not released).
        conn: u64,
    },
    /// A formatted line (with `\r\n`) for every named client on the shard.
    Deliver {
        /// The line, shared by reference with every recipient.
        line: Bytes,
        /// The sending shard (acknowledgements go back there).
        from: usize,
    },
    /// "I have written `bytes` of your lines to my recipients, and none of
    /// them is behind": the sender's window opens by that much.
    Ack {
        /// The acknowledging shard.
        from: usize,
        /// Bytes of `Deliver` lines acknowledged.
        bytes: usize,
    },
}

/// The answer to a name claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The name is the claimant's.
    Granted,
    /// Someone holds it (on this node or, clustered, on another).
    Taken,
    /// Clustered and Redis is unreachable: names cannot be checked across
    /// nodes, so none is given out.
    Unavailable,
}
