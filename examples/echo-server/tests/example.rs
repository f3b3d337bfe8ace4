//! The example is the README's library example, and it runs: it listens,
//! echoes, and stops on SIGINT with exit status 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

#[test]
fn the_readme_shows_this_program_exactly() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let main = std::fs::read_to_string(format!("{root}/examples/echo-server/src/main.rs")).unwrap();
    let block = format!("```rust,no_run\n{main}```");
    assert!(
        readme.contains(&block),
        "README's callback echo example and examples/echo-server differ"
    );
}

#[test]
fn it_echoes_until_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .arg("tcp:0:interface=127.0.0.1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{line:?}"));
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(torsion_tests::PATIENCE)).unwrap();
    c.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello");
    drop(c);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(
        rest.starts_with("served 1 connections, 5 bytes"),
        "{rest:?}"
    );
}
