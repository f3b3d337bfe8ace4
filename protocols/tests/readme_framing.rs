//! The README's framing and test-kit examples, as they are printed there,
//! compile and do what the README says.

use bytes::Bytes;
use torsion_protocols::{FrameHandler, FramedConnection, LineReceiver};

struct Shout;
impl FrameHandler for Shout {
    fn frame_received(&mut self, conn: &FramedConnection, line: Bytes) {
        match std::str::from_utf8(&line) {
            Ok(text) => {
                let _ = conn.send(text.to_uppercase().as_bytes());
            }
            Err(e) => {
                let _ = conn.send(format!("error: {e}").as_bytes());
            }
        }
    }
}

#[test]
fn the_harness_example_runs() {
    use std::time::Duration;
    use torsion::testing::ProtocolHarness;
    use torsion_protocols::LineReceiver;

    let mut h = ProtocolHarness::new(LineReceiver::new(Shout));
    h.receive(b"hel"); // any chunking
    h.receive(b"lo\r\n");
    assert_eq!(h.take_written(), b"HELLO\r\n");
    h.advance(Duration::from_secs(30)); // timers fire only when told
    h.receive_eof(); // the peer half-closes
    assert!(!h.is_open()); // default: flush and close
}

#[test]
fn invalid_utf8_gets_an_answer() {
    let mut h = torsion::testing::ProtocolHarness::new(LineReceiver::new(Shout));
    h.receive(b"ab\xffcd\r\n");
    assert_eq!(
        h.take_written(),
        b"error: invalid utf-8 sequence of 1 bytes from index 2\r\n"
    );
}

/// The README prints these blocks (the same tokens; `cargo fmt` lays this
/// file out its own way).
#[test]
fn the_readme_prints_these_examples() {
    let readme = include_str!("../../README.md");
    let source = include_str!("readme_framing.rs");
    let framing = source
        .split("\n\nstruct Shout;")
        .next()
        .and_then(|head| {
            head.split("//! compile and do what the README says.\n\n")
                .nth(1)
        })
        .unwrap();
    let shout: String = source
        .split("struct Shout;")
        .nth(1)
        .unwrap()
        .split("\n\n#[test]")
        .next()
        .unwrap()
        .into();
    let block = format!("{framing}\n\nstruct Shout;{shout}\n");
    let readme = squeeze(readme);
    assert!(
        readme.contains(&squeeze(&block)),
        "README's Shout example differs:\n{block}"
    );
    let harness = source
        .split("fn the_harness_example_runs() {\n")
        .nth(1)
        .unwrap()
        .split("\n}\n")
        .next()
        .unwrap();
    assert!(
        readme.contains(&squeeze(harness)),
        "README's harness example differs:\n{harness}"
    );
}

/// The text with every run of whitespace as one space.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
