#![no_main]
//! The WebSocket reader (frames, fragments, UTF-8, close payloads,
//! permessage-deflate under its bound) on arbitrary bytes in arbitrary
//! chunks, as a server (masked frames) and as a client. No panic; every
//! text message is UTF-8; nothing over the message limit comes out; an
//! error carries a close code a peer may be sent (or 1006 never).

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use torsion_protocols::websocket::{Assembler, Inflater, Message, Role};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let role = if flags & 1 == 0 { Role::Server } else { Role::Client };
    let inflater = (flags & 2 != 0).then(|| Inflater::new(flags & 4 != 0));
    let mut assembler = Assembler::new(role, MAX, inflater);
    let mut buf = BytesMut::new();
    let mut rest = rest;
    let chunk = usize::from(flags >> 3) + 1;
    while !rest.is_empty() {
        let n = chunk.min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match assembler.read(&mut buf) {
                Ok(Some(m)) => match m {
                    Message::Text(t) => {
                        assert!(t.len() <= MAX);
                        assert!(std::str::from_utf8(&t).is_ok(), "a text message that is not UTF-8");
                    }
                    Message::Binary(b) => assert!(b.len() <= MAX),
                    Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
                    Message::Close(c) => assert!(c.code.0 == 1005 || c.code.may_be_sent()),
                },
                Ok(None) => break,
                Err(e) => {
                    assert!(e.code.may_be_sent(), "an error with code {}", e.code.0);
                    return;
                }
            }
        }
    }
});
