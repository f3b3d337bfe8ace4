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
//! | `async_conn.rs` | [`Connection`](async_conn::Connection): a connection driven by `async` code; how its future and the driver meet |
//! | `frames.rs` | [`Frames`](frames::Frames): an async connection cut into frames by a codec |
//! | `async_protocol.rs` | [`AsyncProtocol`](async_protocol::AsyncProtocol): the protocol an async connection runs as; [`ConnectionFn`](async_protocol::ConnectionFn), its factory |

//! | `sockopt.rs` | `setsockopt` on a descriptor |

pub mod async_conn;
pub mod async_protocol;
mod driver;
pub mod frames;
pub(crate) mod host;
pub(crate) mod machine;
pub mod policy;
pub mod protocol;
pub mod reason;
pub(crate) mod sockopt;
pub mod transport;

pub(crate) use driver::{drive, Wire};
