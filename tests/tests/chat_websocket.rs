//! The chat server with a WebSocket listener beside its line listener, on
//! real sockets: a line client and a WebSocket client (torsion's own
//! `websocket::connect`) in one room across two shards; the page on a
//! plain GET.

use std::io::{BufRead, BufReader, Write};

use torsion_protocols::chat::{start_chat_server, ChatConfig};
use torsion_protocols::websocket::{self, CloseCode, Message, WsConfig};
use torsion_tests::{connect, http_get, two_loopback_listeners};

#[test]
fn a_line_client_and_a_websocket_client_chat_in_one_room() {
    let server =
        start_chat_server(two_loopback_listeners().shards(2), ChatConfig::default()).unwrap();
    let (lines_at, ws_at) = (server.local_addrs()[0], server.local_addrs()[1]);

    let mut liner = connect(lines_at);
    let mut liner_in = BufReader::new(liner.try_clone().unwrap());
    let mut read_line = || {
        let mut l = String::new();
        liner_in.read_line(&mut l).unwrap();
        l
    };
    assert_eq!(read_line(), "What's your name?\r\n");
    liner.write_all(b"liner\r\n").unwrap();
    assert_eq!(read_line(), "Welcome, liner!\r\n");

    let browser = std::thread::spawn(move || {
        torsion::block_on(async move {
            let mut ws = websocket::connect(&format!("ws://{ws_at}/"), &WsConfig::default())
                .await
                .unwrap();
            assert_eq!(ws_next(&mut ws).await, "What's your name?");
            ws.send_text("webby").await.unwrap();
            assert_eq!(ws_next(&mut ws).await, "Welcome, webby!");
            ws.send_text("hello from a browser ✓").await.unwrap();
            assert_eq!(ws_next(&mut ws).await, "<liner> hi back");
            ws.send_text("/who").await.unwrap();
            assert_eq!(ws_next(&mut ws).await, "Users: liner webby");
            ws.close(CloseCode::NORMAL, "bye").await.unwrap();
        })
        .unwrap();
    });
    assert_eq!(read_line(), "<webby> hello from a browser ✓\r\n");
    liner.write_all(b"hi back\r\n").unwrap();
    browser.join().unwrap();

    // The page, on the WebSocket listener.
    let (status, headers, body) = http_get(ws_at, "/");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(headers.contains("content-type: text/html"), "{headers}");
    assert!(body.contains("<title>torsion chat</title>"));
    server.stop().unwrap();
}

async fn ws_next(ws: &mut websocket::WebSocket) -> String {
    match ws.recv().await {
        Some(Ok(Message::Text(t))) => String::from_utf8(t.to_vec()).unwrap(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[test]
fn a_browser_over_the_connection_cap_gets_an_http_answer() {
    use std::io::Read;
    let server = start_chat_server(
        two_loopback_listeners()
            .shards(1)
            .policies(torsion::Policies::default().with_max_connections(Some(1))),
        ChatConfig::default(),
    )
    .unwrap();
    let (lines_at, ws_at) = (server.local_addrs()[0], server.local_addrs()[1]);
    // The one place is taken (a line client, greeted: it is in).
    let first = connect(lines_at);
    let mut greeting = String::new();
    BufReader::new(first.try_clone().unwrap())
        .read_line(&mut greeting)
        .unwrap();
    // Over the cap on each listener: its own protocol's goodbye.
    let mut browser = connect(ws_at);
    let mut answer = String::new();
    let _ = browser.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer:?}"
    );
    assert!(
        answer.ends_with("\r\n\r\nServer full, try again later.\n"),
        "{answer:?}"
    );
    let mut liner = connect(lines_at);
    let mut answer = String::new();
    let _ = liner.read_to_string(&mut answer);
    assert_eq!(answer, "Server full, try again later.\r\n");
    drop(first);
    server.stop().unwrap();
}
