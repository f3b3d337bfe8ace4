//! `torsion serve chat --cluster redis://…`: several nodes (separate
//! processes) sharing one room through a real `redis-server` the tests
//! start on a free port with persistence off (Debian's package, installed
//! when missing and root; the tests skip, saying so, only with
//! `TORSION_SKIP_REDIS=1`).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use torsion_tests::{
    metric_total, spawn_reading_lines, wait_until, RedisServer, ServerProcess, PATIENCE,
};

/// A chat node: the process, where it listens, where its metrics are.
struct Node {
    server: ServerProcess,
    metrics: SocketAddr,
}

impl Node {
    fn start(redis: &RedisServer, id: &str, shards: usize, extra: &[&str]) -> Node {
        let (child, lines) = spawn_reading_lines(
            Command::new(env!("CARGO_BIN_EXE_torsion"))
                .env("RUST_LOG", "warn")
                .args(["serve", "chat", "--listen", "tcp:0:interface=127.0.0.1"])
                .args(["--shards", &shards.to_string()])
                .args(["--cluster", &redis.url(), "--node-id", id])
                .args(["--metrics", "tcp:0:interface=127.0.0.1"])
                .args(extra),
            2,
        );
        let (addr, n) = torsion_tests::parse_listening_line(&lines[0]);
        assert_eq!(n, shards);
        let (_, metrics) = torsion_tests::parse_metrics_line(&lines[1], "http");
        Node {
            server: ServerProcess {
                child,
                addr,
                shards: n,
            },
            metrics,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    fn pid(&self) -> i32 {
        self.server.child.id() as i32
    }

    /// The node's cluster counter `name` (without `torsion_cluster_`).
    fn counter(&self, name: &str) -> f64 {
        Node::counter_in(&self.scrape(), name)
    }

    /// One `/metrics` scrape, to read several counters from the same moment.
    fn scrape(&self) -> String {
        torsion_tests::http_get(self.metrics, "/metrics").2
    }

    /// `torsion_cluster_<name>` in a scrape.
    fn counter_in(scrape: &str, name: &str) -> f64 {
        metric_total(scrape, &format!("torsion_cluster_{name}"), &[])
    }
}

/// A line-at-a-time chat client.
struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = Client { stream, reader };
        assert_eq!(c.line(), "What's your name?");
        c
    }

    /// Connects and registers `name` (which must be free).
    fn named(addr: SocketAddr, name: &str) -> Client {
        let mut c = Client::connect(addr);
        assert_eq!(c.ask(name), format!("Welcome, {name}!"));
        c
    }

    fn send(&mut self, text: &str) {
        write!(self.stream, "{text}\r\n").unwrap();
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.reader.read_line(&mut l).expect("a line in time");
        l.trim_end_matches("\r\n").to_string()
    }

    fn ask(&mut self, text: &str) -> String {
        self.send(text);
        self.line()
    }

    /// Claims `name` until it is granted (bounded); the replies refused.
    fn claim_until_granted(&mut self, name: &str) -> Vec<String> {
        let mut refused = Vec::new();
        let welcome = format!("Welcome, {name}!");
        let got = wait_until(|| {
            let reply = self.ask(name);
            if reply == welcome {
                return true;
            }
            refused.push(reply);
            std::thread::sleep(Duration::from_millis(50));
            false
        });
        assert!(got, "{name} never became free: {refused:?}");
        refused
    }
}

/// `n` lines from `sender` (`<sender> tag i`) arrive at `c` in order, with
/// nothing else in between.
fn expect_in_order(c: &mut Client, sender: &str, tag: &str, n: usize) {
    for i in 0..n {
        assert_eq!(c.line(), format!("<{sender}> {tag} {i}"));
    }
}

#[test]
fn three_nodes_share_one_room_in_order_and_who_lists_everyone() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(&redis, "a", 1, &[]);
    let b = Node::start(&redis, "b", 2, &[]);
    let c = Node::start(&redis, "c", 1, &[]);
    let mut ann = Client::named(a.addr(), "ann");
    // Two on b: with two shards, the kernel may put them on either.
    let mut bob = Client::named(b.addr(), "bob");
    let mut bea = Client::named(b.addr(), "bea");
    let mut cid = Client::named(c.addr(), "cid");
    const N: usize = 300;
    for i in 0..N {
        ann.send(&format!("x {i}"));
        cid.send(&format!("y {i}"));
    }
    // Each reader gets each sender's lines in order; the two senders'
    // lines interleave in some order.
    for (reader, others) in [
        (&mut bob, vec!["ann", "cid"]),
        (&mut bea, vec!["ann", "cid"]),
        (&mut ann, vec!["cid"]),
        (&mut cid, vec!["ann"]),
    ] {
        let mut next = vec![0usize; others.len()];
        while next.iter().any(|&n| n < N) {
            let l = reader.line();
            let (who, rest) = l[1..].split_once("> ").expect("a chat line");
            let k = others.iter().position(|o| *o == who).expect("a sender");
            let tag = if who == "ann" { "x" } else { "y" };
            assert_eq!(rest, format!("{tag} {}", next[k]), "out of order: {l}");
            next[k] += 1;
        }
    }
    assert_eq!(cid.ask("/who"), "Users: ann bea bob cid");
    bob.send("/me waves");
    for reader in [&mut ann, &mut bea, &mut cid] {
        assert_eq!(reader.line(), "* bob waves");
    }
    // Counted once Redis answered: wait for the counters to settle.
    assert!(wait_until(|| a.counter("lines_sent_total") == N as f64));
    assert!(wait_until(
        || a.counter("lines_received_total") == (N + 1) as f64
    ));
    assert_eq!(c.counter("lines_missed_total"), 0.0);
    assert_eq!(c.counter("duplicates_total"), 0.0);
    assert_eq!(b.counter("link_up"), 2.0);
    // A name leaves with its client: free on every node.
    ann.send("/quit");
    let mut again = Client::connect(c.addr());
    again.claim_until_granted("ann");
    drop((a, b, c));
}

#[test]
fn fifty_clients_on_three_nodes_race_for_one_name_and_one_wins() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = [
        Node::start(&redis, "a", 1, &[]),
        Node::start(&redis, "b", 2, &[]),
        Node::start(&redis, "c", 1, &[]),
    ];
    let mut racers: Vec<Client> = (0..50)
        .map(|i| Client::connect(nodes[i % 3].addr()))
        .collect();
    let start = Arc::new(Barrier::new(racers.len()));
    let replies: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = racers
            .iter_mut()
            .map(|c| {
                let start = start.clone();
                s.spawn(move || {
                    start.wait();
                    c.ask("highlander")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners = replies
        .iter()
        .filter(|r| *r == "Welcome, highlander!")
        .count();
    assert_eq!(winners, 1, "{replies:?}");
    assert!(
        replies
            .iter()
            .all(|r| r == "Welcome, highlander!" || r == "Name taken, please choose another."),
        "{replies:?}"
    );
    let mut watcher = Client::named(nodes[2].addr(), "watcher");
    let who = watcher.ask("/who");
    assert_eq!(who, "Users: highlander watcher");
}

#[test]
fn a_killed_nodes_names_are_free_within_its_lease_and_the_others_go_on() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let lease = ["--cluster-lease", "2s"];
    let mut a = Node::start(&redis, "a", 1, &lease);
    let b = Node::start(&redis, "b", 1, &lease);
    let c = Node::start(&redis, "c", 1, &lease);
    let _ann = Client::named(a.addr(), "ann");
    let mut bob = Client::named(b.addr(), "bob");
    let mut cid = Client::named(c.addr(), "cid");
    // SIGKILL: no goodbye, the node key stays until the lease runs out.
    a.server.child.kill().unwrap();
    a.server.child.wait().unwrap();
    let mut taker = Client::connect(b.addr());
    let refused = taker.claim_until_granted("ann");
    assert!(
        refused
            .iter()
            .all(|r| r == "Name taken, please choose another."),
        "{refused:?}"
    );
    // The other nodes never noticed anything.
    bob.send("still here");
    assert_eq!(cid.line(), "<bob> still here");
    assert_eq!(cid.ask("/who"), "Users: ann bob cid");
}

#[test]
fn killing_the_nodes_redis_connections_loses_and_repeats_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(&redis, "a", 1, &[]);
    let b = Node::start(&redis, "b", 2, &[]);
    let mut ann = Client::named(a.addr(), "ann");
    let mut bob = Client::named(b.addr(), "bob");
    const N: usize = 2000;
    let killer = std::thread::spawn({
        let redis_addr = redis.addr;
        move || {
            let redis = |line: &str| {
                let mut s = TcpStream::connect(redis_addr).unwrap();
                s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
                let mut r = BufReader::new(s);
                let mut reply = String::new();
                r.read_line(&mut reply).unwrap();
                reply
            };
            let mut killed = 0;
            for _ in 0..3 {
                std::thread::sleep(Duration::from_millis(30));
                let reply = redis("CLIENT KILL TYPE normal SKIPME yes");
                killed += reply.trim_start_matches(':').trim().parse::<u32>().unwrap();
            }
            killed
        }
    });
    for i in 0..N {
        ann.send(&format!("x {i}"));
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    expect_in_order(&mut bob, "ann", "x", N);
    let killed = killer.join().unwrap();
    assert!(killed >= 4, "both nodes' connections were killed: {killed}");
    assert!(wait_until(|| a.counter("reconnects_total") >= 1.0));
    assert!(wait_until(|| b.counter("reconnects_total") >= 1.0));
    assert_eq!(b.counter("lines_missed_total"), 0.0);
    // And after all that, one more line arrives once, in its place.
    ann.send("last");
    assert_eq!(bob.line(), "<ann> last");
    assert!(wait_until(|| b.counter("link_up") == 2.0));
}

#[test]
fn a_redis_restart_within_the_outage_bound_loses_no_line_sent_meanwhile() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(&redis, "a", 1, &[]);
    let b = Node::start(&redis, "b", 1, &[]);
    let mut ann = Client::named(a.addr(), "ann");
    let mut amy = Client::named(a.addr(), "amy");
    let mut bob = Client::named(b.addr(), "bob");
    redis.kill();
    assert!(wait_until(|| a.counter("link_up") == 0.0));
    // Local chat goes on; lines for other nodes wait.
    for i in 0..50 {
        ann.send(&format!("x {i}"));
    }
    expect_in_order(&mut amy, "ann", "x", 50);
    // Names cannot be checked across nodes: refused, not guessed.
    let mut newcomer = Client::connect(a.addr());
    assert_eq!(
        newcomer.ask("newcomer"),
        "Names cannot be checked across servers right now, please try again."
    );
    assert_eq!(
        amy.ask("/who"),
        "Users: amy ann (other servers unreachable)"
    );
    redis.restart();
    // Everything sent during the outage reaches the other node, in order.
    expect_in_order(&mut bob, "ann", "x", 50);
    // Redis came back empty: each node finds its lease gone and claims its
    // names again; then they are taken across nodes as before.
    // Wait for what the rival's claim needs, not for a's lapse alone: a's
    // names back in Redis (a counts its lapse before its script lands), and
    // b's own writer on the new Redis (it notices the restart at its next
    // renewal, which may come well after a's: until then b cannot check
    // names and says so).
    assert!(wait_until(|| a.counter("lease_lapses_total") >= 1.0));
    assert!(wait_until(|| redis
        .command("HEXISTS torsion:chat:names ann")
        == ":1"));
    assert!(wait_until(|| b.counter("lease_lapses_total") >= 1.0));
    let mut rival = Client::connect(b.addr());
    assert_eq!(rival.ask("ann"), "Name taken, please choose another.");
    assert_eq!(newcomer.ask("newcomer"), "Welcome, newcomer!");
    newcomer.send("hello");
    assert_eq!(bob.line(), "<newcomer> hello");
    assert_eq!(a.counter("lines_dropped_total"), 0.0);
    assert_eq!(b.counter("lines_missed_total"), 0.0);
}

#[test]
fn lines_held_past_the_outage_bound_are_dropped_and_counted() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let bound = ["--cluster-outage", "1s"];
    let a = Node::start(&redis, "a", 1, &bound);
    let b = Node::start(&redis, "b", 1, &bound);
    let mut ann = Client::named(a.addr(), "ann");
    let mut bob = Client::named(b.addr(), "bob");
    redis.kill();
    assert!(wait_until(|| a.counter("link_up") == 0.0));
    for i in 0..20 {
        ann.send(&format!("old {i}"));
    }
    // Not a timing assertion: the bound must pass before Redis is back.
    // One scrape for both: the writer counts the drop before it empties
    // the backlog gauge.
    assert!(wait_until(|| {
        let scrape = a.scrape();
        Node::counter_in(&scrape, "lines_dropped_total") == 20.0
            && Node::counter_in(&scrape, "backlog_lines") == 0.0
    }));
    redis.restart();
    assert!(wait_until(|| a.counter("link_up") == 2.0));
    ann.send("new 0");
    assert_eq!(bob.line(), "<ann> new 0", "the dropped lines never arrive");
}

#[test]
fn a_node_cut_off_past_its_lease_gets_its_names_back_or_says_they_were_taken() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let lease = ["--cluster-lease", "1s"];
    let a = Node::start(&redis, "a", 1, &lease);
    let b = Node::start(&redis, "b", 1, &lease);
    let mut ann = Client::named(a.addr(), "ann");
    let _kim = Client::named(a.addr(), "kim");
    // Freeze node a (SIGSTOP): it cannot renew, its lease runs out.
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(a.pid(), libc::SIGSTOP) }, 0);
    let mut thief = Client::connect(b.addr());
    thief.claim_until_granted("ann");
    assert_eq!(unsafe { libc::kill(a.pid(), libc::SIGCONT) }, 0);
    // a finds its lease lapsed, keeps the name nobody took, and tells the
    // client whose name was taken.
    assert_eq!(
        ann.line(),
        "Your name was taken on another server while this one was cut off; please choose another."
    );
    assert!(wait_until(|| a.counter("names_lost_total") == 1.0));
    // At least once: a 1 s lease on a busy machine may lapse again later.
    assert!(a.counter("lease_lapses_total") >= 1.0);
    let mut rival = Client::connect(b.addr());
    assert_eq!(rival.ask("kim"), "Name taken, please choose another.");
    assert_eq!(ann.ask("ann2"), "Welcome, ann2!");
    assert_eq!(thief.ask("/who"), "Users: ann ann2 kim");
}

#[test]
fn a_node_whose_redis_cannot_be_reached_does_not_start() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for (url, says) in [
        (
            format!("redis://{closed}"),
            format!("cannot reach Redis at redis://{closed}"),
        ),
        (
            "http://x".to_string(),
            "bad cluster URL \"http://x\"".to_string(),
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_torsion"))
            .args(["serve", "chat", "--listen", "tcp:0:interface=127.0.0.1"])
            .args(["--cluster", &url])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&says), "{stderr}");
        assert!(out.stdout.is_empty(), "no listening line");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_torsion"))
        .args(["serve", "chat", "--node-id", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cluster"));
}

#[test]
fn a_redis_that_refuses_writes_holds_lines_back_until_it_takes_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(&redis, "a", 1, &[]);
    let b = Node::start(&redis, "b", 1, &[]);
    let mut ann = Client::named(a.addr(), "ann");
    let mut bob = Client::named(b.addr(), "bob");
    // Out of memory: every write command is refused ("-OOM …").
    assert_eq!(redis.command("CONFIG SET maxmemory 1"), "+OK");
    for i in 0..20 {
        ann.send(&format!("x {i}"));
    }
    assert!(wait_until(|| a.counter("backlog_lines") == 20.0));
    assert_eq!(redis.command("CONFIG SET maxmemory 0"), "+OK");
    expect_in_order(&mut bob, "ann", "x", 20);
    assert_eq!(a.counter("lines_dropped_total"), 0.0);
}

#[test]
fn lines_refused_past_the_outage_bound_are_dropped_and_counted() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(&redis, "a", 1, &["--cluster-outage", "1s"]);
    let mut ann = Client::named(a.addr(), "ann");
    assert_eq!(redis.command("CONFIG SET maxmemory 1"), "+OK");
    for i in 0..20 {
        ann.send(&format!("x {i}"));
    }
    // A refusing Redis is an outage like an absent one: the bound applies.
    assert!(wait_until(|| a.counter("lines_dropped_total") == 20.0));
    assert_eq!(redis.command("CONFIG SET maxmemory 0"), "+OK");
    assert!(wait_until(|| a.counter("link_up") == 2.0));
}
