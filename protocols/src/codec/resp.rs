//! RESP2 requests (the Redis protocol): [`RespCodec`] frames commands —
//! arrays of bulk strings, or inline lines typed in a terminal — and
//! [`reply`] writes replies.
//!
//! Bad input is refused the way `redis-server` 7 refuses it, with its
//! messages (each becomes `-ERR Protocol error: <message>` and the
//! connection closes):
//!
//! | input | message |
//! |---|---|
//! | `*` count not a number, or over 1,048,576 | `invalid multibulk length` |
//! | an element not starting with `$` | `expected '$', got 'x'` |
//! | `$` length not a number, negative or over 512 MB | `invalid bulk length` |
//! | a count or length line over 64 KiB without its CRLF | `too big mbulk count string` / `too big bulk count string` |
//! | an inline line over 64 KiB | `too big inline request` |
//! | unbalanced quotes in an inline line | `unbalanced quotes in request` |
//!
//! `*0`/`*-1` and empty inline lines are skipped, as Redis does; like
//! Redis, the two bytes after a bulk string's content are skipped unread.
//!
//! Nothing is allocated before its bytes arrive: a command's argument list
//! grows as its elements are read (never sized from the count), and a bulk
//! string is split off the input only once all of it is there. The decoder
//! keeps its place between calls (the element count still to read, the
//! pending bulk length, how far a line was scanned), so input in any
//! chunking is read once.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Decoder, FrameError};

/// Most elements in one command (Redis 6's limit).
pub const MAX_ARRAY: i64 = 1024 * 1024;
/// Largest bulk string (`proto-max-bulk-len`): 512 MB.
pub const MAX_BULK: i64 = 512 * 1024 * 1024;
/// Longest inline command or count line (`PROTO_INLINE_MAX_SIZE`).
pub const MAX_INLINE: usize = 64 * 1024;

/// Why input is not RESP: the text after `Protocol error: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    /// Input Redis refuses with `-ERR Protocol error: <message>`.
    #[error("Protocol error: {0}")]
    Protocol(String),
    /// The stream ended inside a command.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl RespError {
    fn protocol(message: impl Into<String>) -> RespError {
        RespError::Protocol(message.into())
    }
}

/// Frames RESP2 commands; see the module docs.
#[derive(Debug, Default)]
pub struct RespCodec {
    /// Elements of the current array still to read (0: between commands).
    remaining: i64,
    /// The current element's length, once its `$` line was read.
    bulk: Option<usize>,
    args: Vec<Bytes>,
    /// How far the front line was scanned for its newline.
    scanned: usize,
}

impl RespCodec {
    /// A codec between commands.
    pub fn new() -> RespCodec {
        RespCodec::default()
    }

    /// Where the front line ends: its length without the CR LF and the
    /// bytes to consume with it; `None` when its newline has not arrived
    /// (then `too_long` if it is over the limit). Consumes nothing.
    fn line_end(
        &mut self,
        buf: &BytesMut,
        too_long: &str,
    ) -> Result<Option<(usize, usize)>, RespError> {
        let from = self.scanned.min(buf.len());
        match buf[from..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.scanned = 0;
                let end = from + i;
                let content = if end > 0 && buf[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                Ok(Some((content, end + 1)))
            }
            None if buf.len() > MAX_INLINE => Err(RespError::protocol(too_long)),
            None => {
                self.scanned = buf.len();
                Ok(None)
            }
        }
    }

    /// The number on the front line after its type byte (`*12`, `$5`),
    /// consumed; `None` when the line has not arrived.
    fn number_line(
        &mut self,
        buf: &mut BytesMut,
        too_long: &str,
    ) -> Result<Option<(u8, Option<i64>)>, RespError> {
        let Some((content, consumed)) = self.line_end(buf, too_long)? else {
            return Ok(None);
        };
        let kind = if content > 0 { buf[0] } else { b'\r' };
        let number = if content > 0 {
            parse_i64(&buf[1..content])
        } else {
            None
        };
        buf.advance(consumed);
        Ok(Some((kind, number)))
    }

    fn multibulk(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, RespError> {
        if self.remaining == 0 {
            let Some((_, count)) = self.number_line(buf, "too big mbulk count string")? else {
                return Ok(None);
            };
            match count {
                // An empty command: nothing to run.
                Some(n) if n <= 0 => return Ok(Some(Vec::new())),
                Some(n) if n <= MAX_ARRAY => self.remaining = n,
                _ => return Err(RespError::protocol("invalid multibulk length")),
            }
        }
        while self.remaining > 0 {
            let len = match self.bulk {
                Some(len) => len,
                None => {
                    let Some((kind, len)) = self.number_line(buf, "too big bulk count string")?
                    else {
                        return Ok(None);
                    };
                    if kind != b'$' {
                        let got = kind as char;
                        return Err(RespError::protocol(format!("expected '$', got '{got}'")));
                    }
                    match len {
                        Some(n) if (0..=MAX_BULK).contains(&n) => {
                            self.bulk = Some(n as usize);
                            n as usize
                        }
                        _ => return Err(RespError::protocol("invalid bulk length")),
                    }
                }
            };
            if buf.len() < len + 2 {
                return Ok(None);
            }
            let arg = buf.split_to(len).freeze();
            buf.advance(2);
            self.args.push(arg);
            self.bulk = None;
            self.remaining -= 1;
        }
        Ok(Some(std::mem::take(&mut self.args)))
    }

    fn inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, RespError> {
        let Some((content, consumed)) = self.line_end(buf, "too big inline request")? else {
            return Ok(None);
        };
        let args = split_args(&buf[..content]);
        buf.advance(consumed);
        args.map(Some)
            .ok_or_else(|| RespError::protocol("unbalanced quotes in request"))
    }
}

impl Decoder for RespCodec {
    type Item = Vec<Bytes>;
    type Error = RespError;

    /// One command's arguments (empty for a skipped empty command).
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, RespError> {
        if self.remaining > 0 || buf.first() == Some(&b'*') {
            return self.multibulk(buf);
        }
        if buf.is_empty() {
            return Ok(None);
        }
        self.inline(buf)
    }

    fn reset(&mut self) {
        *self = RespCodec::default();
    }
}

/// A whole decimal number, sign allowed, nothing else (Redis's
/// `string2ll`: no spaces, no `+`, no leading zeros but `0` itself) — how
/// Redis reads counts, lengths and numeric arguments alike.
pub fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && text.len() > 1) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        value = if negative {
            value.checked_mul(10)?.checked_sub(digit)?
        } else {
            value.checked_mul(10)?.checked_add(digit)?
        };
    }
    Some(value)
}

/// Splits an inline command as Redis's `sdssplitargs` does: words
/// separated by whitespace; "double quotes" with `\n \r \t \b \a \\ \"`
/// and `\xHH` escapes; 'single quotes' with `\'`; a closing quote must end
/// its word. `None` for unbalanced quotes.
fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == n {
            return Some(args);
        }
        let mut word = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let c = line.get(i).copied();
            if in_double {
                match c? {
                    b'\\'
                        if i + 3 < n
                            && line[i + 1] == b'x'
                            && line[i + 2].is_ascii_hexdigit()
                            && line[i + 3].is_ascii_hexdigit() =>
                    {
                        let hex = std::str::from_utf8(&line[i + 2..i + 4]).ok()?;
                        word.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 3;
                    }
                    b'\\' if i + 1 < n => {
                        i += 1;
                        word.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    b'"' => {
                        if line.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace()) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    other => word.push(other),
                }
            } else if in_single {
                match c? {
                    b'\\' if line.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        word.push(b'\'');
                    }
                    b'\'' => {
                        if line.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace()) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    other => word.push(other),
                }
            } else {
                match c {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(other) => word.push(other),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(word));
    }
}

/// Writing RESP2 replies.
pub mod reply {
    use super::*;

    /// `+text`.
    pub fn simple(out: &mut BytesMut, text: &str) {
        out.reserve(text.len() + 3);
        out.put_u8(b'+');
        out.put_slice(text.as_bytes());
        out.put_slice(b"\r\n");
    }

    /// `-text` (text starts with the error code, e.g. `ERR syntax error`).
    pub fn error(out: &mut BytesMut, text: &str) {
        out.reserve(text.len() + 3);
        out.put_u8(b'-');
        out.put_slice(text.as_bytes());
        out.put_slice(b"\r\n");
    }

    /// `:n`.
    pub fn integer(out: &mut BytesMut, n: i64) {
        out.put_u8(b':');
        out.put_slice(itoa::Buffer::new().format(n).as_bytes());
        out.put_slice(b"\r\n");
    }

    /// `$len` and the bytes, or `$-1` for none.
    pub fn bulk(out: &mut BytesMut, value: Option<&[u8]>) {
        match value {
            None => out.put_slice(b"$-1\r\n"),
            Some(v) => {
                out.reserve(v.len() + 16);
                out.put_u8(b'$');
                out.put_slice(itoa::Buffer::new().format(v.len()).as_bytes());
                out.put_slice(b"\r\n");
                out.put_slice(v);
                out.put_slice(b"\r\n");
            }
        }
    }

    /// `*n`: an array of `n` replies follows.
    pub fn array(out: &mut BytesMut, n: usize) {
        out.put_u8(b'*');
        out.put_slice(itoa::Buffer::new().format(n).as_bytes());
        out.put_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testing::every_chunking;

    fn strs(args: &[Bytes]) -> Vec<&str> {
        args.iter()
            .map(|a| std::str::from_utf8(a).unwrap())
            .collect()
    }

    #[test]
    fn commands_in_every_chunking() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhe\r\nl\r\nPING\r\n*0\r\nget  \"a b\\x41\" 'c\\'d'\n*1\r\n$0\r\n\r\n";
        every_chunking(input, |chunks| {
            let mut codec = RespCodec::new();
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            for chunk in chunks {
                buf.extend_from_slice(chunk);
                while let Some(frame) = codec.decode(&mut buf).unwrap() {
                    frames.push(frame);
                }
            }
            let frames: Vec<Vec<&str>> = frames.iter().map(|f| strs(f)).collect();
            assert_eq!(
                frames,
                vec![
                    vec!["SET", "k", "he\r\nl"],
                    vec!["PING"],
                    vec![],
                    vec!["get", "a bA", "c'd"],
                    vec![""],
                ]
            );
        });
    }

    fn refused(input: &[u8]) -> String {
        let mut codec = RespCodec::new();
        let mut buf = BytesMut::from(input);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("{input:?} accepted"),
                Err(RespError::Protocol(m)) => return m,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn bad_input_gets_redis_messages() {
        assert_eq!(refused(b"*x\r\n"), "invalid multibulk length");
        assert_eq!(refused(b"*1048577\r\n"), "invalid multibulk length");
        assert_eq!(refused(b"*1\r\n+x\r\n"), "expected '$', got '+'");
        assert_eq!(refused(b"*1\r\n$-1\r\n"), "invalid bulk length");
        assert_eq!(refused(b"*1\r\n$536870913\r\n"), "invalid bulk length");
        assert_eq!(refused(b"*1\r\n$1x\r\n"), "invalid bulk length");
        assert_eq!(
            refused(b"*1\r\n$99999999999999999999\r\n"),
            "invalid bulk length"
        );
        assert_eq!(refused(b"get \"a\n"), "unbalanced quotes in request");
        assert_eq!(refused(b"get \"a\"b\n"), "unbalanced quotes in request");
        assert_eq!(
            refused(&[b'*'; MAX_INLINE + 1]),
            "too big mbulk count string"
        );
        assert_eq!(refused(&[b'a'; MAX_INLINE + 1]), "too big inline request");
        let mut big = b"*1\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'$', MAX_INLINE + 1));
        assert_eq!(refused(&big), "too big bulk count string");
    }

    #[test]
    fn a_huge_declared_length_allocates_nothing_before_its_bytes() {
        let mut codec = RespCodec::new();
        let mut buf = BytesMut::from(&b"*1048576\r\n$536870912\r\nabc"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert_eq!(
            codec.args.capacity(),
            0,
            "no room made for a million elements"
        );
        assert_eq!(codec.bulk, Some(536870912));
    }

    #[test]
    fn replies() {
        let mut out = BytesMut::new();
        reply::simple(&mut out, "OK");
        reply::error(&mut out, "ERR syntax error");
        reply::integer(&mut out, -2);
        reply::bulk(&mut out, Some(b"v"));
        reply::bulk(&mut out, None);
        reply::array(&mut out, 2);
        assert_eq!(
            &out[..],
            b"+OK\r\n-ERR syntax error\r\n:-2\r\n$1\r\nv\r\n$-1\r\n*2\r\n"
        );
    }
}
