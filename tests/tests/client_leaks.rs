//! Failed client connections leave nothing behind: 10,000 refused
//! connects to a name and 500 TLS handshakes refused for their
//! certificate, then the process's descriptors are where they were. Alone
//! in its test binary: it counts the whole process's descriptors, which
//! another test running beside it would change.

use torsion_tests::*;

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn ten_thousand_failed_connects_leave_no_descriptor_behind() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let certs = Certs::new("client-leaks");
    let server = one_shard_echo(&certs.endpoint(&certs.key));
    let tls_port = server.local_addr().port();
    let other = Certs::new("client-leaks-other");
    let refused = torsion::ClientEndpoint::parse(&format!("tcp:localhost:{port}")).unwrap();
    let wrong_ca = torsion::ClientEndpoint::parse(&format!(
        "tls:localhost:{tls_port}:caCerts={}",
        other.cert.display()
    ))
    .unwrap();
    let (before, after) = torsion::block_on(async move {
        let attempt = |refusals: usize, handshakes: usize| {
            let (refused, wrong_ca) = (refused.clone(), wrong_ca.clone());
            async move {
                for _ in 0..refusals {
                    let e = torsion::client::connect(&refused).await.unwrap_err();
                    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
                }
                for _ in 0..handshakes {
                    let e = torsion::client::connect(&wrong_ca).await.unwrap_err();
                    assert!(e.to_string().contains("certificate was refused"), "{e}");
                }
            }
        };
        // One of each first (the blocking pool's threads start).
        attempt(1, 1).await;
        let before = open_fds();
        attempt(10_000, 500).await;
        // The client's sockets are closed when each attempt fails; the TLS
        // server's side (in this process too) closes when its shard sees
        // the client go, a moment later on a busy machine: wait for that,
        // up to the patience every test has.
        let deadline = std::time::Instant::now() + PATIENCE;
        while open_fds() > before && std::time::Instant::now() < deadline {
            torsion::Clock::real()
                .sleep(std::time::Duration::from_millis(5))
                .await;
        }
        (before, open_fds())
    })
    .unwrap();
    // Fewer is fine: a socket of the warm-up may close meanwhile.
    assert!(
        after <= before,
        "descriptors left open after the failures: {before} before, {after} after"
    );
    server.stop().unwrap();
}
