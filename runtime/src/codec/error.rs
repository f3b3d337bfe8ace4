//! Why input could not be framed, or a payload could not be sent.

/// A framing error. After a decode error other than
/// [`FrameError::LineTooLong`] the stream cannot be resynchronised (the
/// codec discards the rest); the framed receivers close the connection by
/// default, as Twisted does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A line (without its delimiter) longer than the limit.
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The codec's `max_length`.
        limit: usize,
    },
    /// A length-prefixed frame announcing more than the limit.
    #[error("frame of {length} bytes is over the {limit}-byte limit")]
    FrameTooLong {
        /// The announced length.
        length: usize,
        /// The codec's `max_length`.
        limit: usize,
    },
    /// A netstring length with more digits than any allowed length has.
    #[error("netstring length prefix longer than {digits} digits (limit {limit} bytes)")]
    LengthPrefixTooLong {
        /// Digits the limit allows.
        digits: usize,
        /// The codec's `max_length`.
        limit: usize,
    },
    /// A netstring length with a leading zero (`01:a,`).
    #[error("netstring length has a leading zero")]
    LeadingZero,
    /// A netstring with nothing before its colon (`:a,`).
    #[error("netstring has no length before ':'")]
    MissingLength,
    /// A non-digit in a netstring length.
    #[error("invalid byte {byte:#04x} in a netstring length")]
    InvalidLengthByte {
        /// The offending byte.
        byte: u8,
    },
    /// A netstring payload not followed by a comma.
    #[error("netstring not terminated by ',' (found {found:#04x})")]
    MissingComma {
        /// The byte found instead.
        found: u8,
    },
    /// A payload too long for the prefix width (encoding).
    #[error(
        "payload of {length} bytes does not fit a {prefix_bytes}-byte length prefix (max {max})"
    )]
    TooLongForPrefix {
        /// The payload's length.
        length: usize,
        /// The prefix width in bytes.
        prefix_bytes: usize,
        /// The longest payload the prefix can announce.
        max: u64,
    },
    /// A line to send contains the delimiter (it would frame as two lines).
    #[error("the line to send contains the delimiter")]
    DelimiterInPayload,
    /// The stream ended (the peer's EOF) inside a frame.
    #[error("the stream ended inside a frame ({remaining} bytes left over)")]
    Truncated {
        /// The bytes of the unfinished frame.
        remaining: usize,
    },
    /// A line codec with an empty delimiter.
    #[error("a line delimiter cannot be empty")]
    EmptyDelimiter,
}

impl FrameError {
    /// True for the "too long" family, which receivers route to their
    /// `*_length_exceeded` hooks.
    pub fn is_length_exceeded(&self) -> bool {
        matches!(
            self,
            FrameError::LineTooLong { .. }
                | FrameError::FrameTooLong { .. }
                | FrameError::LengthPrefixTooLong { .. }
        )
    }
}
