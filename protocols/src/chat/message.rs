//! What shards say to each other about chat.

use bytes::Bytes;

/// A chat bus message between shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatMessage {
    /// To a name's owner: may `conn` on `shard` hold `name`?
    Claim {
        /// The name.
        name: String,
        /// The claiming client's shard.
        shard: usize,
        /// The claiming client's connection id on that shard.
        conn: u64,
        /// Matches the answer to the question.
        request: u64,
    },
    /// The owner's answer to a claim.
    ClaimResult {
        /// The claim's request id.
        request: u64,
        /// Whether the name is now the claimant's.
        outcome: ClaimOutcome,
    },
    /// From the cluster bridge to a name's owner shard: Redis's answer to
    /// the claim the owner forwarded as `token`.
    ClusterClaim {
        /// The owner's token for the forwarded claim.
        token: u64,
        /// Redis's answer.
        outcome: ClaimOutcome,
    },
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
    /// "Who is named on your shard?"
    WhoAsk {
        /// Where to answer.
        shard: usize,
        /// Matches the answers to the question.
        request: u64,
    },
    /// The names held on the answering shard.
    WhoReply {
        /// The question's request id.
        request: u64,
        /// The shard's named clients' names, space-separated (built once
        /// per change of names and shared by every answer).
        names: Bytes,
    },
    /// From the cluster bridge: the names held on every other live node.
    WhoRemote {
        /// The question's request id.
        request: u64,
        /// Space-separated names.
        names: Bytes,
        /// False when Redis could not be asked (the list is this node's
        /// names only).
        reachable: bool,
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
