//! Why a connection ended: the one value every `Protocol::connection_lost`
//! receives, and the key the per-shard stats count closed connections by.

use std::fmt;
use std::io;

/// Why a connection ended. Passed exactly once to
/// [`Protocol::connection_lost`](crate::Protocol::connection_lost).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// A clean close: [`Transport::close`](crate::Transport::close) flushed
    /// everything and the socket was closed (whether the local protocol or the
    /// peer's end-of-stream started it). Twisted's `ConnectionDone`.
    Closed,
    /// The peer reset the connection (`ECONNRESET`, `EPIPE`).
    /// Twisted's `ConnectionLost`.
    Reset,
    /// A timeout ended the connection (a protocol or policy timeout, or the
    /// kernel's `ETIMEDOUT`).
    TimedOut,
    /// [`Transport::abort`](crate::Transport::abort) discarded pending output
    /// and closed at once. Twisted's `abortConnection`.
    Aborted,
    /// The outbound queue passed its hard cap: the peer does not read fast
    /// enough, so the connection was aborted rather than buffer without bound.
    SlowConsumer,
    /// Protocol code panicked; only this connection was closed.
    Panic,
    /// The server shut down (drained and closed, or aborted at the deadline).
    Shutdown,
    /// The protocol left more unconsumed input than the read limit allows.
    ReadBufferFull,
    /// Any other I/O error, with the kernel's description.
    Io {
        /// The error's kind.
        kind: io::ErrorKind,
        /// The error's message.
        message: String,
    },
}

impl DisconnectReason {
    /// Number of distinct reason kinds (the length of [`DisconnectReason::NAMES`]).
    pub const COUNT: usize = 9;

    /// Stable lower-case names, indexed by [`DisconnectReason::index`].
    pub const NAMES: [&'static str; Self::COUNT] = [
        "closed",
        "reset",
        "timed_out",
        "aborted",
        "slow_consumer",
        "panic",
        "shutdown",
        "read_buffer_full",
        "io_error",
    ];

    /// A dense index for counting reasons (`0..COUNT`).
    pub fn index(&self) -> usize {
        match self {
            DisconnectReason::Closed => 0,
            DisconnectReason::Reset => 1,
            DisconnectReason::TimedOut => 2,
            DisconnectReason::Aborted => 3,
            DisconnectReason::SlowConsumer => 4,
            DisconnectReason::Panic => 5,
            DisconnectReason::Shutdown => 6,
            DisconnectReason::ReadBufferFull => 7,
            DisconnectReason::Io { .. } => 8,
        }
    }

    /// The reason's stable name (see [`DisconnectReason::NAMES`]).
    pub fn name(&self) -> &'static str {
        Self::NAMES[self.index()]
    }

    /// Classifies an I/O error from a socket operation.
    pub fn from_io(err: &io::Error) -> DisconnectReason {
        match err.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => DisconnectReason::Reset,
            io::ErrorKind::TimedOut => DisconnectReason::TimedOut,
            kind => DisconnectReason::Io {
                kind,
                message: err.to_string(),
            },
        }
    }

    /// True for [`DisconnectReason::Closed`], the only orderly ending.
    pub fn is_clean(&self) -> bool {
        matches!(self, DisconnectReason::Closed)
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::Closed => f.write_str("connection closed cleanly"),
            DisconnectReason::Reset => f.write_str("connection reset by peer"),
            DisconnectReason::TimedOut => f.write_str("connection timed out"),
            DisconnectReason::Aborted => f.write_str("connection aborted"),
            DisconnectReason::SlowConsumer => {
                f.write_str("slow consumer: outbound queue over its hard cap")
            }
            DisconnectReason::Panic => f.write_str("protocol code panicked"),
            DisconnectReason::Shutdown => f.write_str("server shutting down"),
            DisconnectReason::ReadBufferFull => {
                f.write_str("unconsumed input over the read buffer limit")
            }
            DisconnectReason::Io { message, .. } => write!(f, "I/O error: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_distinct_index_and_name() {
        let all = [
            DisconnectReason::Closed,
            DisconnectReason::Reset,
            DisconnectReason::TimedOut,
            DisconnectReason::Aborted,
            DisconnectReason::SlowConsumer,
            DisconnectReason::Panic,
            DisconnectReason::Shutdown,
            DisconnectReason::ReadBufferFull,
            DisconnectReason::Io {
                kind: io::ErrorKind::Other,
                message: "x".into(),
            },
        ];
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(r.name(), DisconnectReason::NAMES[i]);
        }
    }

    #[test]
    fn io_errors_are_classified() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(DisconnectReason::from_io(&reset), DisconnectReason::Reset);
        let pipe = io::Error::from_raw_os_error(libc::EPIPE);
        assert_eq!(DisconnectReason::from_io(&pipe), DisconnectReason::Reset);
        let t = io::Error::from_raw_os_error(libc::ETIMEDOUT);
        assert_eq!(DisconnectReason::from_io(&t), DisconnectReason::TimedOut);
        let other = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
        assert!(matches!(
            DisconnectReason::from_io(&other),
            DisconnectReason::Io { .. }
        ));
    }
}
