//! The chat server on real sockets with two or more shards: the transcript
//! across shards, name races, fan-out order, slow consumers.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use torsion::{DisconnectReason, Server, ServerHandle};
use torsion_protocols::chat::{start_chat_server, ChatConfig, DEFAULT_MAX_OUTBOUND};
use torsion_tests::*;

fn chat_server(max_outbound: usize) -> ServerHandle {
    chat_server_on(2, max_outbound)
}

fn chat_server_on(shards: usize, max_outbound: usize) -> ServerHandle {
    chat_server_with(
        shards,
        ChatConfig::default().with_max_outbound(max_outbound),
    )
}

fn chat_server_with(shards: usize, config: ChatConfig) -> ServerHandle {
    let builder = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .shards(shards);
    start_chat_server(builder, config).unwrap()
}

fn two_shards_available() -> bool {
    torsion::cores::allowed_cores()
        .map(|c| c.len() >= 2)
        .unwrap_or(false)
}

struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(server: &ServerHandle) -> Client {
        let s = connect(server.local_addr());
        Client {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self.reader.read_line(&mut l).expect("read a line");
        assert!(n > 0, "connection closed while a line was expected");
        assert!(l.ends_with("\r\n"), "{l:?}");
        l.truncate(l.len() - 2);
        l
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
        self.writer.write_all(b"\r\n").unwrap();
    }

    fn named(server: &ServerHandle, name: &str) -> Client {
        let mut c = Client::connect(server);
        assert_eq!(c.line(), "What's your name?");
        c.send(name);
        assert_eq!(c.line(), format!("Welcome, {name}!"));
        c
    }
}

/// A client whose connection landed on `shard` (the kernel picks the shard;
/// the server's stats tell which one it picked).
fn client_on_shard(server: &ServerHandle, shard: usize) -> Client {
    for _ in 0..500 {
        let before: Vec<u64> = server.stats().iter().map(|s| s.accepted).collect();
        let c = Client::connect(server);
        assert!(wait_until(
            || server.total_stats().accepted > before.iter().sum::<u64>()
        ));
        let after: Vec<u64> = server.stats().iter().map(|s| s.accepted).collect();
        if after[shard] > before[shard] {
            return c;
        }
    }
    panic!("no connection landed on shard {shard}");
}

#[test]
fn the_transcript_holds_across_shards() {
    if !two_shards_available() {
        return eprintln!("skipping: needs two cores");
    }
    let server = chat_server(DEFAULT_MAX_OUTBOUND);
    let mut alice = client_on_shard(&server, 0);
    let mut rival = client_on_shard(&server, 1);
    assert_eq!(alice.line(), "What's your name?");
    assert_eq!(rival.line(), "What's your name?");
    alice.send("alice");
    assert_eq!(alice.line(), "Welcome, alice!");
    rival.send("alice");
    assert_eq!(rival.line(), "Name taken, please choose another.");
    rival.send("bob");
    assert_eq!(rival.line(), "Welcome, bob!");

    alice.send("hello from shard 0");
    assert_eq!(rival.line(), "<alice> hello from shard 0");
    rival.send("and hello from shard 1");
    assert_eq!(alice.line(), "<bob> and hello from shard 1");
    rival.send("/who");
    assert_eq!(rival.line(), "Users: alice bob");
    rival.send("/me waves");
    assert_eq!(alice.line(), "* bob waves");

    // alice leaves; her name is free again (once the release reaches the
    // name's owner shard: retry, bounded).
    drop(alice);
    let mut again = client_on_shard(&server, 1);
    assert_eq!(again.line(), "What's your name?");
    let welcomed = wait_until(|| {
        again.send("alice");
        let reply = again.line();
        assert!(
            reply == "Welcome, alice!" || reply == "Name taken, please choose another.",
            "{reply}"
        );
        reply == "Welcome, alice!"
    });
    assert!(welcomed, "the name never became free");
    again.send("/quit");
    let mut rest = String::new();
    assert_eq!(
        again.reader.read_line(&mut rest).unwrap(),
        0,
        "closed after /quit"
    );
    server.stop().unwrap();
}

#[test]
fn a_hundred_clients_racing_for_ten_names_get_ten_welcomes() {
    let server = chat_server(DEFAULT_MAX_OUTBOUND);
    let mut clients: Vec<Client> = (0..100).map(|_| Client::connect(&server)).collect();
    for c in &mut clients {
        assert_eq!(c.line(), "What's your name?");
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&format!("racer{}", i % 10));
    }
    let mut winners = Vec::new();
    for c in &mut clients {
        let reply = c.line();
        match reply.strip_prefix("Welcome, ") {
            Some(name) => winners.push(name.trim_end_matches('!').to_string()),
            None => assert_eq!(reply, "Name taken, please choose another."),
        }
    }
    winners.sort();
    let want: Vec<String> = (0..10).map(|i| format!("racer{i}")).collect();
    assert_eq!(winners, want, "each name exactly once");
    let per_shard: Vec<u64> = server.stats().iter().map(|s| s.open_connections).collect();
    assert!(
        per_shard.iter().all(|&n| n > 0),
        "clients on every shard: {per_shard:?}"
    );
    server.stop().unwrap();
}

#[test]
fn every_message_reaches_every_other_named_client_in_order() {
    let server = chat_server(DEFAULT_MAX_OUTBOUND);
    let clients = 20;
    let senders = 5;
    let per_sender = 200;
    let mut all: Vec<Client> = (0..clients)
        .map(|i| Client::named(&server, &format!("u{i}")))
        .collect();
    let per_shard: Vec<u64> = server.stats().iter().map(|s| s.open_connections).collect();
    assert!(
        per_shard.iter().all(|&n| n > 0),
        "clients on every shard: {per_shard:?}"
    );

    // Readers first, so nobody's socket fills up.
    let readers: Vec<_> = all
        .iter_mut()
        .enumerate()
        .map(|(i, c)| {
            let mut reader = BufReader::new(c.reader.get_ref().try_clone().unwrap());
            let expected = if i < senders {
                (senders - 1) * per_sender
            } else {
                senders * per_sender
            };
            std::thread::spawn(move || {
                let mut last = vec![None::<usize>; senders];
                for _ in 0..expected {
                    let mut l = String::new();
                    assert!(reader.read_line(&mut l).unwrap() > 0, "u{i}: early EOF");
                    // "<uS> m N"
                    let l = l.trim_end();
                    let (who, msg) = l.split_once("> ").expect(l);
                    let s: usize = who.trim_start_matches("<u").parse().unwrap();
                    assert_ne!(s, i, "u{i} got its own message back");
                    let n: usize = msg.trim_start_matches("m ").parse().unwrap();
                    let want = last[s].map_or(0, |p| p + 1);
                    assert_eq!(n, want, "u{i}: from u{s} got {n} after {:?}", last[s]);
                    last[s] = Some(n);
                }
                last
            })
        })
        .collect();
    for round in 0..per_sender {
        for c in all.iter_mut().take(senders) {
            c.send(&format!("m {round}"));
        }
    }
    for (i, r) in readers.into_iter().enumerate() {
        let last = r.join().unwrap();
        for (s, l) in last.iter().enumerate() {
            if s != i {
                assert_eq!(*l, Some(per_sender - 1), "u{i} from u{s}");
            }
        }
    }
    // Nothing extra arrives: ask /who and expect exactly its answer next.
    all[7].send("/who");
    let mut who = String::new();
    let mut r = BufReader::new(all[7].reader.get_ref().try_clone().unwrap());
    r.read_line(&mut who).unwrap();
    assert!(who.starts_with("Users: u0 u1 u10"), "{who:?}");
    server.stop().unwrap();
}

#[test]
fn a_client_that_never_reads_is_cut_while_the_others_get_everything() {
    // The default cap, 1 MiB: the stalled client is cut there.
    let server = chat_server(DEFAULT_MAX_OUTBOUND);
    // The stalled client shrinks its receive buffer so the server's queue
    // fills sooner; it registers, then never reads again.
    let stalled = {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        sock.connect(&server.local_addr().into()).unwrap();
        let s: TcpStream = sock.into();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut c = Client {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        };
        assert_eq!(c.line(), "What's your name?");
        c.send("stalled");
        assert_eq!(c.line(), "Welcome, stalled!");
        c
    };
    let mut sender = Client::named(&server, "sender");
    let healthy = Client::named(&server, "healthy");
    let lines = 8000;
    let body = "x".repeat(1000);
    let reader = std::thread::spawn(move || {
        let mut r = healthy.reader;
        for i in 0..lines {
            let mut l = String::new();
            assert!(r.read_line(&mut l).unwrap() > 0);
            assert!(
                l.starts_with(&format!("<sender> {i} ")),
                "line {i}: {}",
                &l[..30.min(l.len())]
            );
        }
    });
    // A firehose: the room holds the sender back while the healthy reader
    // catches up, and stops waiting for the stalled one after the stall
    // timeout; nothing here depends on the reader thread keeping pace.
    for i in 0..lines {
        sender.send(&format!("{i} {body}"));
    }
    reader.join().unwrap();
    assert!(wait_until(|| {
        server
            .total_stats()
            .closed_by(&DisconnectReason::SlowConsumer)
            == 1
    }));
    drop(stalled);
    server.stop().unwrap();
}

/// The blast from "Reliability round 2": two clients read as fast as they
/// can; a third writes 8 MB of 3,000-byte lines as fast as its socket takes
/// them. Both readers get every line, in order; nobody is cut.
fn blast(shards: usize) {
    // The stall timeout (2 s by default) is how long the room waits for a
    // reader before it may cut it: a reader thread that a busy machine
    // leaves unscheduled that long is not what this test is about.
    let config = ChatConfig::default()
        .with_max_outbound(DEFAULT_MAX_OUTBOUND)
        .with_stall_timeout(PATIENCE);
    let server = chat_server_with(shards, config);
    let lines = 2666;
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let c = Client::named(&server, &format!("reader{r}"));
            std::thread::spawn(move || {
                let mut rd = c.reader;
                let mut l = String::new();
                for i in 0..lines {
                    l.clear();
                    let n = rd.read_line(&mut l).unwrap_or(0);
                    assert!(n > 0, "reader{r}: cut after {i} of {lines} lines");
                    let want = format!("<blaster> {i:05} ");
                    assert!(
                        l.starts_with(&want),
                        "reader{r}: line {i} is {:?}",
                        &l[..l.len().min(30)]
                    );
                    assert_eq!(l.len(), 3000 + "<blaster> ".len() + 2);
                }
                drop(c.writer);
            })
        })
        .collect();
    let mut blaster = Client::named(&server, "blaster");
    let body = "b".repeat(3000 - 6);
    let mut all = Vec::with_capacity(lines * 3002);
    for i in 0..lines {
        all.extend_from_slice(format!("{i:05} {body}\r\n").as_bytes());
    }
    blaster.writer.write_all(&all).unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(
        server
            .total_stats()
            .closed_by(&DisconnectReason::SlowConsumer),
        0
    );
    server.stop().unwrap();
}

#[test]
fn a_blast_reaches_fast_readers_whole_with_one_shard() {
    blast(1);
}

#[test]
fn a_blast_reaches_fast_readers_whole_with_two_shards() {
    if !two_shards_available() {
        return eprintln!("skipping: needs two cores");
    }
    blast(2);
}
