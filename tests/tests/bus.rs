//! The cross-shard bus on real shards: per-pair order, broadcast, and no
//! busy polling while idle.

use std::sync::mpsc;
use std::time::Duration;

use torsion::{Bus, FnFactory, Server};
use torsion_protocols::Echo;
use torsion_tests::*;

const N: u64 = 5000;

#[test]
fn messages_arrive_in_send_order_and_idle_shards_use_no_cpu() {
    let builder = Server::builder().listen_on(LOOPBACK).unwrap();
    let shards = builder.planned_cores().unwrap().len();
    let bus: Bus<(usize, u64)> = Bus::new(shards).unwrap();
    let (tx, rx) = mpsc::channel::<(usize, usize, u64)>();
    let server = builder
        .serve(move |shard| {
            let me = shard.id;
            let tx = tx.clone();
            let handle = bus
                .attach(shard, move |(from, n)| {
                    let _ = tx.send((me, from, n));
                })
                .unwrap();
            torsion::spawn_local(async move {
                for n in 0..N {
                    handle.broadcast((me, n)).unwrap();
                }
                // And one to everyone, this shard included.
                handle.broadcast_all((me, N)).unwrap();
                // Keep the handle (and its receive loop) alive.
                std::future::pending::<()>().await;
            })
            .detach();
            FnFactory(|_peer| Some(Echo))
        })
        .unwrap();

    let per_shard = (shards as u64 - 1) * (N + 1) + 1;
    let total = per_shard * shards as u64;
    // Next number expected by `to` from `from`; a shard hears from itself
    // only the broadcast_all message, numbered N.
    let mut next: Vec<Vec<u64>> = (0..shards)
        .map(|to| {
            (0..shards)
                .map(|from| if to == from { N } else { 0 })
                .collect()
        })
        .collect();
    for _ in 0..total {
        let (to, from, n) = rx
            .recv_timeout(PATIENCE)
            .expect("a bus message went missing");
        assert_eq!(n, next[to][from], "shard {to} from {from}: out of order");
        next[to][from] += 1;
    }
    for row in &next {
        assert!(row.iter().all(|&n| n == N + 1), "{next:?}");
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "no extra messages"
    );

    // Idle: parked on the doorbell, the shards use (almost) no CPU. A
    // busy-polling loop would burn ~1 s of CPU per shard here.
    let tids: Vec<u64> = server.stats().iter().map(|s| s.thread_id).collect();
    let before: Vec<Duration> = tids.iter().map(|&t| thread_cpu(t)).collect();
    std::thread::sleep(Duration::from_secs(1));
    for (i, &t) in tids.iter().enumerate() {
        let used = thread_cpu(t) - before[i];
        assert!(
            used < Duration::from_millis(100),
            "shard {i} used {used:?} while idle"
        );
    }
    server.stop().unwrap();
}
