#![no_main]
//! The chat server's line handling through the test kit: arbitrary bytes,
//! in arbitrary chunks, from several clients on several pretend shards (the
//! manual buses between them). No panic (a caught one would end a connection
//! with reason Panic, which fails the target), and every byte the server
//! writes belongs to a whole `\r\n`-terminated line.

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use torsion::testing::{HarnessOptions, ProtocolHarness};
use torsion::{DisconnectReason, ManualClock};
use torsion_protocols::chat::testing::ManualChat;
use torsion_protocols::chat::{ChatClient, ChatConfig};
use torsion_protocols::codec::LineCodec;
use torsion_protocols::LineReceiver;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let shards = usize::from(data[0] % 3) + 1;
    let clients = usize::from(data[1] % 4) + 1;
    let config = ChatConfig::default()
        .with_max_line(64)
        .with_register_timeout(Duration::from_secs(30));
    let chat = ManualChat::new(shards, config);
    let clock = ManualClock::new();
    let rooms = chat.rooms.clone();
    let mut hs: Vec<_> = (0..clients)
        .map(|i| {
            let room = rooms[i % shards].clone();
            ProtocolHarness::with_options(
                LineReceiver::with_codec(ChatClient::new(room), LineCodec::lf_or_crlf().max_length(64)),
                HarnessOptions::default()
                    .with_clock(clock.clone())
                    .with_shard_id(i % shards),
            )
        })
        .collect();
    // Each op: a byte choosing the client and chunk length, then the chunk.
    let mut rest = &data[2..];
    while let Some((&op, tail)) = rest.split_first() {
        let who = usize::from(op) % clients;
        let len = (usize::from(op >> 2) % 24).min(tail.len());
        hs[who].receive(&tail[..len]);
        if op & 0x80 != 0 {
            chat.pump();
        }
        if op == 0xff {
            clock.advance(Duration::from_secs(31));
        }
        rest = &tail[len..];
    }
    chat.pump();
    for h in &mut hs {
        let out = h.take_written();
        assert!(out.is_empty() || out.ends_with(b"\r\n"), "partial line written");
        assert_ne!(h.lost_reason(), Some(&DisconnectReason::Panic), "a handler panicked");
    }
});
