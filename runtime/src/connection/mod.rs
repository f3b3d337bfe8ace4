//! Connections: one socket, one protocol, one shard, for life.
//!
//! | file | what |
//! |---|---|
//! | `protocol.rs` | [`Protocol`](protocol::Protocol), [`Factory`](protocol::Factory): the code a user writes |
//! | `transport.rs` | [`Transport`](transport::Transport): what the protocol writes to (the outbound queue, water marks, close/abort, idle timeout) |
//! | `reason.rs` | [`DisconnectReason`](reason::DisconnectReason): why a connection ended |
//! | `policy.rs` | [`Policies`](policy::Policies): idle timeout, admission caps and permits, read throttling |
//! | `machine.rs` | [`Machine`](machine::Machine): what happens next on a connection (callbacks, flow control, close, the reason it ends), with no I/O; shared by the socket driver and the test kit |
//! | `driver.rs` | [`drive`]: performs the machine's steps on a socket (vectored `sendmsg`, glommio reads, half-close and linger, read throttling) |
//! | `host.rs` | [`ConnectionHost`](host::ConnectionHost): what the driver needs from a server shard or a thread's TCP clients |

//! | `sockopt.rs` | `setsockopt` on a descriptor |

mod driver;
pub(crate) mod host;
pub(crate) mod machine;
pub mod policy;
pub mod protocol;
pub mod reason;
pub(crate) mod sockopt;
pub mod transport;

pub(crate) use driver::{drive, Wire};
