//! The chat in a real browser: Debian's Chromium, headless, driven by
//! puppeteer-core (npm): two pages and one line client chat through one
//! torsion chat server with a WebSocket listener; a screenshot of a page is
//! kept (`target/test-artefacts/chat.png`); then the server goes away and
//! comes back, and the page says so, reconnects and takes its name again.

use std::io::{BufRead, BufReader, Read};

use torsion::Server;
use torsion_protocols::chat::{start_chat_server, ChatConfig};
use torsion_tests::{ensure_node_packages, ensure_program};

#[test]
fn two_browser_pages_and_a_line_client_chat() {
    if !ensure_program("chromium", "chromium") {
        return;
    }
    let Some(dir) = ensure_node_packages() else {
        return;
    };
    let start = |lines: &str, page: &str| {
        start_chat_server(
            Server::builder()
                .listen_on(lines)
                .unwrap()
                .also_listen_on(page)
                .unwrap()
                .shards(2),
            ChatConfig::default(),
        )
        .unwrap()
    };
    let mut server = Some(start(
        "tcp:0:interface=127.0.0.1",
        "tcp:0:interface=127.0.0.1",
    ));
    let (lines, page) = {
        let s = server.as_ref().unwrap();
        (s.local_addrs()[0], s.local_addrs()[1])
    };
    let artefacts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let shot = artefacts.join("chat.png");
    let mut node = std::process::Command::new("node")
        .arg(dir.join("chat_browser.js"))
        .arg(format!("http://{page}/"))
        .arg(lines.port().to_string())
        .arg(&shot)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The script asks for the server to go away and come back.
    let mut said = Vec::new();
    for line in BufReader::new(node.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        match line.as_str() {
            "STOP" => server.take().unwrap().stop().unwrap(),
            "START" => {
                server = Some(start(
                    &format!("tcp:{}:interface=127.0.0.1", lines.port()),
                    &format!("tcp:{}:interface=127.0.0.1", page.port()),
                ))
            }
            _ => said.push(line),
        }
    }
    let status = node.wait().unwrap();
    let mut stderr = String::new();
    let _ = node.stderr.take().unwrap().read_to_string(&mut stderr);
    let said = said.join("\n");
    assert!(status.success(), "{said}\n{stderr}");
    assert!(said.contains("ok   screenshot kept"), "{said}");
    assert!(
        said.contains("ok   the page reconnected and took its name again"),
        "{said}"
    );
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
    if let Some(server) = server {
        server.stop().unwrap();
    }
}
