//! Reading a request body: `Content-Length` bytes, or `chunked` transfer
//! coding (RFC 9112 §7.1) decoded incrementally, in any chunking, with the
//! body limit enforced as bytes arrive (a client cannot make the server
//! buffer more than the limit by lying in chunk sizes). Chunk extensions
//! are skipped; trailer fields are read and dropped. Line ends are CRLF, as
//! in the head ([`super::head`]'s policy).

use bytes::{Buf, BytesMut};

use super::head::BodyFraming;

/// The longest chunk-size line (size, extensions) or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than the limit (413).
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// The chunked coding is malformed (400).
    #[error("malformed chunked body: {0}")]
    Malformed(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk: this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
}

/// Reads one message body from a connection's input (a request's on the
/// server; `torsion load http` reads responses' bodies with it too).
#[derive(Debug)]
pub struct BodyReader {
    state: State,
    max_body: usize,
    /// Whether the body's bytes are kept (a server hands them to its
    /// handler) or only counted (a load generator checks the framing).
    keep: bool,
    body: BytesMut,
    /// Body bytes read so far (kept or not): what the limit applies to.
    received: u64,
    trailer_bytes: usize,
}

#[derive(Debug)]
enum State {
    Length(u64),
    Chunked(Chunked),
    Done,
}

impl BodyReader {
    /// A reader for a body framed as `framing`, refusing bodies over
    /// `max_body` bytes.
    pub fn new(framing: BodyFraming, max_body: usize) -> Result<BodyReader, BodyError> {
        BodyReader::with_keep(framing, max_body, true, true)
    }

    /// Like [`BodyReader::new`], but the body is read past, not kept
    /// ([`BodyReader::take`] returns nothing): for a client that only
    /// checks a response's framing.
    pub fn discarding(framing: BodyFraming, max_body: usize) -> Result<BodyReader, BodyError> {
        BodyReader::with_keep(framing, max_body, false, false)
    }

    /// A reader that keeps the body but hands it out as it arrives
    /// ([`BodyReader::take`] after each [`BodyReader::read`]): no limit and
    /// nothing reserved up front, for a client streaming a response body.
    pub fn streaming(framing: BodyFraming) -> BodyReader {
        BodyReader::with_keep(framing, usize::MAX, true, false)
            .expect("no body is over usize::MAX bytes")
    }

    fn with_keep(
        framing: BodyFraming,
        max_body: usize,
        keep: bool,
        reserve: bool,
    ) -> Result<BodyReader, BodyError> {
        let state = match framing {
            BodyFraming::None => State::Done,
            BodyFraming::Length(n) if n > max_body as u64 => {
                return Err(BodyError::TooLarge(max_body))
            }
            BodyFraming::Length(n) => State::Length(n),
            BodyFraming::Chunked => State::Chunked(Chunked::Size),
        };
        let capacity = match framing {
            BodyFraming::Length(n) if reserve => n as usize,
            _ => 0,
        };
        Ok(BodyReader {
            state,
            max_body,
            keep,
            body: BytesMut::with_capacity(capacity),
            received: 0,
            trailer_bytes: 0,
        })
    }

    /// Takes up to `due` body bytes from `input` (keeping them or not);
    /// returns how many are still due.
    fn consume(&mut self, due: u64, input: &mut BytesMut) -> u64 {
        let n = (due as usize).min(input.len());
        if self.keep {
            self.body.extend_from_slice(&input[..n]);
        }
        input.advance(n);
        self.received += n as u64;
        due - n as u64
    }

    /// Takes what it can from `input`. `Ok(true)`: the body is complete
    /// ([`BodyReader::take`] it); `Ok(false)`: more input is needed.
    pub fn read(&mut self, input: &mut BytesMut) -> Result<bool, BodyError> {
        loop {
            match self.state {
                State::Done => return Ok(true),
                State::Length(due) => {
                    let left = self.consume(due, input);
                    self.state = if left == 0 {
                        State::Done
                    } else {
                        State::Length(left)
                    };
                    if left > 0 {
                        return Ok(false);
                    }
                }
                State::Chunked(c) => {
                    if !self.chunked(c, input)? {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// One step of the chunked decoder; `Ok(false)` when it needs input.
    fn chunked(&mut self, step: Chunked, input: &mut BytesMut) -> Result<bool, BodyError> {
        match step {
            Chunked::Size => {
                let Some(line) = take_line(input)? else {
                    return Ok(false);
                };
                let digits = line[..]
                    .split(|&b| b == b';')
                    .next()
                    .unwrap_or_default()
                    .trim_ascii_end();
                if digits.is_empty()
                    || digits.len() > 15
                    || !digits.iter().all(u8::is_ascii_hexdigit)
                {
                    return Err(BodyError::Malformed("bad chunk size"));
                }
                let size = digits.iter().fold(0u64, |n, &d| {
                    n * 16 + (d as char).to_digit(16).unwrap_or(0) as u64
                });
                if self.received + size > self.max_body as u64 {
                    return Err(BodyError::TooLarge(self.max_body));
                }
                self.state = State::Chunked(if size == 0 {
                    Chunked::Trailers
                } else {
                    Chunked::Data(size)
                });
            }
            Chunked::Data(due) => {
                if input.is_empty() {
                    return Ok(false);
                }
                let left = self.consume(due, input);
                self.state = State::Chunked(if left == 0 {
                    Chunked::DataEnd
                } else {
                    Chunked::Data(left)
                });
            }
            Chunked::DataEnd => {
                if input.len() < 2 {
                    return Ok(false);
                }
                if &input[..2] != b"\r\n" {
                    return Err(BodyError::Malformed("chunk data not followed by CRLF"));
                }
                input.advance(2);
                self.state = State::Chunked(Chunked::Size);
            }
            Chunked::Trailers => {
                let Some(line) = take_line(input)? else {
                    return Ok(false);
                };
                if line.is_empty() {
                    self.state = State::Done;
                } else {
                    self.trailer_bytes += line.len() + 2;
                    if self.trailer_bytes > MAX_LINE * 4 {
                        return Err(BodyError::Malformed("trailers too long"));
                    }
                }
            }
        }
        Ok(true)
    }

    /// The body read so far (all of it once `read` returned `Ok(true)`).
    pub fn take(&mut self) -> bytes::Bytes {
        std::mem::take(&mut self.body).freeze()
    }
}

/// Takes one CRLF-terminated line (without the CRLF) from `input`.
fn take_line(input: &mut BytesMut) -> Result<Option<BytesMut>, BodyError> {
    match memchr::memchr(b'\n', input) {
        Some(i) => {
            if i == 0 || input[i - 1] != b'\r' {
                return Err(BodyError::Malformed("bare LF line end"));
            }
            if i > MAX_LINE {
                return Err(BodyError::Malformed("line too long"));
            }
            let mut line = input.split_to(i + 1);
            line.truncate(i - 1);
            Ok(Some(line))
        }
        None if input.len() > MAX_LINE => Err(BodyError::Malformed("line too long")),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testing::every_chunking;

    fn read_all(
        framing: BodyFraming,
        max: usize,
        chunks: &[&[u8]],
    ) -> Result<(Vec<u8>, Vec<u8>), BodyError> {
        let mut reader = BodyReader::new(framing, max)?;
        let mut input = BytesMut::new();
        for c in chunks {
            input.extend_from_slice(c);
            if reader.read(&mut input)? {
                return Ok((reader.take().to_vec(), input.to_vec()));
            }
        }
        Err(BodyError::Malformed("incomplete (test)"))
    }

    #[test]
    fn a_chunked_body_decodes_in_every_chunking_and_leaves_what_follows() {
        let wire = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\nGET";
        every_chunking(wire, |chunks| {
            let mut reader = BodyReader::new(BodyFraming::Chunked, 1024).unwrap();
            let mut input = BytesMut::new();
            let mut done = false;
            for c in chunks {
                input.extend_from_slice(c);
                if !done {
                    done = reader.read(&mut input).unwrap();
                }
            }
            assert!(done);
            assert_eq!(&reader.take()[..], b"hello, world");
            assert_eq!(&input[..], b"GET");
        });
    }

    #[test]
    fn a_discarding_reader_frames_the_same_and_keeps_nothing() {
        let wire = b"5\r\nhello\r\n0\r\n\r\nNEXT";
        let mut reader = BodyReader::discarding(BodyFraming::Chunked, 1024).unwrap();
        let mut input = BytesMut::from(&wire[..]);
        assert_eq!(reader.read(&mut input), Ok(true));
        assert!(reader.take().is_empty());
        assert_eq!(&input[..], b"NEXT");
        let mut reader = BodyReader::discarding(BodyFraming::Chunked, 4).unwrap();
        let mut input = BytesMut::from(&b"5\r\nhello\r\n"[..]);
        assert_eq!(reader.read(&mut input), Err(BodyError::TooLarge(4)));
    }

    #[test]
    fn a_length_body_takes_exactly_its_bytes() {
        let (body, rest) = read_all(BodyFraming::Length(5), 10, &[b"he", b"lloNEXT"]).unwrap();
        assert_eq!((&body[..], &rest[..]), (&b"hello"[..], &b"NEXT"[..]));
    }

    #[test]
    fn limits_and_malformed_chunks_are_refused() {
        assert_eq!(
            BodyReader::new(BodyFraming::Length(11), 10).unwrap_err(),
            BodyError::TooLarge(10)
        );
        let too_big = read_all(BodyFraming::Chunked, 10, &[b"6\r\nhello \r\n6\r\n"]);
        assert_eq!(too_big.unwrap_err(), BodyError::TooLarge(10));
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloXX",
            b"fffffffffffffffff\r\n",
            b"-1\r\n",
        ] {
            assert!(
                matches!(
                    read_all(BodyFraming::Chunked, 1 << 20, &[bad]),
                    Err(BodyError::Malformed(_))
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = vec![b'1'; MAX_LINE + 10];
        assert!(matches!(
            read_all(BodyFraming::Chunked, 1 << 20, &[&long]),
            Err(BodyError::Malformed(_))
        ));
    }
}
