//! `defer_to_thread` on real shards: results come back on the calling
//! shard, panics come back as errors, many calls complete.

use std::io::{Read, Write};

use bytes::BytesMut;
use torsion::{defer_to_thread, BlockingError, FnFactory, Protocol, Server, Transport};
use torsion_tests::*;

/// On each byte: computes on the pool, then replies from the shard:
/// `"<sum> <shard before> <shard after> <pool thread?>\n"`; `!` panics.
struct Offload;

impl Protocol for Offload {
    fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
        for &b in &data.split()[..] {
            let t = t.clone();
            let before = torsion::ShardInfo::current().unwrap().id;
            torsion::spawn_local(async move {
                let result = defer_to_thread(move || {
                    if b == b'!' {
                        panic!("deliberate panic on the pool");
                    }
                    let on_pool = std::thread::current()
                        .name()
                        .is_some_and(|n| n.starts_with("torsion-blocking"));
                    // Blocking work: sleep and sum.
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    ((0..=u64::from(b)).sum::<u64>(), on_pool)
                })
                .await;
                let after = torsion::ShardInfo::current().unwrap().id;
                let line = match result {
                    Ok((sum, on_pool)) => format!("{sum} {before} {after} {on_pool}\n"),
                    Err(BlockingError::Panicked(m)) => format!("panicked: {m}\n"),
                    Err(e) => format!("error: {e}\n"),
                };
                let _ = t.write(line.as_bytes());
            })
            .detach();
        }
    }
}

#[test]
fn results_arrive_on_the_calling_shard_and_panics_are_reported() {
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .serve(|_| FnFactory(|_peer| Some(Offload)))
        .unwrap();
    let mut clients: Vec<_> = (0..50).map(|_| connect(server.local_addr())).collect();
    for c in &mut clients {
        c.write_all(&[10, 20]).unwrap();
    }
    for c in &mut clients {
        let mut got = String::new();
        let mut buf = [0u8; 256];
        while got.matches('\n').count() < 2 {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0);
            got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        let mut sums = Vec::new();
        for line in got.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f[1], f[2], "resumed on the calling shard: {line}");
            assert_eq!(f[3], "true", "ran on a pool thread: {line}");
            sums.push(f[0].parse::<u64>().unwrap());
        }
        sums.sort();
        assert_eq!(sums, vec![55, 210]);
    }
    let mut c = connect(server.local_addr());
    c.write_all(b"!").unwrap();
    let mut buf = [0u8; 256];
    let n = c.read(&mut buf).unwrap();
    assert_eq!(
        std::str::from_utf8(&buf[..n]).unwrap(),
        "panicked: deliberate panic on the pool\n"
    );
    assert_eq!(server.total_stats().panics, 0, "the shard saw no panic");
    server.stop().unwrap();
}
