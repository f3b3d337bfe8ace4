//! The example service run as a user runs it: the `links` process on a
//! port of its own, links checked against a server of the test's (one that
//! answers, one port that refuses), the results read back as JSON, kept
//! across a restart in the SQLite file, and bad input refused.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};

use torsion_tests::{read_listening_line, ServerProcess, PATIENCE};

fn start(db: &std::path::Path) -> ServerProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_links"))
        .args([
            "serve",
            "links",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--shards",
            "2",
        ])
        .arg("--db")
        .arg(db)
        .args(["--check-timeout", "20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (addr, shards) = read_listening_line(child.stdout.take().unwrap());
    ServerProcess {
        child,
        addr,
        shards,
    }
}

/// One request (`Connection: close`); the status and the body.
fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim_end().to_string());
    (status, body.unwrap_or_default())
}

/// A server that answers every request with `hello` and closes.
fn target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut head = [0u8; 4096];
            let _ = s.read(&mut head);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        }
    });
    addr
}

#[test]
fn links_are_checked_stored_listed_and_kept_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("torsion-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("links.db");
    let target = target();
    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();

    let service = start(&db);
    let (status, body) = call(
        service.addr,
        "POST",
        "/links",
        &format!("http://{target}/page"),
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        body.contains(r#""status":200"#) && body.contains(r#""bytes":5"#),
        "{body}"
    );
    assert!(
        body.contains(r#""id":1"#) && body.contains(r#""error":null"#),
        "{body}"
    );
    let (status, body) = call(
        service.addr,
        "POST",
        "/links",
        &format!("http://{refused}/"),
    );
    assert_eq!(status, 201, "a failed check is a result: {body}");
    assert!(
        body.contains("cannot connect to") && body.contains("refused"),
        "{body}"
    );
    assert!(body.contains(r#""status":null"#), "{body}");
    let (status, body) = call(service.addr, "POST", "/links", "not a url");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not an absolute URL"), "{body}");
    let (status, body) = call(service.addr, "GET", "/links/1", "");
    assert_eq!(status, 200);
    assert!(body.contains(&format!("http://{target}/page")), "{body}");
    assert_eq!(call(service.addr, "GET", "/links/99", "").0, 404);
    assert_eq!(call(service.addr, "GET", "/links/x", "").0, 404);
    drop(service);

    // Restarted on the same file: everything is still there.
    let service = start(&db);
    let (status, body) = call(service.addr, "GET", "/links", "");
    assert_eq!(status, 200);
    assert!(
        body.starts_with('[') && body.matches(r#""id":"#).count() == 2,
        "{body}"
    );
    drop(service);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_database_that_cannot_be_opened_is_an_error_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_links"))
        .args(["serve", "links", "--listen", "tcp:0:interface=127.0.0.1"])
        .args(["--db", "/nonexistent-dir/links.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--db /nonexistent-dir/links.db: cannot open the sqlite database"),
        "{err}"
    );
}
