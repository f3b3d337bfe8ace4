//! Line framing (Twisted's `LineReceiver` framing).
//!
//! Lines end with a delimiter: `\r\n` by default (Twisted's), `\n` with an
//! optional `\r` before it ([`LineCodec::lf_or_crlf`]), or any non-empty
//! byte string. Frames are the lines without their delimiter.
//!
//! `max_length` (default 16384, Twisted's `MAX_LENGTH`) bounds a line without
//! its delimiter. A line of exactly `max_length` bytes is accepted however it
//! is split across reads, even when a read ends between the `\r` and the
//! `\n` (Twisted bug #6556); one byte more is [`FrameError::LineTooLong`].
//! After that error the codec discards input up to the next delimiter and
//! carries on, so a handler that chooses to keep the connection gets the
//! following lines intact.
//!
//! Scanning is linear: the codec remembers how far it has searched, looks
//! only for the delimiter's last byte (with `memchr`) and checks the few
//! bytes before a hit, so no byte is scanned twice.
//!
//! A `\r\n` codec that meets a bare `\n` (what `nc`, `echo` and most
//! scripts send) keeps it in the line, as Twisted does, and says so in the
//! log, so a server that seems to ignore its input explains itself: once
//! per thread at `warn` (naming [`LineCodec::lf_or_crlf`], which accepts
//! both), then once per connection at `debug`.

use bytes::{Buf, Bytes, BytesMut};

use super::{Decoder, Encoder, FrameError, MAX_HEADER};

/// Twisted's `LineReceiver.MAX_LENGTH`.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 16384;

/// What ends a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineDelimiter {
    /// `\r\n` only; a lone `\n` is part of the line (Twisted's default).
    CrLf,
    /// `\n`, with an optional `\r` before it that is not part of the line.
    /// Lines are sent with `\r\n`.
    LfOrCrLf,
    /// Any other non-empty byte string.
    Custom(Bytes),
}

/// Decodes and encodes delimited lines.
#[derive(Debug, Clone)]
pub struct LineCodec {
    delimiter: LineDelimiter,
    max_length: usize,
    /// Bytes at the front of the buffer already searched for the delimiter.
    scanned: usize,
    /// Skipping the rest of an over-long line.
    discarding: bool,
    /// A bare `\n` in a `\r\n` stream was reported (once per codec).
    bare_lf_reported: bool,
    #[cfg(test)]
    examined: usize,
}

impl Default for LineCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl LineCodec {
    /// `\r\n` lines of at most 16384 bytes.
    pub fn new() -> LineCodec {
        Self::with(LineDelimiter::CrLf)
    }

    /// `\n` or `\r\n` lines (sent as `\r\n`) of at most 16384 bytes.
    pub fn lf_or_crlf() -> LineCodec {
        Self::with(LineDelimiter::LfOrCrLf)
    }

    /// Lines ending with `delimiter`.
    pub fn with_delimiter(delimiter: &[u8]) -> Result<LineCodec, FrameError> {
        match delimiter {
            [] => Err(FrameError::EmptyDelimiter),
            b"\r\n" => Ok(Self::new()),
            d => Ok(Self::with(LineDelimiter::Custom(Bytes::copy_from_slice(d)))),
        }
    }

    fn with(delimiter: LineDelimiter) -> LineCodec {
        LineCodec {
            delimiter,
            max_length: DEFAULT_MAX_LINE_LENGTH,
            scanned: 0,
            discarding: false,
            bare_lf_reported: false,
            #[cfg(test)]
            examined: 0,
        }
    }

    /// Sets the longest accepted line (without its delimiter).
    pub fn max_length(mut self, max_length: usize) -> LineCodec {
        self.max_length = max_length;
        self
    }

    /// The longest accepted line.
    pub fn limit(&self) -> usize {
        self.max_length
    }

    /// The delimiter lines are sent with.
    pub fn delimiter(&self) -> &[u8] {
        match &self.delimiter {
            LineDelimiter::CrLf | LineDelimiter::LfOrCrLf => b"\r\n",
            LineDelimiter::Custom(d) => d,
        }
    }

    /// The byte every delimiter ends with (what the scan looks for).
    fn last_byte(&self) -> u8 {
        match &self.delimiter {
            LineDelimiter::CrLf | LineDelimiter::LfOrCrLf => b'\n',
            LineDelimiter::Custom(d) => d[d.len() - 1],
        }
    }

    /// For a hit of the last byte at `p`: the line's end and the frame's
    /// end, or `None` if the bytes before `p` do not complete a delimiter.
    fn match_at(&self, buf: &[u8], p: usize) -> Option<(usize, usize)> {
        match &self.delimiter {
            LineDelimiter::CrLf => (p >= 1 && buf[p - 1] == b'\r').then(|| (p - 1, p + 1)),
            LineDelimiter::LfOrCrLf => {
                let end = if p >= 1 && buf[p - 1] == b'\r' {
                    p - 1
                } else {
                    p
                };
                Some((end, p + 1))
            }
            LineDelimiter::Custom(d) => {
                let start = (p + 1).checked_sub(d.len())?;
                (&buf[start..=p] == d.as_ref()).then_some((start, p + 1))
            }
        }
    }

    /// How many bytes at the end of `buf` may be the start of a delimiter.
    fn partial_delimiter_len(&self) -> usize {
        match &self.delimiter {
            LineDelimiter::CrLf | LineDelimiter::LfOrCrLf => 1,
            LineDelimiter::Custom(d) => d.len() - 1,
        }
    }

    /// True if `tail` (the bytes past `max_length`) could still be the start
    /// of the delimiter, so the line may yet be exactly `max_length` long.
    fn tail_may_be_delimiter(&self, tail: &[u8]) -> bool {
        match &self.delimiter {
            LineDelimiter::CrLf | LineDelimiter::LfOrCrLf => tail == b"\r",
            LineDelimiter::Custom(d) => tail.len() < d.len() && d.starts_with(tail),
        }
    }
}

thread_local! {
    /// Whether this thread has logged the bare-`\n` warning yet.
    static BARE_LF_WARNED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Says that a `\r\n` codec met a bare `\n`: at `warn` the first time on
/// this thread, at `debug` after that.
#[cold]
fn report_bare_lf() {
    if BARE_LF_WARNED.with(|w| w.replace(true)) {
        tracing::debug!("a line holds a bare \\n, which this \\r\\n line codec keeps in the line");
    } else {
        tracing::warn!(
            "a line holds a bare \\n: this line codec ends lines with \\r\\n only (Twisted's \
             default), so the \\n stays in the line and no line ends there; to accept \\n as well, \
             frame with LineCodec::lf_or_crlf() (LineReceiver::lf_or_crlf(handler)); \
             later connections that do the same are logged at debug level"
        );
    }
}

impl Decoder for LineCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn reset(&mut self) {
        self.scanned = 0;
        self.discarding = false;
    }

    /// The last line without its delimiter is [`FrameError::Truncated`]
    /// (Twisted drops it); the rest of an over-long line being skipped ends
    /// quietly (its error was already reported).
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(buf)? {
            Some(line) => Ok(Some(line)),
            None if buf.is_empty() || self.discarding => {
                buf.clear();
                self.reset();
                Ok(None)
            }
            None => {
                let remaining = buf.len();
                buf.clear();
                self.reset();
                Err(FrameError::Truncated { remaining })
            }
        }
    }

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let needle = self.last_byte();
        loop {
            let from = self.scanned.min(buf.len());
            let hit = memchr::memchr(needle, &buf[from..]).map(|i| from + i);
            #[cfg(test)]
            {
                self.examined += hit.map_or(buf.len(), |p| p + 1) - from;
            }
            match hit {
                Some(p) => {
                    let Some((line_end, frame_end)) = self.match_at(buf, p) else {
                        // The last byte alone, not a delimiter: keep going.
                        if self.delimiter == LineDelimiter::CrLf && !self.bare_lf_reported {
                            self.bare_lf_reported = true;
                            report_bare_lf();
                        }
                        self.scanned = p + 1;
                        continue;
                    };
                    self.scanned = 0;
                    if self.discarding {
                        self.discarding = false;
                        buf.advance(frame_end);
                        continue;
                    }
                    if line_end > self.max_length {
                        buf.advance(frame_end);
                        return Err(FrameError::LineTooLong {
                            limit: self.max_length,
                        });
                    }
                    let mut frame = buf.split_to(frame_end);
                    frame.truncate(line_end);
                    return Ok(Some(frame.freeze()));
                }
                None => {
                    let keep = self.partial_delimiter_len().min(buf.len());
                    if self.discarding {
                        // Keep only what may start the delimiter.
                        buf.advance(buf.len() - keep);
                        self.scanned = buf.len();
                        return Ok(None);
                    }
                    if buf.len() > self.max_length
                        && !self.tail_may_be_delimiter(&buf[self.max_length..])
                    {
                        buf.advance(buf.len() - keep);
                        self.scanned = buf.len();
                        self.discarding = true;
                        return Err(FrameError::LineTooLong {
                            limit: self.max_length,
                        });
                    }
                    self.scanned = buf.len();
                    return Ok(None);
                }
            }
        }
    }
}

impl Encoder for LineCodec {
    fn header(&self, _len: usize, _header: &mut [u8; MAX_HEADER]) -> Result<usize, FrameError> {
        Ok(0)
    }

    fn trailer(&self) -> &[u8] {
        self.delimiter()
    }

    fn check_payload(&self, payload: &[u8]) -> Result<(), FrameError> {
        let found = match &self.delimiter {
            LineDelimiter::CrLf => memchr::memmem::find(payload, b"\r\n").is_some(),
            LineDelimiter::LfOrCrLf => memchr::memchr(b'\n', payload).is_some(),
            LineDelimiter::Custom(d) => memchr::memmem::find(payload, d).is_some(),
        };
        if found {
            Err(FrameError::DelimiterInPayload)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testing::{decode_all, every_chunking};
    use proptest::prelude::*;

    fn lines(codec: &LineCodec, input: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
        decode_all(codec.clone(), &[input])
    }

    #[test]
    fn splits_crlf_lines_and_keeps_lone_lf() {
        let got = lines(&LineCodec::new(), b"a\r\nb\nc\r\n\r\n");
        assert_eq!(
            got,
            vec![Ok(b"a".to_vec()), Ok(b"b\nc".to_vec()), Ok(vec![])]
        );
    }

    /// Log lines written while `f` runs on this thread.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone)]
        struct Sink(std::sync::mpsc::Sender<Vec<u8>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                // Err: the test stopped reading the log.
                let _ = self.0.send(b.to_vec());
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Sink(tx);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(rx.try_iter().flatten().collect()).unwrap()
    }

    #[test]
    fn a_bare_lf_in_a_crlf_stream_is_reported_once_per_connection() {
        // Its own thread: the warning is once per thread.
        let log = std::thread::spawn(|| {
            logged(|| {
                let mut first = LineCodec::new();
                let mut buf = BytesMut::from(&b"GET x\nGET y\n"[..]);
                assert_eq!(first.decode(&mut buf), Ok(None), "no line ends at \\n");
                let mut second = LineCodec::new();
                let mut buf = BytesMut::from(&b"ping\n"[..]);
                assert_eq!(second.decode(&mut buf), Ok(None));
                // Accepting both: nothing to report.
                let mut relaxed = LineCodec::lf_or_crlf();
                let mut buf = BytesMut::from(&b"ping\n"[..]);
                assert_eq!(
                    relaxed.decode(&mut buf),
                    Ok(Some(Bytes::from_static(b"ping")))
                );
            })
        })
        .join()
        .unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "one per connection: {log}");
        assert!(
            lines[0].contains("WARN") && lines[0].contains("LineCodec::lf_or_crlf()"),
            "{log}"
        );
        assert!(lines[1].contains("DEBUG"), "{log}");
    }

    #[test]
    fn lf_or_crlf_accepts_both_and_strips_cr() {
        let got = lines(&LineCodec::lf_or_crlf(), b"a\r\nb\n\nc\r\r\n");
        assert_eq!(
            got,
            vec![
                Ok(b"a".to_vec()),
                Ok(b"b".to_vec()),
                Ok(vec![]),
                Ok(b"c\r".to_vec())
            ]
        );
    }

    #[test]
    fn custom_delimiters_work_across_any_split() {
        let codec = LineCodec::with_delimiter(b"<END>").unwrap();
        let input = b"one<END>t<EN>wo<END><END>x<E";
        every_chunking(input, |chunks| {
            let got = decode_all(codec.clone(), chunks);
            assert_eq!(
                got,
                vec![Ok(b"one".to_vec()), Ok(b"t<EN>wo".to_vec()), Ok(vec![])]
            );
        });
        assert_eq!(
            LineCodec::with_delimiter(b"").unwrap_err(),
            FrameError::EmptyDelimiter
        );
    }

    #[test]
    fn every_chunking_gives_the_same_lines() {
        let input = b"hello\r\nworld\r\n\r\nlast line\r\npartial";
        for codec in [LineCodec::new(), LineCodec::lf_or_crlf()] {
            let whole = lines(&codec, input);
            assert_eq!(whole.len(), 4);
            every_chunking(input, |chunks| {
                assert_eq!(decode_all(codec.clone(), chunks), whole, "{chunks:?}");
            });
        }
    }

    /// A codec of each kind of delimiter, lines of at most `max` bytes.
    fn every_delimiter(max: usize) -> [LineCodec; 3] {
        [
            LineCodec::new().max_length(max),
            LineCodec::lf_or_crlf().max_length(max),
            LineCodec::with_delimiter(b"<>").unwrap().max_length(max),
        ]
    }

    #[test]
    fn exactly_max_length_is_accepted_however_split() {
        let max = 10;
        for codec in every_delimiter(max) {
            let mut input = vec![b'x'; max];
            input.extend_from_slice(codec.delimiter());
            every_chunking(&input, |chunks| {
                assert_eq!(
                    decode_all(codec.clone(), chunks),
                    vec![Ok(vec![b'x'; max])],
                    "{chunks:?}"
                );
            });
        }
    }

    #[test]
    fn one_byte_over_max_length_is_an_error_however_split() {
        let max = 10;
        for codec in every_delimiter(max) {
            let mut input = vec![b'x'; max + 1];
            input.extend_from_slice(codec.delimiter());
            input.extend_from_slice(b"next");
            input.extend_from_slice(codec.delimiter());
            every_chunking(&input, |chunks| {
                let got = decode_all(codec.clone(), chunks);
                assert_eq!(
                    got,
                    vec![
                        Err(FrameError::LineTooLong { limit: max }),
                        Ok(b"next".to_vec())
                    ],
                    "{chunks:?}"
                );
            });
        }
    }

    #[test]
    fn an_over_long_line_without_delimiter_fails_early_and_resyncs() {
        let mut codec = LineCodec::new().max_length(4);
        let mut buf = BytesMut::from(&b"abcdefgh"[..]);
        assert_eq!(
            codec.decode(&mut buf),
            Err(FrameError::LineTooLong { limit: 4 })
        );
        assert!(buf.len() <= 1, "the over-long line is not buffered");
        buf.extend_from_slice(b"ijk\r");
        assert_eq!(codec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"\nok\r\n");
        assert_eq!(codec.decode(&mut buf), Ok(Some(Bytes::from_static(b"ok"))));
    }

    #[test]
    fn scanning_is_linear_in_the_input() {
        // A 200 KB line fed one byte at a time: a rescanning decoder examines
        // ~n²/2 = 2e10 bytes; a linear one examines each byte once.
        let n = 200_000;
        let mut codec = LineCodec::new().max_length(n);
        let mut buf = BytesMut::new();
        for _ in 0..n {
            buf.extend_from_slice(b"y");
            assert_eq!(codec.decode(&mut buf), Ok(None));
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap().len(), n);
        assert!(codec.examined <= n + 2, "examined {} bytes", codec.examined);
    }

    #[test]
    fn encoding_appends_the_delimiter_and_refuses_embedded_ones() {
        let mut dst = BytesMut::new();
        LineCodec::new().encode(b"hi", &mut dst).unwrap();
        LineCodec::lf_or_crlf().encode(b"", &mut dst).unwrap();
        assert_eq!(&dst[..], b"hi\r\n\r\n");
        assert_eq!(
            LineCodec::new().encode(b"a\r\nb", &mut dst),
            Err(FrameError::DelimiterInPayload)
        );
        assert_eq!(
            LineCodec::lf_or_crlf().encode(b"a\nb", &mut dst),
            Err(FrameError::DelimiterInPayload)
        );
        // A lone \n is fine in CRLF mode.
        LineCodec::new().encode(b"a\nb", &mut dst).unwrap();
    }

    proptest! {
        #[test]
        fn round_trips_arbitrary_lines_at_arbitrary_splits(
            raw_lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
            splits in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let codec = LineCodec::new();
            // Lines must not contain the delimiter.
            let lines: Vec<Vec<u8>> = raw_lines
                .into_iter()
                .filter(|l| codec.check_payload(l).is_ok() && !l.ends_with(b"\r"))
                .collect();
            let got = crate::codec::testing::round_trip(&codec, &lines, &splits);
            let want: Vec<Result<Vec<u8>, FrameError>> = lines.into_iter().map(Ok).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_chunking_never_matters(
            input in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), any::<u8>()], 0..200),
            splits in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            for codec in [LineCodec::new().max_length(8), LineCodec::lf_or_crlf().max_length(8)] {
                let whole = decode_all(codec.clone(), &[&input]);
                let chunks = crate::codec::testing::split_at_points(&input, &splits);
                prop_assert_eq!(decode_all(codec.clone(), &chunks), whole);
            }
        }
    }
}
