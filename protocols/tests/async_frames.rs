//! An async connection's frames, fed in every chunking from one byte up:
//! the same frames, in order, however the input is cut, a frame cut short
//! by EOF reported, and a pipeline answered in order while the future waits
//! between answers.

use std::time::Duration;

use bytes::Bytes;
use torsion::codec::FrameError;
use torsion::testing::ProtocolHarness;
use torsion::{AsyncProtocol, Connection, DisconnectReason};
use torsion_protocols::codec::{LineCodec, NetstringCodec};

/// Answers each frame as `[frame]`, a framing error as `error: …`.
async fn bracket(conn: Connection) {
    let mut lines = conn.framed(LineCodec::lf_or_crlf().max_length(8));
    while let Some(frame) = lines.next().await {
        let reply = match frame {
            Ok(line) => format!("[{}]", String::from_utf8_lossy(&line)),
            Err(e) => format!("error: {e}"),
        };
        if lines.send(reply.as_bytes()).await.is_err() {
            break;
        }
    }
}

const INPUT: &[u8] = b"one\ntwo\r\n\nthree\r\nfour-five-six\nseven\r\neigh";
const WANT: &str = "[one]\r\n[two]\r\n[]\r\n[three]\r\nerror: line longer than 8 bytes\r\n[seven]\r\nerror: the stream ended inside a frame (4 bytes left over)\r\n";

#[test]
fn every_chunking_gives_the_same_frames() {
    for chunk in 1..=INPUT.len() {
        let mut h = ProtocolHarness::new(AsyncProtocol::new(bracket));
        for piece in INPUT.chunks(chunk) {
            h.receive(piece);
        }
        h.receive_eof();
        let written = String::from_utf8(h.take_written()).unwrap();
        assert_eq!(written, WANT, "chunks of {chunk}");
        assert_eq!(h.lost_reason(), Some(&DisconnectReason::Closed));
    }
}

#[test]
fn netstrings_in_every_chunking() {
    let input: &[u8] = b"5:hello,0:,11:hello world,";
    for chunk in 1..=input.len() {
        let mut h = ProtocolHarness::new(AsyncProtocol::new(|conn: Connection| async move {
            let mut strings = conn.framed(NetstringCodec::new());
            let mut got: Vec<Bytes> = Vec::new();
            while let Some(Ok(s)) = strings.next().await {
                got.push(s);
            }
            let all: Vec<_> = got
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
            let _ = strings
                .connection()
                .transport()
                .write(all.join("|").as_bytes());
        }));
        for piece in input.chunks(chunk) {
            h.receive(piece);
        }
        h.receive_eof();
        assert_eq!(h.take_written(), b"hello||hello world", "chunks of {chunk}");
    }
}

#[test]
fn a_pipeline_is_answered_in_order_while_the_future_waits() {
    let mut h = ProtocolHarness::new(AsyncProtocol::new(|conn: Connection| async move {
        let mut lines = conn.framed(LineCodec::lf_or_crlf());
        while let Some(Ok(line)) = lines.next().await {
            lines
                .connection()
                .clock()
                .sleep(Duration::from_secs(1))
                .await;
            let _ = lines.send(&line).await;
        }
    }));
    h.receive(b"a\nb\nc\n");
    assert!(h.take_written().is_empty());
    // While it sleeps with input waiting, the connection reads no more.
    assert!(h.transport().is_reading_paused());
    for want in ["a\r\n", "b\r\n", "c\r\n"] {
        h.advance(Duration::from_secs(1));
        assert_eq!(String::from_utf8(h.take_written()).unwrap(), want);
    }
    assert!(!h.transport().is_reading_paused(), "asking again");
}

#[test]
fn a_frame_error_type_can_be_matched() {
    let mut h = ProtocolHarness::new(AsyncProtocol::new(|conn: Connection| async move {
        let mut lines = conn.framed(LineCodec::new().max_length(2));
        if let Some(Err(FrameError::LineTooLong { limit })) = lines.next().await {
            let _ = lines
                .send(format!("too long (limit {limit})").as_bytes())
                .await;
        }
    }));
    h.receive(b"abcdef\r\n");
    assert_eq!(h.take_written(), b"too long (limit 2)\r\n");
}
