//! RFC 6455 §5 frames: the header's bits, lengths and mask, read from a
//! buffer in any chunking and written around a payload without copying it.
//!
//! The reader enforces what a frame alone can break, each with the close
//! code the RFC names: reserved opcodes, reserved bits (RSV1 only where
//! `permessage-deflate` allows it, on a data frame that starts a message;
//! the assembler checks the "starts"), a control frame that is fragmented
//! or over 125 bytes, a length with its top bit set, the masking rule of
//! the role (a client's frames must be masked, a server's must not be),
//! and the frame size bound (1009).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::close_code::CloseCode;
use super::error::WsError;

/// What a frame is (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// The next piece of a fragmented message.
    Continuation,
    /// A text message (or its first piece).
    Text,
    /// A binary message (or its first piece).
    Binary,
    /// The close handshake.
    Close,
    /// A ping (answered with a pong of the same payload).
    Ping,
    /// A pong.
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: never fragmented, at most 125 bytes.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Which end of the connection reads: a server reads masked frames, a
/// client unmasked ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end that accepted the connection.
    Server,
    /// The end that opened it.
    Client,
}

/// One frame, its payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The last piece of its message.
    pub fin: bool,
    /// RSV1: the message is compressed (`permessage-deflate`).
    pub compressed: bool,
    /// What it is.
    pub opcode: Opcode,
    /// Its payload.
    pub payload: Bytes,
}

/// The longest header: 2 bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEADER: usize = 14;

/// Reads one frame off the front of `buf`: `Ok(None)` until the whole
/// frame has arrived (nothing is taken), `Err` with the close code for a
/// frame that breaks the rules. `deflate`: RSV1 may be set (the
/// extension was agreed); `max_frame`: the largest payload taken.
pub fn read_frame(
    buf: &mut BytesMut,
    role: Role,
    deflate: bool,
    max_frame: usize,
) -> Result<Option<Frame>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let fin = b0 & 0x80 != 0;
    let (rsv1, rsv23) = (b0 & 0x40 != 0, b0 & 0x30);
    let opcode = Opcode::from_bits(b0 & 0x0F)
        .ok_or_else(|| WsError::protocol(format!("reserved opcode {:#x}", b0 & 0x0F)))?;
    if rsv23 != 0 || (rsv1 && (!deflate || opcode.is_control())) {
        return Err(WsError::protocol(
            "a reserved bit is set that no extension agreed to",
        ));
    }
    let masked = b1 & 0x80 != 0;
    match role {
        Role::Server if !masked => {
            return Err(WsError::protocol("a client's frame must be masked"))
        }
        Role::Client if masked => {
            return Err(WsError::protocol("a server's frame must not be masked"))
        }
        _ => {}
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut n = [0u8; 8];
            n.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(n);
            if len >> 63 != 0 {
                return Err(WsError::protocol("a frame length with its top bit set"));
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    if opcode.is_control() {
        if !fin {
            return Err(WsError::protocol("a fragmented control frame"));
        }
        if len > 125 {
            return Err(WsError::protocol(format!(
                "a control frame of {len} bytes (at most 125)"
            )));
        }
    }
    if len > max_frame as u64 {
        return Err(WsError::new(
            CloseCode::TOO_BIG,
            format!("a frame of {len} bytes (at most {max_frame})"),
        ));
    }
    let len = len as usize;
    let mask = if masked {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    if buf.len() < at + len {
        // Room for more of it (at most 64 KiB ahead: a header's claim is
        // not an allocation), so the frame's bytes arrive in place.
        buf.reserve((at + len - buf.len()).min(64 * 1024));
        return Ok(None);
    }
    buf.advance(at);
    let mut payload = buf.split_to(len);
    if let Some(mask) = mask {
        apply_mask(&mut payload, mask, 0);
    }
    Ok(Some(Frame {
        fin,
        compressed: rsv1,
        opcode,
        payload: payload.freeze(),
    }))
}

/// XORs `data` with `mask`, as if `data` began `offset` bytes into the
/// payload (masking is its own inverse).
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mask = u32::from_ne_bytes([
        mask[offset % 4],
        mask[(offset + 1) % 4],
        mask[(offset + 2) % 4],
        mask[(offset + 3) % 4],
    ]);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let word = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ mask;
        c.copy_from_slice(&word.to_ne_bytes());
    }
    let bytes = mask.to_ne_bytes();
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= bytes[i];
    }
}

/// Writes the header of a frame of `len` payload bytes to `out`; with a
/// `mask` (a client's frame), the payload must be masked with it too.
pub fn write_header(
    out: &mut BytesMut,
    fin: bool,
    compressed: bool,
    opcode: Opcode,
    len: usize,
    mask: Option<[u8; 4]>,
) {
    let b0 = (u8::from(fin) << 7) | (u8::from(compressed) << 6) | opcode.bits();
    out.put_u8(b0);
    let m = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.put_u8(m | len as u8),
        126..=0xFFFF => {
            out.put_u8(m | 126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(m | 127);
            out.put_u64(len as u64);
        }
    }
    if let Some(mask) = mask {
        out.put_slice(&mask);
    }
}

/// A whole server frame (unmasked, final): the header, then `payload`.
pub fn server_frame(opcode: Opcode, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(MAX_HEADER + payload.len());
    write_header(&mut out, true, false, opcode, payload.len(), None);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked_frame(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let opcode = Opcode::from_bits(b0 & 0x0F).unwrap_or(Opcode::Binary);
        write_header(
            &mut out,
            b0 & 0x80 != 0,
            false,
            opcode,
            payload.len(),
            Some(mask),
        );
        out[0] = b0;
        let mut p = payload.to_vec();
        apply_mask(&mut p, mask, 0);
        out.extend_from_slice(&p);
        out.to_vec()
    }

    /// Every frame of `wire`, fed in pieces of `chunk` bytes.
    fn read_all(wire: &[u8], chunk: usize, role: Role) -> Result<Vec<Frame>, WsError> {
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(f) = read_frame(&mut buf, role, true, 1 << 20)? {
                frames.push(f);
            }
        }
        assert!(buf.is_empty(), "bytes left over: {buf:?}");
        Ok(frames)
    }

    #[test]
    fn frames_of_every_length_form_read_the_same_in_every_chunking() {
        let mut wire = Vec::new();
        let payloads: Vec<Vec<u8>> = [0usize, 1, 125, 126, 127, 65535, 65536, 70000]
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        for (i, p) in payloads.iter().enumerate() {
            wire.extend(masked_frame(0x82, p, [i as u8, 0x5A, 0xA5, 0xFF]));
        }
        for chunk in [1, 2, 3, 5, 7, 13, 64, 1000, wire.len()] {
            let frames = read_all(&wire, chunk, Role::Server).unwrap();
            assert_eq!(frames.len(), payloads.len(), "chunk {chunk}");
            for (f, p) in frames.iter().zip(&payloads) {
                assert!(f.fin && !f.compressed && f.opcode == Opcode::Binary);
                assert_eq!(&f.payload[..], &p[..], "chunk {chunk}");
            }
        }
    }

    #[test]
    fn a_server_frame_reads_unmasked_and_the_header_forms_round_trip() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let mut out = BytesMut::new();
            write_header(&mut out, false, true, Opcode::Text, len, None);
            let expected = match len {
                0..=125 => 2,
                126..=65535 => 4,
                _ => 10,
            };
            assert_eq!(out.len(), expected);
            out.extend(std::iter::repeat_n(b'x', len));
            let f = read_frame(&mut out, Role::Client, true, 1 << 20)
                .unwrap()
                .unwrap();
            assert!(!f.fin && f.compressed && f.opcode == Opcode::Text);
            assert_eq!(f.payload.len(), len);
        }
    }

    #[test]
    fn masking_at_any_offset_is_its_own_inverse() {
        let data: Vec<u8> = (0..37).collect();
        let mask = [1, 2, 3, 4];
        let mut whole = data.clone();
        apply_mask(&mut whole, mask, 0);
        // Masked in two pieces at an odd offset: the same bytes.
        let mut pieces = data.clone();
        let (a, b) = pieces.split_at_mut(5);
        apply_mask(a, mask, 0);
        apply_mask(b, mask, 5);
        assert_eq!(whole, pieces);
        apply_mask(&mut whole, mask, 0);
        assert_eq!(whole, data);
    }

    fn refusal(wire: &[u8], role: Role, deflate: bool) -> WsError {
        let mut buf = BytesMut::from(wire);
        read_frame(&mut buf, role, deflate, 1000).unwrap_err()
    }

    #[test]
    fn frames_that_break_the_rules_are_refused_with_the_rfc_code() {
        let m = [9, 9, 9, 9];
        let cases: Vec<(Vec<u8>, Role, bool, u16, &str)> = vec![
            (
                masked_frame(0x83, b"", m),
                Role::Server,
                true,
                1002,
                "reserved opcode 0x3",
            ),
            (
                masked_frame(0x8B, b"", m),
                Role::Server,
                true,
                1002,
                "reserved opcode 0xb",
            ),
            (
                masked_frame(0xA1, b"", m),
                Role::Server,
                true,
                1002,
                "reserved bit",
            ),
            (
                masked_frame(0x91, b"", m),
                Role::Server,
                true,
                1002,
                "reserved bit",
            ),
            (
                masked_frame(0xC1, b"", m),
                Role::Server,
                false,
                1002,
                "reserved bit",
            ),
            (
                masked_frame(0xC9, b"", m),
                Role::Server,
                true,
                1002,
                "reserved bit",
            ),
            (
                masked_frame(0x09, b"", m),
                Role::Server,
                true,
                1002,
                "fragmented control",
            ),
            (
                masked_frame(0x89, &[0; 126], m),
                Role::Server,
                true,
                1002,
                "126 bytes",
            ),
            (vec![0x81, 0x00], Role::Server, true, 1002, "must be masked"),
            (
                masked_frame(0x81, b"", m),
                Role::Client,
                true,
                1002,
                "must not be masked",
            ),
            (
                masked_frame(0x82, &[0; 1001], m),
                Role::Server,
                true,
                1009,
                "1001 bytes",
            ),
        ];
        for (wire, role, deflate, code, says) in cases {
            let e = refusal(&wire, role, deflate);
            assert_eq!(e.code.0, code, "{e}");
            assert!(e.to_string().contains(says), "{e} should say {says}");
        }
        let top_bit = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        let e = refusal(&top_bit, Role::Server, false);
        assert!(e.to_string().contains("top bit"), "{e}");
    }

    #[test]
    fn a_frame_not_yet_whole_takes_nothing() {
        let wire = masked_frame(0x81, b"hello", [1, 2, 3, 4]);
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(
                read_frame(&mut buf, Role::Server, false, 100).unwrap(),
                None
            );
            assert_eq!(&buf[..], &wire[..cut]);
        }
    }
}
