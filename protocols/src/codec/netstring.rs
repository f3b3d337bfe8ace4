//! Netstring framing (`<len>:<data>,`; Twisted's `NetstringReceiver`).
//!
//! The length is decimal ASCII without leading zeros (`0:,` is the empty
//! string). `max_length` (default 99999, Twisted's `MAX_LENGTH`) bounds the
//! payload, and is enforced from the length prefix alone: a prefix with more
//! digits than the limit has is rejected as soon as that digit arrives, and a
//! complete length over the limit as soon as its colon does — before any of
//! the payload is buffered.
//!
//! The header is parsed once and remembered while the payload arrives, so
//! decoding is linear in the input.

use bytes::{Buf, Bytes, BytesMut};

use super::{decode_length_framed, Decoder, Encoder, FrameError, LengthFramed, MAX_HEADER};

/// Twisted's `NetstringReceiver.MAX_LENGTH`.
pub const DEFAULT_MAX_NETSTRING_LENGTH: usize = 99999;

/// Decodes and encodes netstrings.
#[derive(Debug, Clone)]
pub struct NetstringCodec {
    max_length: usize,
    max_digits: usize,
    /// `(payload length, header length)` of the frame being received.
    header: Option<(usize, usize)>,
    /// An error was reported: the stream cannot be resynchronised.
    failed: bool,
}

impl Default for NetstringCodec {
    fn default() -> Self {
        Self::new()
    }
}

fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

impl NetstringCodec {
    /// Netstrings of at most 99999 bytes.
    pub fn new() -> NetstringCodec {
        Self::default_with(DEFAULT_MAX_NETSTRING_LENGTH)
    }

    fn default_with(max_length: usize) -> NetstringCodec {
        NetstringCodec {
            max_length,
            max_digits: digits(max_length),
            header: None,
            failed: false,
        }
    }

    /// Sets the longest accepted payload.
    pub fn max_length(self, max_length: usize) -> NetstringCodec {
        Self::default_with(max_length)
    }

    /// The longest accepted payload.
    pub fn limit(&self) -> usize {
        self.max_length
    }

    fn parse_header(&self, buf: &[u8]) -> Result<Option<(usize, usize)>, FrameError> {
        let mut length: usize = 0;
        for (i, &b) in buf.iter().enumerate() {
            match b {
                b':' if i == 0 => return Err(FrameError::MissingLength),
                b':' => {
                    if length > self.max_length {
                        return Err(FrameError::FrameTooLong {
                            length,
                            limit: self.max_length,
                        });
                    }
                    return Ok(Some((length, i + 1)));
                }
                b'0'..=b'9' => {
                    if i == 1 && buf[0] == b'0' {
                        return Err(FrameError::LeadingZero);
                    }
                    if i >= self.max_digits {
                        return Err(FrameError::LengthPrefixTooLong {
                            digits: self.max_digits,
                            limit: self.max_length,
                        });
                    }
                    length = length * 10 + usize::from(b - b'0');
                }
                byte => return Err(FrameError::InvalidLengthByte { byte }),
            }
        }
        Ok(None)
    }
}

impl Decoder for NetstringCodec {
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

impl LengthFramed for NetstringCodec {
    fn failed(&mut self) -> &mut bool {
        &mut self.failed
    }

    fn forget_frame(&mut self) {
        self.header = None;
    }

    fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let (length, header_len) = match self.header {
            Some(h) => h,
            None => match self.parse_header(buf)? {
                Some(h) => {
                    self.header = Some(h);
                    h
                }
                None => return Ok(None),
            },
        };
        let total = header_len + length + 1;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let found = buf[total - 1];
        if found != b',' {
            return Err(FrameError::MissingComma { found });
        }
        self.header = None;
        buf.advance(header_len);
        let payload = buf.split_to(length).freeze();
        buf.advance(1);
        Ok(Some(payload))
    }
}

impl Encoder for NetstringCodec {
    fn header(&self, len: usize, header: &mut [u8; MAX_HEADER]) -> Result<usize, FrameError> {
        // Decimal digits, written backwards then moved to the front.
        let mut n = len;
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let text = &tmp[i..];
        header[..text.len()].copy_from_slice(text);
        header[text.len()] = b':';
        Ok(text.len() + 1)
    }

    fn trailer(&self) -> &[u8] {
        b","
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

    fn ok(s: &[u8]) -> Result<Vec<u8>, FrameError> {
        Ok(s.to_vec())
    }

    #[test]
    fn decodes_netstrings_in_every_chunking() {
        let input = b"3:abc,0:,5:hello,1:,,";
        every_chunking(input, |chunks| {
            assert_eq!(
                decode_all(NetstringCodec::new(), chunks),
                vec![ok(b"abc"), ok(b""), ok(b"hello"), ok(b",")],
                "{chunks:?}"
            );
        });
    }

    #[test]
    fn malformed_netstrings_are_rejected() {
        let cases: &[(&[u8], FrameError)] = &[
            (b"01:a,", FrameError::LeadingZero),
            (b"00:,", FrameError::LeadingZero),
            (b":abc,", FrameError::MissingLength),
            (b"3x:abc,", FrameError::InvalidLengthByte { byte: b'x' }),
            (b"-1:a,", FrameError::InvalidLengthByte { byte: b'-' }),
            (b" 3:abc,", FrameError::InvalidLengthByte { byte: b' ' }),
            (b"3:abc;", FrameError::MissingComma { found: b';' }),
            (b"3:abcd,", FrameError::MissingComma { found: b'd' }),
        ];
        for (input, want) in cases {
            every_chunking(input, |chunks| {
                let got = decode_all(NetstringCodec::new(), chunks);
                assert_eq!(got.last(), Some(&Err(want.clone())), "{input:?} {chunks:?}");
            });
        }
    }

    #[test]
    fn the_length_limit_is_enforced_from_the_prefix_alone() {
        let codec = NetstringCodec::new(); // 99999: five digits
        let mut buf = BytesMut::from(&b"100000"[..]);
        assert_eq!(
            codec.clone().decode(&mut buf),
            Err(FrameError::LengthPrefixTooLong {
                digits: 5,
                limit: 99999
            })
        );
        let mut buf = BytesMut::from(&b"99999:"[..]);
        assert_eq!(
            codec.clone().decode(&mut buf),
            Ok(None),
            "at the limit: wait"
        );
        let small = NetstringCodec::new().max_length(50);
        let mut buf = BytesMut::from(&b"51:"[..]);
        assert_eq!(
            small.clone().decode(&mut buf),
            Err(FrameError::FrameTooLong {
                length: 51,
                limit: 50
            })
        );
    }

    #[test]
    fn max_length_and_one_more() {
        let codec = NetstringCodec::new().max_length(100);
        let too_long = FrameError::FrameTooLong {
            length: 101,
            limit: 100,
        };
        assert_max_length(&codec, 100, too_long);
    }

    #[test]
    fn encodes() {
        let mut dst = BytesMut::new();
        NetstringCodec::new().encode(b"hello", &mut dst).unwrap();
        NetstringCodec::new().encode(b"", &mut dst).unwrap();
        assert_eq!(&dst[..], b"5:hello,0:,");
    }

    proptest! {
        #[test]
        fn round_trips_arbitrary_payloads_at_arbitrary_splits(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..10),
            splits in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let got = round_trip(&NetstringCodec::new(), &payloads, &splits);
            prop_assert_eq!(got, payloads.into_iter().map(Ok).collect::<Vec<_>>());
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_chunking_never_matters(
            input in proptest::collection::vec(prop_oneof![Just(b':'), Just(b','), Just(b'0'), Just(b'3'), any::<u8>()], 0..100),
            splits in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let codec = NetstringCodec::new().max_length(20);
            let whole = decode_all(codec.clone(), &[&input]);
            let chunks = split_at_points(&input, &splits);
            prop_assert_eq!(decode_all(codec, &chunks), whole);
        }
    }
}
