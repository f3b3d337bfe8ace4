#![no_main]
//! The RESP2 command codec on arbitrary bytes: decoded in one piece and in
//! fuzzer-chosen chunks, the commands (and the first refusal) must agree;
//! no panic.

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use torsion_protocols::codec::resp::RespCodec;
use torsion::codec::Decoder;

#[path = "common.rs"]
#[allow(unused_imports)]
mod common;

/// Commands decoded from `chunks`, then the first error's text, if any.
fn decode(chunks: &[&[u8]]) -> (Vec<Vec<Vec<u8>>>, Option<String>) {
    let mut codec = RespCodec::new();
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(args)) => commands.push(args.iter().map(|a| a.to_vec()).collect()),
                Ok(None) => break,
                Err(e) => return (commands, Some(e.to_string())),
            }
        }
    }
    (commands, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((_, chunks, stream)) = common::split(data) else { return };
    assert_eq!(decode(&[stream]), decode(&chunks));
});
