//! Failed HTTP client requests leave nothing behind: 10,000 of them — a
//! refused connection, a server that closes mid-body, a malformed
//! response, a TLS certificate refused — then the process's descriptors
//! are where they were and its resident memory has not grown with the
//! count. Alone in its test binary: it measures the whole process.

use std::io::{Read, Write};
use std::net::TcpListener;

use torsion_protocols::http::client::{ClientConfig, HttpClient};
use torsion_tests::*;

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A server thread answering every connection badly, by turns: half a
/// body then close, or garbage.
fn broken_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut s) = stream else { continue };
            let mut head = [0u8; 1024];
            let _ = s.read(&mut head);
            let answer: &[u8] = if i % 2 == 0 {
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf"
            } else {
                b"not http at all\r\n\r\n"
            };
            let _ = s.write_all(answer);
        }
    });
    addr
}

#[test]
fn ten_thousand_failed_requests_leave_no_descriptor_and_no_memory_behind() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://localhost:{}/", closed.local_addr().unwrap().port());
    drop(closed);
    let broken = format!("http://{}/", broken_server());
    let certs = Certs::new("http-client-leaks");
    let tls_server = one_shard_echo(&certs.endpoint(&certs.key));
    let untrusted = format!("https://localhost:{}/", tls_server.local_addr().port());
    let pid = std::process::id();
    let (before, after) = torsion::block_on(async move {
        let client = HttpClient::new(ClientConfig {
            connect_timeout: PATIENCE,
            first_byte_timeout: Some(PATIENCE),
            ..ClientConfig::default()
        });
        let fail = |n: usize, tls: usize| {
            let (client, refused, broken, untrusted) = (
                client.clone(),
                refused.clone(),
                broken.clone(),
                untrusted.clone(),
            );
            async move {
                for i in 0..n {
                    let url = if i % 2 == 0 { &refused } else { &broken };
                    let failed = match client.get(url).send().await {
                        Ok(r) => r.bytes().await.is_err(),
                        Err(_) => true,
                    };
                    assert!(failed, "request {i} to {url} succeeded");
                }
                for _ in 0..tls {
                    let e = client.get(&untrusted).send().await.unwrap_err();
                    assert!(e.to_string().contains("certificate was refused"), "{e}");
                }
            }
        };
        // A round first: the blocking pool's threads start, buffers grow
        // to their working size.
        fail(1_000, 50).await;
        let before = (open_fds(), rss_kib(pid));
        fail(10_000, 200).await;
        // The TLS server's side of each refused handshake closes when its
        // shard sees the client go: wait for that, up to PATIENCE.
        let deadline = std::time::Instant::now() + PATIENCE;
        while open_fds() > before.0 && std::time::Instant::now() < deadline {
            torsion::Clock::real()
                .sleep(std::time::Duration::from_millis(5))
                .await;
        }
        assert_eq!(client.pool_stats().open, 0, "{:?}", client.pool_stats());
        (before, (open_fds(), rss_kib(pid)))
    })
    .unwrap();
    assert!(
        after.0 <= before.0,
        "descriptors left open: {} before, {} after",
        before.0,
        after.0
    );
    // 10,000 requests that each kept even 1 KiB would add 10 MiB.
    assert!(
        after.1 <= before.1 + 4 * 1024,
        "resident memory grew from {} KiB to {} KiB",
        before.1,
        after.1
    );
    eprintln!(
        "fds {} → {}, RSS {} KiB → {} KiB",
        before.0, after.0, before.1, after.1
    );
    tls_server.stop().unwrap();
}
