//! The room on manual buses and a manual clock: the Twisted transcript
//! across shards, claims, back-pressure, the flush window.

use std::time::Duration;

use super::*;
use crate::chat::message::ClaimOutcome;
use crate::chat::names::owner_shard;
use crate::chat::testing::ManualChat;
use crate::chat::ChatClient;
use crate::codec::LineCodec;
use crate::framed::LineReceiver;
use torsion::testing::{HarnessOptions, ProtocolHarness};
use torsion::{DisconnectReason, FlowLimits, ManualClock};

type Client = ProtocolHarness<LineReceiver<ChatClient>>;

/// Rooms for `n` pretend shards on one thread, the manual buses between
/// them and one manual clock.
struct World {
    chat: ManualChat,
    rooms: Vec<Rc<Room>>,
    clock: ManualClock,
}

impl World {
    fn new(n: usize, config: ChatConfig) -> World {
        let chat = ManualChat::new(n, config);
        World {
            rooms: chat.rooms.clone(),
            chat,
            clock: ManualClock::new(),
        }
    }

    fn pump_buses(&self) -> usize {
        self.chat.pump()
    }

    fn pending(&self) -> usize {
        self.chat.pending()
    }

    fn connect(&self, shard: usize) -> Client {
        let room = self.rooms[shard].clone();
        let codec = LineCodec::lf_or_crlf().max_length(room.config().max_line);
        let limits = FlowLimits::default()
            .with_high_water(1024)
            .with_low_water(256)
            .with_hard_cap(room.config().max_outbound);
        ProtocolHarness::with_options(
            LineReceiver::with_codec(ChatClient::new(room), codec),
            HarnessOptions::default()
                .with_clock(self.clock.clone())
                .with_shard_id(shard)
                .with_limits(limits),
        )
    }

    /// Delivers the bus's messages, then lets open flush windows close
    /// (the clock moves by the window): what a client sees a moment
    /// later.
    fn pump(&self) {
        self.pump_buses();
        while let Some(r) = self.rooms.iter().find(|r| r.window_open.get()) {
            self.clock.advance(r.config.flush_window);
        }
    }

    /// Runs clients and bus until nothing moves any more, letting
    /// open flush windows close (the clock moves by the window).
    fn settle(&self, clients: &mut [&mut Client]) {
        loop {
            for c in clients.iter_mut() {
                c.written();
            }
            if self.pump_buses() > 0 {
                continue;
            }
            match self.rooms.iter().find(|r| r.window_open.get()) {
                Some(r) => {
                    self.clock.advance(r.config.flush_window);
                }
                None => return,
            }
        }
    }

    /// A connected client that registered `name`.
    fn named(&self, shard: usize, name: &str) -> Client {
        let mut c = self.connect(shard);
        c.receive(format!("{name}\r\n").as_bytes());
        self.pump_buses();
        assert_eq!(
            text(&mut c),
            format!("What's your name?\r\nWelcome, {name}!\r\n")
        );
        c
    }
}

fn text(c: &mut Client) -> String {
    String::from_utf8(c.take_written()).unwrap()
}

#[test]
fn the_twisted_transcript_across_shards() {
    let w = World::new(2, ChatConfig::default());
    let mut alice = w.named(0, "alice");
    let mut other = w.connect(1);
    assert_eq!(text(&mut other), "What's your name?\r\n");
    other.receive(b"alice\n");
    w.pump();
    assert_eq!(text(&mut other), "Name taken, please choose another.\r\n");
    other.receive(b"bob\r\n");
    w.pump();
    assert_eq!(text(&mut other), "Welcome, bob!\r\n");
    let mut nameless = w.connect(1);
    text(&mut nameless);

    alice.receive(b"hello there\r\n");
    w.pump();
    assert_eq!(text(&mut other), "<alice> hello there\r\n");
    assert_eq!(text(&mut alice), "", "no echo to the sender");
    assert_eq!(text(&mut nameless), "", "nameless clients get nothing");
    other.receive(b"hi alice\n");
    w.pump();
    assert_eq!(text(&mut alice), "<bob> hi alice\r\n");
}

#[test]
fn clustered_claims_wait_for_redis_and_lines_names_and_who_go_to_the_bridge() {
    use crate::chat::cluster::{ClusterLink, Request};
    let w = World::new(2, ChatConfig::default());
    let (link, bridge) = ClusterLink::manual();
    for r in &w.rooms {
        r.set_cluster(link.clone());
    }
    let owner = owner_shard("ann", 2);
    let mut ann = w.connect(0);
    text(&mut ann);
    let claim = |ann: &mut Client, outcome| {
        ann.receive(b"ann\r\n");
        w.pump_buses();
        assert_eq!(text(ann), "", "no answer before Redis's");
        let Ok(Request::Claim { name, answer }) = bridge.try_recv() else {
            panic!("the claim goes to the bridge");
        };
        assert_eq!(name, "ann");
        answer.send(outcome);
        w.pump();
        text(ann)
    };
    assert_eq!(
        claim(&mut ann, ClaimOutcome::Unavailable),
        "Names cannot be checked across servers right now, please try again.\r\n"
    );
    assert_eq!(
        claim(&mut ann, ClaimOutcome::Taken),
        "Name taken, please choose another.\r\n"
    );
    assert_eq!(claim(&mut ann, ClaimOutcome::Granted), "Welcome, ann!\r\n");
    ann.receive(b"hello\r\n");
    w.pump();
    assert!(matches!(
        bridge.try_recv(),
        Ok(Request::Line(line)) if line == Bytes::from_static(b"<ann> hello\r\n")
    ));
    // Other nodes' lines reach every named client here.
    w.rooms[0].on_message(ChatMessage::Remote {
        lines: Bytes::from_static(b"<bob> one\r\n<bob> two\r\n"),
        count: 2,
    });
    w.pump();
    assert_eq!(text(&mut ann), "<bob> one\r\n<bob> two\r\n");
    // /who waits for the other nodes' names too.
    ann.receive(b"/who\r\n");
    w.pump();
    let Ok(Request::Who(answer)) = bridge.try_recv() else {
        panic!("/who asks the bridge");
    };
    assert_eq!(text(&mut ann), "");
    answer.send(crate::chat::cluster::OtherNodes {
        names: Bytes::from_static(b"bob zed"),
        reachable: true,
    });
    w.pump();
    assert_eq!(text(&mut ann), "Users: ann bob zed\r\n");
    // A name another node took during an outage is revoked.
    w.rooms[owner].on_message(ChatMessage::NameLost { name: "ann".into() });
    w.pump();
    assert_eq!(
        text(&mut ann),
        "Your name was taken on another server while this one was cut off; please choose another.\r\n"
    );
    assert_eq!(w.rooms[0].named_count(), 0);
    assert!(bridge.try_recv().is_err(), "a revoked name is not released");
    assert_eq!(claim(&mut ann, ClaimOutcome::Granted), "Welcome, ann!\r\n");
    ann.receive(b"/quit\r\n");
    w.pump();
    assert!(matches!(
        bridge.try_recv(),
        Ok(Request::Release { name }) if name == "ann"
    ));
}

#[test]
fn a_name_is_free_again_after_its_holder_leaves() {
    let w = World::new(2, ChatConfig::default());
    let mut alice = w.named(1, "alice");
    alice.disconnect(DisconnectReason::Reset);
    w.pump();
    let _again = w.named(0, "alice");
    assert_eq!(w.rooms[1].named_count(), 0);
}

#[test]
fn racing_claims_have_exactly_one_winner_per_name() {
    let w = World::new(3, ChatConfig::default());
    let mut clients: Vec<Client> = (0..30).map(|i| w.connect(i % 3)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        text(c);
        c.receive(format!("name{}\r\n", i % 10).as_bytes());
    }
    w.pump();
    let mut winners = Vec::new();
    for c in clients.iter_mut() {
        let t = text(c);
        if let Some(n) = t.strip_prefix("Welcome, ") {
            winners.push(n.trim_end().trim_end_matches('!').to_string());
        } else {
            assert_eq!(t, "Name taken, please choose another.\r\n");
        }
    }
    winners.sort();
    let want: Vec<String> = (0..10).map(|i| format!("name{i}")).collect();
    assert_eq!(winners, want);
}

#[test]
fn lines_sent_while_a_claim_is_in_flight_follow_the_welcome() {
    let w = World::new(2, ChatConfig::default());
    let mut bob = w.named(1, "bob");
    // On the shard that does not own the name: the claim is a call to
    // the other shard, which answers when the bus moves.
    let here = 1 - owner_shard("alice", 2);
    let mut alice = w.connect(here);
    alice.receive(b"alice\r\nfirst\r\nsecond\r\n");
    // Reading waits for the claim: nothing past the name is read yet.
    assert_eq!(alice.unconsumed(), b"first\r\nsecond\r\n");
    w.settle(&mut [&mut alice, &mut bob]);
    assert_eq!(text(&mut alice), "What's your name?\r\nWelcome, alice!\r\n");
    assert_eq!(text(&mut bob), "<alice> first\r\n<alice> second\r\n");
}

#[test]
fn commands_and_bad_input() {
    let w = World::new(2, ChatConfig::default());
    let mut alice = w.named(0, "alice");
    let mut zed = w.named(1, "zed");
    let mut bob = w.named(1, "bob");

    alice.receive(b"/who\r\n");
    w.pump();
    assert_eq!(text(&mut alice), "Users: alice bob zed\r\n");

    alice.receive(b"/me waves\r\n");
    w.pump();
    assert_eq!(text(&mut bob), "* alice waves\r\n");
    assert_eq!(text(&mut zed), "* alice waves\r\n");
    assert_eq!(text(&mut alice), "");

    alice.receive(b"/dance\r\n");
    assert_eq!(text(&mut alice), "Unknown command \"/dance\".\r\n");

    alice.receive(b"caf\xe9\r\n");
    assert_eq!(text(&mut alice), "Invalid UTF-8, line ignored.\r\n");
    assert!(alice.is_open());

    let mut anon = w.connect(0);
    text(&mut anon);
    for bad in [&b"two words\r\n"[..], b"\r\n", b"x\x01\r\n"] {
        anon.receive(bad);
        assert_eq!(text(&mut anon), "Invalid name, please choose another.\r\n");
    }
    anon.receive(&[b'n'; 33]);
    anon.receive(b"\r\n");
    assert_eq!(text(&mut anon), "Invalid name, please choose another.\r\n");
    anon.receive(b"\xff\r\n");
    assert_eq!(text(&mut anon), "Invalid UTF-8, line ignored.\r\n");

    bob.receive(b"/quit\r\n");
    w.pump();
    assert_eq!(bob.lost_reason(), Some(&DisconnectReason::Closed));
    alice.receive(b"/who\r\n");
    w.pump();
    assert_eq!(text(&mut alice), "Users: alice zed\r\n");
}

#[test]
fn an_over_long_line_is_refused_and_closes() {
    let w = World::new(
        1,
        ChatConfig {
            max_line: 16,
            ..ChatConfig::default()
        },
    );
    let mut alice = w.named(0, "alice");
    alice.receive(&[b'x'; 17]);
    alice.receive(b"\r\n");
    assert_eq!(text(&mut alice), "Line too long.\r\n");
    assert_eq!(alice.lost_reason(), Some(&DisconnectReason::Closed));
}

#[test]
fn nameless_clients_are_closed_at_the_registration_timeout() {
    let w = World::new(
        2,
        ChatConfig {
            register_timeout: Duration::from_secs(30),
            ..ChatConfig::default()
        },
    );
    let mut slow = w.connect(0);
    let mut quick = w.connect(1);
    text(&mut slow);
    quick.receive(b"quick\r\n");
    w.pump();
    w.clock.advance(Duration::from_secs(29));
    assert!(slow.is_open());
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(text(&mut slow), "Registration timed out.\r\n");
    assert_eq!(slow.lost_reason(), Some(&DisconnectReason::Closed));
    assert!(quick.is_open(), "registered clients are not timed out");
}

#[test]
fn a_client_leaving_mid_claim_gives_the_name_back() {
    let w = World::new(2, ChatConfig::default());
    let mut c = w.connect(0);
    c.receive(b"ghost\r\n");
    c.disconnect(DisconnectReason::Reset);
    w.pump();
    let _ghost = w.named(1, "ghost");
}

/// Lines `<name> i pad…` for i in `range`, as one input chunk.
fn numbered(range: std::ops::Range<usize>, pad: usize) -> Vec<u8> {
    let pad = "x".repeat(pad);
    range
        .flat_map(|i| format!("{i} {pad}\r\n").into_bytes())
        .collect()
}

/// Checks `got` holds `<from> i …` lines for every i in `range`, in order.
fn assert_in_order(got: &str, from: &str, range: std::ops::Range<usize>) {
    let seq: Vec<usize> = got
        .lines()
        .map(|l| {
            let rest = l
                .strip_prefix(&format!("<{from}> "))
                .unwrap_or_else(|| panic!("{l:?}"));
            rest.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(seq, range.collect::<Vec<_>>());
}

#[test]
fn a_fast_sender_is_held_while_a_reader_is_behind_and_nothing_is_lost() {
    for shards in [1, 2] {
        let config = ChatConfig {
            max_outbound: 64 * 1024,
            ..ChatConfig::default()
        };
        let w = World::new(shards, config);
        let mut reader = w.named(shards - 1, "reader");
        let mut sender = w.named(0, "sender");
        reader.set_peer_reading(false);
        // 2,000 lines of ~110 bytes in one read: 220 KB, over 3x the cap.
        sender.receive(&numbered(0..2000, 100));
        w.settle(&mut [&mut reader, &mut sender]);
        assert!(w.rooms[0].is_holding(), "{shards} shards: the room holds");
        assert!(sender.transport().is_reading_paused());
        assert!(!sender.unconsumed().is_empty(), "the rest waits unread");
        let queued = reader.transport().buffered_len();
        assert!(queued < 32 * 1024, "{shards} shards: {queued} queued");
        // The reader catches up; the room lets the sender go on, and so on
        // until everything has arrived.
        reader.set_peer_reading(true);
        let mut got = String::new();
        for _ in 0..10_000 {
            w.settle(&mut [&mut reader, &mut sender]);
            got.push_str(&text(&mut reader));
            if sender.unconsumed().is_empty() && !w.rooms[0].is_holding() {
                break;
            }
        }
        assert!(reader.is_open() && sender.is_open());
        assert_in_order(&got, "sender", 0..2000);
    }
}

#[test]
fn a_reader_that_never_reads_holds_the_room_once_then_is_cut_at_the_cap() {
    let config = ChatConfig {
        max_outbound: 32 * 1024,
        ..ChatConfig::default()
    };
    let w = World::new(2, config);
    let mut stalled = w.named(1, "stalled");
    let mut healthy = w.named(1, "healthy");
    let mut sender = w.named(0, "sender");
    stalled.set_peer_reading(false);
    sender.receive(&numbered(0..1000, 100));
    w.settle(&mut [&mut stalled, &mut healthy, &mut sender]);
    assert!(
        sender.transport().is_reading_paused(),
        "held for the stalled reader"
    );
    let mut got = text(&mut healthy);
    // The stall timeout passes: the room stops waiting; the stalled
    // reader's queue reaches the cap and it is cut.
    w.clock.advance(w.rooms[1].config().stall_timeout);
    for _ in 0..10_000 {
        w.settle(&mut [&mut stalled, &mut healthy, &mut sender]);
        got.push_str(&text(&mut healthy));
        if sender.unconsumed().is_empty() && !w.rooms[0].is_holding() {
            break;
        }
    }
    assert_eq!(stalled.lost_reason(), Some(&DisconnectReason::SlowConsumer));
    assert!(healthy.is_open() && sender.is_open());
    assert_in_order(&got, "sender", 0..1000);
}

#[test]
fn with_no_stall_wait_a_behind_reader_never_holds_the_room() {
    let config = ChatConfig {
        max_outbound: 32 * 1024,
        stall_timeout: Duration::ZERO,
        ..ChatConfig::default()
    };
    let w = World::new(1, config);
    let mut stalled = w.named(0, "stalled");
    let mut sender = w.named(0, "sender");
    stalled.set_peer_reading(false);
    sender.receive(&numbered(0..1000, 100));
    w.settle(&mut [&mut stalled, &mut sender]);
    assert!(!w.rooms[0].is_holding());
    assert!(sender.unconsumed().is_empty());
    assert_eq!(stalled.lost_reason(), Some(&DisconnectReason::SlowConsumer));
}

#[test]
fn a_who_flood_keeps_one_request_in_flight_and_its_input_unread() {
    let config = ChatConfig {
        max_outbound: 64 * 1024,
        ..ChatConfig::default()
    };
    let w = World::new(2, config);
    let mut flooder = w.named(0, "flooder");
    let mut bob = w.named(1, "bob");
    flooder.set_peer_reading(false);
    flooder.receive(&b"/who\r\n".repeat(20_000));
    let mut answered_bob = false;
    for step in 0..100_000 {
        // One /who in flight: one question per shard, or its answers.
        assert!(w.pending() <= 2, "step {step}: {} pending", w.pending());
        if step == 50 {
            bob.receive(b"/who\r\n");
        }
        flooder.written();
        bob.written();
        let t = text(&mut bob);
        if t == "Users: bob flooder\r\n" {
            answered_bob = true;
        }
        if w.pump_buses() == 0 && w.pending() == 0 {
            if flooder.unconsumed().is_empty() || !flooder.is_open() {
                break;
            }
            // Held for the flooder's own unread answers: let the stall
            // timeout pass, then it is cut at the cap.
            w.clock.advance(Duration::from_secs(2));
        }
    }
    assert!(answered_bob, "another client's /who is answered meanwhile");
    assert_eq!(flooder.lost_reason(), Some(&DisconnectReason::SlowConsumer));
    assert!(bob.is_open());
}

#[test]
fn quit_frees_the_name_at_once() {
    let w = World::new(2, ChatConfig::default());
    let mut alice = w.named(0, "alice");
    let mut bob = w.named(1, "bob");
    // Alice does not read: her close waits to flush, as a real close
    // lingers; her name must not wait with it.
    alice.set_peer_reading(false);
    bob.receive(b"bye alice\r\n");
    w.pump();
    alice.receive(b"/quit\r\n");
    w.pump();
    assert!(alice.is_open() && alice.is_closing());
    bob.receive(b"/who\r\n");
    w.pump();
    assert_eq!(text(&mut bob), "Users: bob\r\n");
    let _again = w.named(1, "alice");
}

#[test]
fn lines_wait_for_the_flush_window_then_leave_together_in_order() {
    let window = Duration::from_millis(10);
    let w = World::new(1, ChatConfig::default().with_flush_window(window));
    let mut alice = w.named(0, "alice");
    let mut bob = w.named(0, "bob");
    for i in 0..3 {
        alice.receive(format!("line {i}\r\n").as_bytes());
    }
    assert_eq!(text(&mut bob), "", "held while the window is open");
    w.clock.advance(window - Duration::from_millis(1));
    assert_eq!(text(&mut bob), "");
    w.clock.advance(Duration::from_millis(1));
    assert_eq!(
        text(&mut bob),
        "<alice> line 0\r\n<alice> line 1\r\n<alice> line 2\r\n"
    );
    // Without a window every line leaves at once.
    let w = World::new(1, ChatConfig::default().with_flush_window(Duration::ZERO));
    let mut alice = w.named(0, "alice");
    let mut bob = w.named(0, "bob");
    alice.receive(b"now\r\n");
    assert_eq!(text(&mut bob), "<alice> now\r\n");
}

#[test]
fn control_characters_never_reach_other_terminals() {
    let w = World::new(1, ChatConfig::default());
    let mut alice = w.named(0, "alice");
    let mut bob = w.named(0, "bob");
    alice.receive(b"red \x1b[31mtext\rover\x07 tab\tok \xc2\x9b\r\n");
    alice.receive(b"/me \x1b]0;pwned\x07\r\n");
    w.pump();
    assert_eq!(
        text(&mut bob),
        "<alice> red \u{fffd}[31mtext\u{fffd}over\u{fffd} tab\tok \u{fffd}\r\n\
         * alice \u{fffd}]0;pwned\u{fffd}\r\n"
    );
    assert_eq!(printable("plain text"), "plain text");
}

#[test]
fn a_zero_registration_timeout_means_no_limit() {
    let w = World::new(
        1,
        ChatConfig {
            register_timeout: Duration::ZERO,
            ..ChatConfig::default()
        },
    );
    let mut c = w.connect(0);
    w.clock.advance(Duration::from_secs(365 * 24 * 3600));
    assert!(c.is_open());
    assert_eq!(text(&mut c), "What's your name?\r\n");
}
