//! Length-prefixed framing with a big-endian unsigned prefix of 1, 2 or 4
//! bytes (Twisted's `Int8StringReceiver`, `Int16StringReceiver`,
//! `Int32StringReceiver`).
//!
//! `max_length` (default 99999, Twisted's `MAX_LENGTH`) bounds the payload
//! and is checked as soon as the prefix arrives. Encoding a payload longer
//! than the prefix can announce is an error, never a truncation.

use bytes::{Buf, Bytes, BytesMut};

use super::{decode_length_framed, Decoder, Encoder, FrameError, LengthFramed, MAX_HEADER};

/// Twisted's `IntNStringReceiver.MAX_LENGTH`.
pub const DEFAULT_MAX_PREFIXED_LENGTH: usize = 99999;

/// The width of the length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixWidth {
    /// One byte (`Int8StringReceiver`).
    U8,
    /// Two bytes (`Int16StringReceiver`).
    U16,
    /// Four bytes (`Int32StringReceiver`).
    U32,
}

impl PrefixWidth {
    /// Prefix size in bytes.
    pub fn bytes(self) -> usize {
        match self {
            PrefixWidth::U8 => 1,
            PrefixWidth::U16 => 2,
            PrefixWidth::U32 => 4,
        }
    }

    /// The longest payload the prefix can announce.
    pub fn max_payload(self) -> u64 {
        (1u64 << (8 * self.bytes())) - 1
    }
}

/// Decodes and encodes length-prefixed frames.
#[derive(Debug, Clone)]
pub struct IntPrefixedCodec {
    width: PrefixWidth,
    max_length: usize,
    /// An error was reported: the stream cannot be resynchronised.
    failed: bool,
}

impl IntPrefixedCodec {
    /// Frames with a `width` prefix, payloads of at most 99999 bytes.
    pub fn new(width: PrefixWidth) -> IntPrefixedCodec {
        IntPrefixedCodec {
            width,
            max_length: DEFAULT_MAX_PREFIXED_LENGTH,
            failed: false,
        }
    }

    /// Sets the longest accepted payload.
    pub fn max_length(mut self, max_length: usize) -> IntPrefixedCodec {
        self.max_length = max_length;
        self
    }

    /// The longest payload this codec accepts and can send.
    pub fn limit(&self) -> usize {
        let by_prefix = usize::try_from(self.width.max_payload()).unwrap_or(usize::MAX);
        self.max_length.min(by_prefix)
    }

    /// The prefix width.
    pub fn width(&self) -> PrefixWidth {
        self.width
    }
}

impl Decoder for IntPrefixedCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        decode_length_framed(self, buf)
    }

    fn reset(&mut self) {
        self.forget_frame();
        *self.failed() = false;
    }
}

impl LengthFramed for IntPrefixedCodec {
    fn failed(&mut self) -> &mut bool {
        &mut self.failed
    }

    fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let w = self.width.bytes();
        if buf.len() < w {
            return Ok(None);
        }
        let length = buf[..w]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if length > self.max_length {
            return Err(FrameError::FrameTooLong {
                length,
                limit: self.max_length,
            });
        }
        if buf.len() < w + length {
            buf.reserve(w + length - buf.len());
            return Ok(None);
        }
        buf.advance(w);
        Ok(Some(buf.split_to(length).freeze()))
    }
}

impl Encoder for IntPrefixedCodec {
    fn header(&self, len: usize, header: &mut [u8; MAX_HEADER]) -> Result<usize, FrameError> {
        let max = self.width.max_payload();
        if len as u64 > max {
            return Err(FrameError::TooLongForPrefix {
                length: len,
                prefix_bytes: self.width.bytes(),
                max,
            });
        }
        let w = self.width.bytes();
        let be = (len as u32).to_be_bytes();
        header[..w].copy_from_slice(&be[4 - w..]);
        Ok(w)
    }

    fn trailer(&self) -> &[u8] {
        &[]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testing::{
        assert_max_length, decode_all, every_chunking, round_trip, split_at_points,
    };
    use crate::codec::Decoder;
    use proptest::prelude::*;

    const WIDTHS: [PrefixWidth; 3] = [PrefixWidth::U8, PrefixWidth::U16, PrefixWidth::U32];

    #[test]
    fn decodes_in_every_chunking() {
        for w in WIDTHS {
            let codec = IntPrefixedCodec::new(w);
            let mut wire = BytesMut::new();
            for p in [&b"abc"[..], b"", b"hello world", &[0u8; 200]] {
                codec.encode(p, &mut wire).unwrap();
            }
            every_chunking(&wire, |chunks| {
                let got = decode_all(codec.clone(), chunks);
                assert_eq!(
                    got,
                    vec![
                        Ok(b"abc".to_vec()),
                        Ok(vec![]),
                        Ok(b"hello world".to_vec()),
                        Ok(vec![0u8; 200])
                    ]
                );
            });
        }
    }

    #[test]
    fn prefixes_are_big_endian() {
        let mut dst = BytesMut::new();
        IntPrefixedCodec::new(PrefixWidth::U16)
            .encode(&[9u8; 258], &mut dst)
            .unwrap();
        assert_eq!(&dst[..2], &[1, 2]);
        let mut dst = BytesMut::new();
        IntPrefixedCodec::new(PrefixWidth::U32)
            .encode(b"x", &mut dst)
            .unwrap();
        assert_eq!(&dst[..], &[0, 0, 0, 1, b'x']);
    }

    #[test]
    fn max_length_and_one_more_are_decided_by_the_prefix() {
        for w in [PrefixWidth::U16, PrefixWidth::U32] {
            let codec = IntPrefixedCodec::new(w).max_length(300);
            let too_long = FrameError::FrameTooLong {
                length: 301,
                limit: 300,
            };
            let over = assert_max_length(&codec, 300, too_long.clone());
            // The prefix alone is enough to reject.
            let mut prefix_only = BytesMut::from(&over[..w.bytes()]);
            assert_eq!(codec.clone().decode(&mut prefix_only), Err(too_long));
        }
    }

    #[test]
    fn payloads_too_long_for_the_prefix_are_errors_not_truncations() {
        let mut dst = BytesMut::new();
        assert_eq!(
            IntPrefixedCodec::new(PrefixWidth::U8).encode(&[0u8; 256], &mut dst),
            Err(FrameError::TooLongForPrefix {
                length: 256,
                prefix_bytes: 1,
                max: 255
            })
        );
        assert_eq!(
            IntPrefixedCodec::new(PrefixWidth::U16).encode(&vec![0u8; 65536], &mut dst),
            Err(FrameError::TooLongForPrefix {
                length: 65536,
                prefix_bytes: 2,
                max: 65535
            })
        );
        assert!(dst.is_empty(), "nothing written on error");
        IntPrefixedCodec::new(PrefixWidth::U8)
            .encode(&[0u8; 255], &mut dst)
            .unwrap();
        assert_eq!(IntPrefixedCodec::new(PrefixWidth::U8).limit(), 255);
        assert_eq!(IntPrefixedCodec::new(PrefixWidth::U32).limit(), 99999);
    }

    proptest! {
        #[test]
        fn round_trips_arbitrary_payloads_at_arbitrary_splits(
            width in prop_oneof![Just(PrefixWidth::U8), Just(PrefixWidth::U16), Just(PrefixWidth::U32)],
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..255), 0..10),
            splits in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let got = round_trip(&IntPrefixedCodec::new(width), &payloads, &splits);
            prop_assert_eq!(got, payloads.into_iter().map(Ok).collect::<Vec<_>>());
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_chunking_never_matters(
            width in prop_oneof![Just(PrefixWidth::U8), Just(PrefixWidth::U16), Just(PrefixWidth::U32)],
            input in proptest::collection::vec(any::<u8>(), 0..100),
            splits in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let codec = IntPrefixedCodec::new(width).max_length(40);
            let whole = decode_all(codec.clone(), &[&input]);
            let chunks = split_at_points(&input, &splits);
            prop_assert_eq!(decode_all(codec, &chunks), whole);
        }
    }
}
