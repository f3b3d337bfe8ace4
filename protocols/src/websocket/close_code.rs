//! [`CloseCode`]: the close status codes of RFC 6455 §7.4, and which ones
//! a peer may send.

/// A close status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: done.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the server is going down, or the page is going away.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a kind of data this end does not take.
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1005 (never sent): the close frame had no code.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006 (never sent): the connection ended without a close frame.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a text message that is not UTF-8.
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    /// 1008: against this end's policy.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a message or frame over the limit.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: this end failed.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);

    /// Whether a peer may send this code in a close frame: 1000–1003,
    /// 1007–1014 and 3000–4999 (§7.4.1 and IANA's registry; 1004–1006 and
    /// 1015 are never sent).
    pub fn may_be_sent(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}
