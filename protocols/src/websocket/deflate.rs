//! `permessage-deflate` (RFC 7692): the offer and answer in the handshake,
//! and each message compressed (raw DEFLATE, the trailing `00 00 ff ff`
//! taken off) or inflated, with a bound on what one message may inflate to.
//!
//! This end compresses with a 32 KiB window (15 bits), so an offer that
//! asks the server for a smaller one (`server_max_window_bits` < 15) is
//! declined and the connection runs uncompressed, as §7.1.2.2 allows; it
//! inflates whatever window the peer uses. Context takeover is kept unless
//! either side asks for `*_no_context_takeover`, which resets that side's
//! state after every message.

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::close_code::CloseCode;
use super::error::WsError;

/// What the two ends agreed for `permessage-deflate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeflateParams {
    /// The server starts every message afresh.
    pub server_no_context_takeover: bool,
    /// The client starts every message afresh.
    pub client_no_context_takeover: bool,
    /// The client asked for `server_max_window_bits=15` (the server's
    /// window, which this end always uses): the answer says so back.
    pub server_max_window_bits: bool,
}

impl DeflateParams {
    /// The server's answer to the first offer in `offers` (a
    /// `Sec-WebSocket-Extensions` value) that it can take, if any.
    pub fn accept_offer(offers: &str) -> Option<DeflateParams> {
        offers.split(',').find_map(|offer| {
            let mut parts = offer.split(';').map(str::trim);
            if parts.next()? != "permessage-deflate" {
                return None;
            }
            let mut params = DeflateParams::default();
            let mut seen = Vec::new();
            for p in parts {
                let (name, value) = match p.split_once('=') {
                    Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                    None => (p, None),
                };
                if seen.contains(&name) {
                    return None; // a parameter twice: the offer is invalid
                }
                seen.push(name);
                match (name, value) {
                    ("server_no_context_takeover", None) => {
                        params.server_no_context_takeover = true
                    }
                    ("client_no_context_takeover", None) => {
                        params.client_no_context_takeover = true
                    }
                    // The client's window: inflating takes any.
                    ("client_max_window_bits", None) => {}
                    ("client_max_window_bits", Some(v)) if window_bits(v).is_some() => {}
                    ("server_max_window_bits", Some(v)) if window_bits(v) == Some(15) => {
                        params.server_max_window_bits = true
                    }
                    _ => return None,
                }
            }
            Some(params)
        })
    }

    /// The `Sec-WebSocket-Extensions` value of the server's answer.
    pub fn answer(&self) -> String {
        let mut s = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits {
            s.push_str("; server_max_window_bits=15");
        }
        s
    }

    /// A client's offer (what it sends): no `client_max_window_bits`, so
    /// the server may not ask this end, which compresses with 15 bits, for
    /// a smaller window.
    pub fn offer() -> &'static str {
        "permessage-deflate"
    }

    /// Reads a server's answer to [`DeflateParams::offer`]; `Err` when it
    /// agreed to something not offered.
    pub fn from_answer(answer: &str) -> Result<DeflateParams, String> {
        let mut parts = answer.split(';').map(str::trim);
        if parts.next() != Some("permessage-deflate") {
            return Err(format!("an extension that was not offered: {answer}"));
        }
        let mut params = DeflateParams::default();
        for p in parts {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (p, None),
            };
            match (name, value) {
                ("server_no_context_takeover", None) => params.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => params.client_no_context_takeover = true,
                ("server_max_window_bits", Some(v)) if window_bits(v).is_some() => {}
                _ => return Err(format!("a permessage-deflate parameter not offered: {p}")),
            }
        }
        Ok(params)
    }
}

fn window_bits(v: &str) -> Option<u8> {
    let n: u8 = v.parse().ok()?;
    (8..=15).contains(&n).then_some(n)
}

/// The tail every flushed DEFLATE block ends with, left off the wire.
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// One direction's compressor.
pub struct Deflater {
    compress: Compress,
    reset_each: bool,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor; `reset_each`: no context takeover.
    pub fn new(reset_each: bool) -> Deflater {
        Deflater {
            compress: Compress::new(Compression::fast(), false),
            reset_each,
        }
    }

    /// `message` compressed, as a message's payload.
    pub fn compress(&mut self, message: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(message.len() / 2 + 64);
        let mut input = message;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before = self.compress.total_in();
            // A sync flush ends the block on a byte boundary, with the
            // tail; compressing into memory cannot fail.
            let _ = self
                .compress
                .compress_vec(input, &mut out, FlushCompress::Sync);
            input = &input[(self.compress.total_in() - before) as usize..];
            // Room left over: the flush is complete.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.reset_each {
            self.compress.reset();
        }
        Bytes::from(out)
    }
}

/// One direction's decompressor, bounded.
pub struct Inflater {
    decompress: Decompress,
    reset_each: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Inflater {
    /// A decompressor; `reset_each`: the peer keeps no context.
    pub fn new(reset_each: bool) -> Inflater {
        Inflater {
            decompress: Decompress::new(false),
            reset_each,
        }
    }

    /// A compressed message's payload (its pieces in order) inflated, at
    /// most `max` bytes: more is refused with 1009 as soon as it shows (a
    /// deflate bomb is never inflated whole), a broken stream with 1007.
    pub fn inflate(&mut self, pieces: &[Bytes], max: usize) -> Result<BytesMut, WsError> {
        let broken = |why: String| WsError::new(CloseCode::INVALID_DATA, why);
        let mut out: Vec<u8> = Vec::new();
        let mut ended = false;
        let tail = Bytes::from_static(&TAIL);
        for (n, piece) in pieces.iter().chain(std::iter::once(&tail)).enumerate() {
            let ours = n == pieces.len();
            let mut input = &piece[..];
            while !ended {
                if out.len() > max {
                    return Err(too_big(max));
                }
                if out.capacity() - out.len() < 4096 {
                    // Grow in steps, never far past the bound.
                    out.reserve((max + 1 - out.len()).clamp(4096, 64 * 1024));
                }
                let (in_before, out_before) = (self.decompress.total_in(), out.len());
                let status = self
                    .decompress
                    .decompress_vec(input, &mut out, FlushDecompress::Sync)
                    .map_err(|e| {
                        broken(format!("a compressed message that does not inflate: {e}"))
                    })?;
                let used = (self.decompress.total_in() - in_before) as usize;
                let produced = out.len() - out_before;
                input = &input[used..];
                if status == Status::StreamEnd {
                    // The peer ended its stream (BFINAL): the next message
                    // starts a new one; only our own tail may follow.
                    self.decompress.reset(false);
                    ended = true;
                } else if input.is_empty() && produced == 0 {
                    break;
                } else if used == 0 && produced == 0 {
                    return Err(broken("a compressed message that stops inflating".into()));
                }
            }
            if ended && !input.is_empty() && !ours {
                return Err(broken("bytes after the end of a compressed stream".into()));
            }
        }
        if out.len() > max {
            return Err(too_big(max));
        }
        if self.reset_each && !ended {
            self.decompress.reset(false);
        }
        Ok(BytesMut::from(&out[..]))
    }
}

fn too_big(max: usize) -> WsError {
    WsError::new(
        CloseCode::TOO_BIG,
        format!("a compressed message that inflates to over {max} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_answered_or_declined_as_rfc_7692_says() {
        let p = DeflateParams::accept_offer("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(p, DeflateParams::default());
        assert_eq!(p.answer(), "permessage-deflate");
        let p = DeflateParams::accept_offer(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        )
        .unwrap();
        assert_eq!(
            p.answer(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        // A smaller server window than 15 bits: this offer declined, the
        // next one taken.
        let p = DeflateParams::accept_offer(
            "permessage-deflate; server_max_window_bits=10, permessage-deflate",
        );
        assert_eq!(p, Some(DeflateParams::default()));
        // Asked for the window it uses anyway: accepted, and said back.
        let p =
            DeflateParams::accept_offer("permessage-deflate; server_max_window_bits=15").unwrap();
        assert_eq!(p.answer(), "permessage-deflate; server_max_window_bits=15");
        // A client that offered no client_max_window_bits refuses an
        // answer that sets it.
        assert!(
            DeflateParams::from_answer("permessage-deflate; client_max_window_bits=10").is_err()
        );
        for bad in [
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(DeflateParams::accept_offer(bad), None, "{bad}");
        }
    }

    #[test]
    fn messages_round_trip_with_and_without_context_takeover() {
        for reset in [false, true] {
            let (mut d, mut i) = (Deflater::new(reset), Inflater::new(reset));
            for n in 0..5 {
                let msg: Vec<u8> = format!("hello hello hello {n} ").repeat(50).into_bytes();
                let packed = d.compress(&msg);
                assert!(packed.len() < msg.len() / 4, "{}", packed.len());
                let back = i.inflate(&[packed], 1 << 20).unwrap();
                assert_eq!(&back[..], &msg[..]);
            }
            // The empty message.
            let packed = d.compress(b"");
            assert!(i.inflate(&[packed], 10).unwrap().is_empty());
        }
    }

    #[test]
    fn the_pieces_of_a_fragmented_message_inflate_in_any_split() {
        let msg = b"fragmented and compressed, split anywhere at all".repeat(20);
        let packed = Deflater::new(false).compress(&msg);
        for cut in 0..packed.len() {
            let pieces = [packed.slice(..cut), packed.slice(cut..)];
            let back = Inflater::new(false).inflate(&pieces, 1 << 20).unwrap();
            assert_eq!(&back[..], &msg[..], "cut {cut}");
        }
    }

    #[test]
    fn a_deflate_bomb_is_refused_without_inflating_it_whole() {
        let bomb = Deflater::new(false).compress(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 512 << 10, "{}", bomb.len()); // over 100:1
        let e = Inflater::new(false).inflate(&[bomb], 1 << 20).unwrap_err();
        assert_eq!(e.code, CloseCode::TOO_BIG);
        let e = Inflater::new(false)
            .inflate(&[Bytes::from_static(b"\xff\xff\xff")], 1 << 20)
            .unwrap_err();
        assert_eq!(e.code, CloseCode::INVALID_DATA, "{e}");
    }
}
