#![no_main]
//! The HTTP connection (head scanner, httparse, the framing policy, the
//! body reader, the response queue) through the test kit: arbitrary bytes,
//! once in one piece and once in fuzzer-chosen chunks. No panic (a caught
//! one would end the connection with reason Panic), the two runs write the
//! same responses (the `Date` value aside), and what is written is whole
//! responses that httparse reads.

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use torsion::testing::ProtocolHarness;
use torsion::DisconnectReason;
use torsion_protocols::http::{self, HttpConfig, HttpConnection, Request, Router};

fn run(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
    let router = Router::new()
        .get("/", |_| http::text("root"))
        .post("/echo", |req: Request| http::text(req.into_body()));
    let config = HttpConfig::default()
        .with_max_head(512)
        .with_max_headers(8)
        .with_max_body(256)
        .with_max_pipeline(4);
    let mut h = ProtocolHarness::new(HttpConnection::new(Rc::new(router), Rc::new(config)));
    for c in chunks {
        h.receive(c);
    }
    assert_ne!(h.lost_reason(), Some(&DisconnectReason::Panic), "a callback panicked");
    (h.take_written(), h.is_open())
}

/// Blanks the `Date` values (they may differ by a second between runs).
fn without_dates(mut wire: Vec<u8>) -> Vec<u8> {
    let mut at = 0;
    while let Some(i) = wire[at..].windows(8).position(|w| w == b"\r\nDate: ") {
        let start = at + i + 8;
        let end = (start + 29).min(wire.len());
        for b in wire[start..end].iter_mut() {
            *b = b'-';
        }
        at = start;
    }
    wire
}

/// Checks that `wire` is a sequence of whole responses.
fn check_responses(mut wire: &[u8]) {
    while !wire.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Response::new(&mut headers);
        let n = match r.parse(wire) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("not a whole response head: {other:?}"),
        };
        let code = r.code.unwrap();
        let len: usize = r
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
            .unwrap_or(0);
        let body = if code == 100 { 0 } else { len };
        assert!(wire.len() >= n + body, "a response cut short");
        wire = &wire[n + body..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else { return };
    let mut chunks = Vec::new();
    let mut rest = stream;
    let mut s = usize::from(seed);
    while !rest.is_empty() {
        let n = (s % 13 + 1).min(rest.len());
        chunks.push(&rest[..n]);
        rest = &rest[n..];
        s = s.wrapping_mul(31).wrapping_add(7);
    }
    let (whole, open_whole) = run(&[stream]);
    let (pieces, open_pieces) = run(&chunks);
    assert_eq!(without_dates(whole.clone()), without_dates(pieces), "chunking changed the answer");
    assert_eq!(open_whole, open_pieces);
    check_responses(&whole);
});
