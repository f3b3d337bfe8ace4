//! Connections: one socket, one protocol, one shard, for life.
//!
//! | file | what |
//! |---|---|
//! | `machine.rs` | [`Machine`](machine::Machine): what happens next on a connection (callbacks, flow control, close, the reason it ends), with no I/O; shared by the socket driver and the test kit |
//! | `driver.rs` | [`drive`]: performs the machine's steps on a socket (vectored `sendmsg`, glommio reads, half-close and linger, read throttling) |
//! | `host.rs` | [`ConnectionHost`](host::ConnectionHost): what the driver needs from a server shard or a thread's TCP clients |

mod driver;
pub(crate) mod host;
pub(crate) mod machine;

pub(crate) use driver::{drive, Wire};
