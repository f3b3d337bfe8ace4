//! The README's service, run as a user runs it: the server process, the
//! `ask` client, keys owned by different shards, the timer and the blocking
//! pool, pipelined lines answered in order, a drain that lets a slow request
//! finish; and the README shows these programs exactly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};

use torsion_tests::PATIENCE;

struct Service {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Service {
    let mut child = Command::new(env!("CARGO_BIN_EXE_line-service"))
        .arg("tcp:0:interface=127.0.0.1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .strip_prefix("line-service: listening on ")
        .and_then(|r| r.split(' ').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    Service { child, addr }
}

fn ask(addr: SocketAddr, question: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ask"))
        .arg(addr.to_string())
        .args(question.split(' '))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

#[test]
fn it_counts_sleeps_hashes_and_answers_in_order() {
    let s = start();
    // Twenty keys: with two shards, both own some.
    for i in 0..20 {
        assert_eq!(ask(s.addr, &format!("INCR key{i}")), "1");
    }
    assert_eq!(ask(s.addr, "INCR key3"), "2");
    assert_eq!(ask(s.addr, "GET key3"), "2");
    assert_eq!(ask(s.addr, "GET never"), "0");
    assert_eq!(ask(s.addr, "SLOW 20"), "done");
    let digest = ask(s.addr, "HASH hello");
    assert!(
        digest.len() == 16 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "{digest}"
    );
    assert_eq!(
        ask(s.addr, "HASH hello"),
        digest,
        "the same text, the same hash"
    );
    assert!(ask(s.addr, "DANCE now").starts_with("ERR unknown command"));
    // Pipelined on one connection, a slow one first: answers in order.
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    c.write_all(b"SLOW 100\nINCR key3\r\nGET key3\nSLOW x\n")
        .unwrap();
    let mut r = BufReader::new(c);
    for want in ["done", "3", "3", "ERR not a number of milliseconds"] {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, format!("{want}\r\n"));
    }
}

/// Whether the server's end of the connection from `client_port` has read
/// everything sent to it (its receive queue in `/proc/net/tcp` is empty).
fn server_has_read(server_port: u16, client_port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port = |addr: &str| {
        addr.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 4
            && port(f[1]) == Some(server_port)
            && port(f[2]) == Some(client_port)
            && f[4]
                .rsplit(':')
                .next()
                .is_some_and(|rx| u64::from_str_radix(rx, 16) == Ok(0))
    })
}

#[test]
fn a_stop_lets_a_slow_request_finish() {
    let mut s = start();
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    c.write_all(b"SLOW 500\n").unwrap();
    // The request is being served when SIGTERM comes: the server has read
    // it (its socket's receive queue is empty) and answered nothing yet.
    let client_port = c.local_addr().unwrap().port();
    assert!(
        torsion_tests::wait_until(|| server_has_read(s.addr.port(), client_port)),
        "the server never read the request"
    );
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(s.child.id() as libc::pid_t, libc::SIGTERM) };
    let mut rest = String::new();
    c.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "done\r\n", "answered, then closed");
    assert!(s.child.wait().unwrap().success());
}

#[test]
fn the_readme_shows_these_programs_exactly() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    for file in ["src/main.rs", "src/bin/ask.rs"] {
        let source =
            std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let block = format!("```rust,no_run\n{source}```");
        assert!(
            readme.contains(&block),
            "the README's \"Writing a service\" shows examples/line-service/{file} as it is"
        );
    }
}

#[test]
fn ask_says_what_went_wrong_in_a_sentence() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = Command::new(env!("CARGO_BIN_EXE_ask"))
        .args([&format!("127.0.0.1:{port}"), "GET", "x"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        text.starts_with(&format!("ask: cannot connect to 127.0.0.1:{port}: ")),
        "{text}"
    );
    assert!(!text.contains("Os {"), "a Debug dump: {text}");

    let bad = Command::new(env!("CARGO_BIN_EXE_ask"))
        .args(["nonsense", "GET", "x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let text = String::from_utf8_lossy(&bad.stderr);
    assert!(
        text.starts_with("ask: \"nonsense\" is not HOST:PORT"),
        "{text}"
    );
}
