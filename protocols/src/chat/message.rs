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
        /// True if the name is now the claimant's.
        granted: bool,
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
        /// Names of the shard's named clients.
        names: Vec<String>,
    },
}
