//! The framings by name, as the command line spells them.

use std::fmt;
use std::str::FromStr;

use crate::codec::DEFAULT_MAX_LINE_LENGTH;
use crate::codec::DEFAULT_MAX_NETSTRING_LENGTH;
use crate::codec::{IntPrefixedCodec, PrefixWidth};

/// How a byte stream is cut into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// No framing: bytes as they arrive.
    Raw,
    /// `\r\n`-terminated lines (`LineReceiver`).
    Line,
    /// Netstrings (`NetstringReceiver`).
    Netstring,
    /// One-byte length prefix (`Int8StringReceiver`).
    Int8,
    /// Two-byte length prefix (`Int16StringReceiver`).
    Int16,
    /// Four-byte length prefix (`Int32StringReceiver`).
    Int32,
}

impl Framing {
    /// Every framing, in CLI order.
    pub const ALL: [Framing; 6] = [
        Framing::Raw,
        Framing::Line,
        Framing::Netstring,
        Framing::Int8,
        Framing::Int16,
        Framing::Int32,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Raw => "raw",
            Framing::Line => "line",
            Framing::Netstring => "netstring",
            Framing::Int8 => "int8",
            Framing::Int16 => "int16",
            Framing::Int32 => "int32",
        }
    }

    /// The longest message the default codec accepts (`None` for raw).
    pub fn max_message(self) -> Option<usize> {
        match self {
            Framing::Raw => None,
            Framing::Line => Some(DEFAULT_MAX_LINE_LENGTH),
            Framing::Netstring => Some(DEFAULT_MAX_NETSTRING_LENGTH),
            Framing::Int8 => Some(IntPrefixedCodec::new(PrefixWidth::U8).limit()),
            Framing::Int16 => Some(IntPrefixedCodec::new(PrefixWidth::U16).limit()),
            Framing::Int32 => Some(IntPrefixedCodec::new(PrefixWidth::U32).limit()),
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown framing name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown framing \"{0}\" (expected raw, line, netstring, int8, int16 or int32)")]
pub struct UnknownFraming(pub String);

impl FromStr for Framing {
    type Err = UnknownFraming;

    fn from_str(s: &str) -> Result<Framing, UnknownFraming> {
        Framing::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFraming(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for f in Framing::ALL {
            assert_eq!(f.name().parse::<Framing>(), Ok(f));
        }
        assert_eq!(
            "lines".parse::<Framing>().unwrap_err().to_string(),
            "unknown framing \"lines\" (expected raw, line, netstring, int8, int16 or int32)"
        );
        assert_eq!(Framing::Int8.max_message(), Some(255));
        assert_eq!(Framing::Line.max_message(), Some(16384));
    }
}
