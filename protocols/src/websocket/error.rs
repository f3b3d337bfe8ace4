//! [`WsError`]: why a WebSocket connection ends badly, with the close code
//! the RFC names for it and a sentence.

use super::close_code::CloseCode;

/// A WebSocket failure: the close code sent to the peer (or, for a local
/// failure, the one that describes it) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (close code {})", code.0)]
pub struct WsError {
    /// The close code.
    pub code: CloseCode,
    /// What went wrong.
    pub reason: String,
}

impl WsError {
    /// A failure with `code`.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> WsError {
        WsError {
            code,
            reason: reason.into(),
        }
    }

    /// A protocol error (1002).
    pub fn protocol(reason: impl Into<String>) -> WsError {
        WsError::new(CloseCode::PROTOCOL_ERROR, reason)
    }
}
