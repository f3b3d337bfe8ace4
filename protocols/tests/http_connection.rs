//! The HTTP connection on the in-memory transport and the manual clock:
//! pipelining in every chunking, keep-alive and close, HEAD, the limits and
//! refusals with their statuses, the timeouts, 100-continue, the pipeline
//! bound and a panicking handler. (Async handlers and real clients are in
//! `tests/tests/http.rs`, on sockets.)

use std::rc::Rc;
use std::time::Duration;

use torsion::testing::ProtocolHarness;
use torsion_protocols::codec::testing::every_chunking;
use torsion_protocols::http::{self, HttpConfig, HttpConnection, Request, Router};

fn router() -> Router {
    Router::new()
        .get("/plaintext", |_| http::text("Hello, World!"))
        .post("/echo", |req: Request| http::text(req.into_body()))
        .get("/panic", |_| -> http::Response { panic!("handler bug") })
}

fn harness(config: HttpConfig) -> ProtocolHarness<HttpConnection> {
    ProtocolHarness::new(HttpConnection::new(Rc::new(router()), Rc::new(config)))
}

/// One response as written: status line, headers (names lowercased), body.
type Written = (String, Vec<(String, String)>, Vec<u8>);

/// Splits what the server wrote into responses, reading `Content-Length`
/// bodies.
fn responses(mut wire: &[u8]) -> Vec<Written> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let end = wire
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a whole head")
            + 4;
        let head = std::str::from_utf8(&wire[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_ascii_lowercase(), v.to_owned())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let body_len = if status.contains(" 100 ") || status.starts_with("HEAD") {
            0
        } else {
            len
        };
        out.push((status, headers, wire[end..end + body_len].to_vec()));
        wire = &wire[end + body_len..];
    }
    out
}

fn header<'a>(r: &'a Written, name: &str) -> Option<&'a str> {
    r.1.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn pipelined_requests_are_answered_in_order_in_every_chunking() {
    let wire = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n\
                 POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\
                 POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n\
                 GET /nope HTTP/1.1\r\nHost: a\r\n\r\n";
    every_chunking(wire, |chunks| {
        let mut h = harness(HttpConfig::default());
        for c in chunks {
            h.receive(c);
        }
        let written = h.take_written();
        let rs = responses(&written);
        let summary: Vec<(&str, &[u8])> = rs.iter().map(|r| (r.0.as_str(), &r.2[..])).collect();
        assert_eq!(
            summary,
            [
                ("HTTP/1.1 200 OK", &b"Hello, World!"[..]),
                ("HTTP/1.1 200 OK", b"abc"),
                ("HTTP/1.1 200 OK", b"xy"),
                ("HTTP/1.1 404 Not Found", b"404 Not Found\n"),
            ]
        );
        assert_eq!(header(&rs[0], "server"), Some("torsion"));
        assert_eq!(header(&rs[0], "content-type"), Some("text/plain"));
        assert!(header(&rs[0], "date").is_some());
        assert!(h.is_open(), "keep-alive by default for HTTP/1.1");
    });
}

#[test]
fn connection_close_and_http_1_0_end_the_connection_after_the_response() {
    let mut h = harness(HttpConfig::default());
    h.receive(b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    let rs = responses(&h.take_written());
    assert_eq!(
        rs.len(),
        1,
        "nothing after a Connection: close request is answered"
    );
    assert_eq!(header(&rs[0], "connection"), Some("close"));
    assert!(!h.is_open());

    let mut h = harness(HttpConfig::default());
    h.receive(b"GET /plaintext HTTP/1.0\r\n\r\n");
    assert_eq!(responses(&h.take_written()).len(), 1);
    assert!(
        !h.is_open(),
        "HTTP/1.0 closes unless keep-alive is asked for"
    );

    let mut h = harness(HttpConfig::default());
    h.receive(b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let rs = responses(&h.take_written());
    assert_eq!(header(&rs[0], "connection"), Some("keep-alive"));
    assert!(h.is_open());
}

#[test]
fn head_gets_the_get_headers_and_no_body() {
    let mut h = harness(HttpConfig::default());
    h.receive(
        b"HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let written = String::from_utf8(h.take_written()).unwrap();
    let (head_response, rest) = written.split_once("\r\n\r\n").unwrap();
    assert!(
        head_response.contains("Content-Length: 13"),
        "{head_response}"
    );
    assert!(
        rest.starts_with("HTTP/1.1 200 OK\r\n"),
        "no body after HEAD's head: {rest:?}"
    );
    assert!(rest.ends_with("\r\n\r\nHello, World!"));
}

#[test]
fn refusals_get_their_status_then_close() {
    let cases: &[(&[u8], &str)] = &[
        (b"GET / HTTP/1.1\nHost: a\n\n", "400"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "400"),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "400"),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "400"),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "400"),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", "400"),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n", "413"),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n", "413"),
        (b"DELETE /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "405"),
    ];
    for (wire, status) in cases {
        let mut h = harness(HttpConfig::default().with_max_body(1000));
        h.receive(wire);
        let written = String::from_utf8_lossy(&h.take_written()).into_owned();
        assert!(
            written.starts_with(&format!("HTTP/1.1 {status} ")),
            "{:?} → {written:?}",
            String::from_utf8_lossy(wire)
        );
        if *status != "405" {
            assert!(written.contains("Connection: close\r\n"), "{written}");
            assert!(!h.is_open(), "{:?}", String::from_utf8_lossy(wire));
        }
    }
    // 431: a head over the limit, and too many headers.
    let mut h = harness(HttpConfig::default().with_max_head(256));
    h.receive(b"GET / HTTP/1.1\r\nHost: a\r\nX: ");
    h.receive(&[b'a'; 300]);
    assert!(String::from_utf8_lossy(&h.take_written()).starts_with("HTTP/1.1 431 "));
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let mut h = harness(HttpConfig::default());
    h.receive(format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes());
    assert!(String::from_utf8_lossy(&h.take_written()).starts_with("HTTP/1.1 431 "));
}

#[test]
fn a_refusal_waits_for_the_responses_before_it() {
    let mut h = harness(HttpConfig::default());
    h.receive(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\nHost: a\n\n");
    let rs = responses(&h.take_written());
    let statuses: Vec<&str> = rs.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(statuses, ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"]);
}

#[test]
fn a_slow_head_gets_408_and_an_idle_connection_is_closed() {
    let config = HttpConfig::default()
        .with_request_timeout(Duration::from_secs(10))
        .with_keep_alive_timeout(Duration::from_secs(60));
    let mut h = harness(config.clone());
    h.advance(Duration::from_secs(5));
    h.receive(b"GET /plaintext HTTP/1.1\r\nHo");
    h.advance(Duration::from_secs(9));
    h.receive(b"st: a\r\n");
    assert!(
        h.is_open() && h.written().is_empty(),
        "within the request timeout"
    );
    h.advance(Duration::from_secs(1));
    assert!(String::from_utf8_lossy(&h.take_written()).starts_with("HTTP/1.1 408 "));
    assert!(!h.is_open());

    // Idle: closed quietly after the keep-alive timeout, counted from the
    // last response.
    let mut h = harness(config);
    h.advance(Duration::from_secs(50));
    h.receive(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    let _ = h.take_written();
    h.advance(Duration::from_secs(59));
    assert!(h.is_open(), "the first response restarted the idle count");
    h.advance(Duration::from_secs(1));
    assert!(!h.is_open());
    assert!(
        h.written().is_empty(),
        "no response to a request never made"
    );
}

#[test]
fn expect_100_continue_gets_an_interim_response_before_the_body() {
    let mut h = harness(HttpConfig::default());
    h.receive(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    assert_eq!(h.take_written(), b"HTTP/1.1 100 Continue\r\n\r\n");
    h.receive(b"ok");
    let rs = responses(&h.take_written());
    assert_eq!(
        (rs[0].0.as_str(), &rs[0].2[..]),
        ("HTTP/1.1 200 OK", &b"ok"[..])
    );
    // Too large: 413 at once, no 100.
    let mut h = harness(HttpConfig::default().with_max_body(1));
    h.receive(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&h.take_written()).starts_with("HTTP/1.1 413 "));
}

#[test]
fn a_panicking_handler_answers_500_and_the_connection_goes_on() {
    let mut h = harness(HttpConfig::default());
    h.receive(b"GET /panic HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    let rs = responses(&h.take_written());
    let statuses: Vec<&str> = rs.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        statuses,
        ["HTTP/1.1 500 Internal Server Error", "HTTP/1.1 200 OK"]
    );
    assert!(h.is_open());
}

#[test]
fn a_client_that_does_not_read_is_not_answered_without_bound() {
    // The peer stops reading: responses pile up to the transport's
    // high-water mark, and the pipeline bound stops reading requests.
    let mut h = harness(HttpConfig::default().with_max_pipeline(4));
    h.set_peer_reading(false);
    let one = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    let many: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
    h.receive(&many);
    let unread = h.unconsumed().len();
    assert!(
        unread > 0,
        "requests left in the input while the peer does not read"
    );
    h.set_peer_reading(true);
    let rs = responses(&h.take_written());
    assert_eq!(rs.len(), 1000, "every request answered once the peer reads");
    assert!(rs.iter().all(|r| r.2 == b"Hello, World!"));
}

#[test]
fn eof_after_complete_requests_answers_them_then_closes() {
    let mut h = harness(HttpConfig::default());
    h.receive(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /plai");
    h.receive_eof();
    let rs = responses(&h.take_written());
    assert_eq!(rs.len(), 1);
    assert!(!h.is_open());
}

#[test]
fn metrics_count_responses_by_class_and_time_requests_on_the_transport_clock() {
    use torsion::Factory;
    let metrics = http::HttpMetrics::new();
    let mut factory = http::HttpFactory::new(
        router(),
        HttpConfig::default().with_metrics(metrics.clone()),
    );
    let conn = factory
        .build_protocol("127.0.0.1:9".parse().unwrap())
        .unwrap();
    let mut h = ProtocolHarness::new(conn);
    h.advance(Duration::from_secs(3));
    h.receive(
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(responses(&h.take_written()).len(), 3);
    h.receive(b"BAD\r\n\r\n");
    assert!(String::from_utf8(h.take_written())
        .unwrap()
        .starts_with("HTTP/1.1 400"));
    let shards = metrics.shards();
    assert_eq!(shards.len(), 1, "the factory registered its shard");
    let stats = &shards[0].1;
    assert_eq!(stats.responses(2), 2);
    assert_eq!(stats.responses(4), 2, "the 404 and the refusal");
    assert_eq!(stats.responses(5), 0);
    // Published when the factory (and its recorder) goes.
    drop((h, factory));
    let durations = stats.request_durations();
    assert_eq!(durations.count(), 3, "refusals are not timed");
    // Dispatch and response happened at the same manual instant: the
    // clock read is the transport's, not the wall's.
    assert_eq!(durations.sum_seconds(), 0.0);
}
