//! The test kit: run protocol code without sockets or executors.
//!
//! Twisted's `proto_helpers.StringTransport`, `task.Clock` and `iosim`:
//!
//! * [`ProtocolHarness`] drives one protocol through the very same
//!   [`Transport`](crate::Transport) type it gets on a real shard, backed by
//!   memory: feed it bytes, read what it wrote, see whether it closed or
//!   aborted and with which reason `connection_lost` was called;
//! * [`ManualClock`](crate::ManualClock): timers (`call_later`, repeating
//!   calls, `sleep`) fire only when the test advances time;
//! * [`ConnectedPair`] wires a server protocol and a client protocol through
//!   memory; the test pumps bytes between them.
//!
//! The harness runs the connection driver's own state machine
//! (`connection/machine.rs`; only the I/O is memory): writes made in a
//! callback are delivered after it returns, `close` flushes then ends the
//! connection, `abort` discards, reading stops after `close`, the water marks
//! call `pause_writing`/`resume_writing` (hold the peer's reading with
//! [`ProtocolHarness::set_peer_reading`]), panics end the connection with
//! [`DisconnectReason::Panic`](crate::DisconnectReason::Panic), and
//! `connection_lost` is called exactly once.
//!
//! ```
//! use bytes::BytesMut;
//! use std::time::Duration;
//! use torsion::testing::ProtocolHarness;
//! use torsion::{DisconnectReason, Protocol, Transport};
//!
//! /// Says hello, then hangs up after 5 s of silence.
//! struct Greeter;
//! impl Protocol for Greeter {
//!     fn connection_made(&mut self, t: &Transport) {
//!         t.write(b"hello\r\n").unwrap();
//!         let t2 = t.clone();
//!         t.clock().call_later(Duration::from_secs(5), move || t2.close());
//!     }
//! }
//!
//! let mut h = ProtocolHarness::new(Greeter);
//! assert_eq!(h.take_written(), b"hello\r\n");
//! h.advance(Duration::from_secs(4));
//! assert!(h.is_open());
//! h.advance(Duration::from_secs(1));
//! assert_eq!(h.lost_reason(), Some(&DisconnectReason::Closed));
//! ```

mod harness;
mod pair;

pub use harness::{HarnessOptions, ProtocolHarness};
pub use pair::ConnectedPair;
