//! The cross-shard bus on real shards: per-pair order, broadcast, and no
//! wake-ups while idle.

use std::sync::mpsc;
use std::time::Duration;

use torsion::{Bus, FnFactory, Server};
use torsion_protocols::Echo;
use torsion_tests::*;

const N: u64 = 5000;

#[test]
fn messages_arrive_in_send_order_and_idle_shards_use_no_cpu() {
    let builder = Server::builder().listen_on(LOOPBACK).unwrap();
    let bus: Bus<(usize, u64)> = builder.bus().unwrap();
    let shards = bus.shard_count();
    let (tx, rx) = mpsc::channel::<(usize, usize, u64)>();
    let observer = bus.clone();
    let server = builder
        .serve(move |shard| {
            let me = shard.id;
            let tx = tx.clone();
            let tx_done = tx.clone();
            let handle = bus
                .attach(shard, move |(from, n)| {
                    let _ = tx.send((me, from, n));
                })
                .unwrap();
            let count = shard.count;
            torsion::spawn_local(async move {
                // A send that cannot be queued is an error and not counted.
                let refused = handle.send_to(count, (me, 0));
                assert!(refused.is_err(), "{refused:?}");
                for n in 0..N {
                    handle.broadcast((me, n)).unwrap();
                }
                // And one to everyone, this shard included.
                handle.broadcast_all((me, N)).unwrap();
                // Every send (and its ring) is done.
                let _ = tx_done.send((me, usize::MAX, 0));
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
    let mut senders_done = 0;
    let mut received = 0;
    while received < total || senders_done < shards {
        let (to, from, n) = rx
            .recv_timeout(PATIENCE)
            .expect("a bus message went missing");
        if from == usize::MAX {
            senders_done += 1;
            continue;
        }
        assert_eq!(n, next[to][from], "shard {to} from {from}: out of order");
        next[to][from] += 1;
        received += 1;
    }
    for row in &next {
        assert!(row.iter().all(|&n| n == N + 1), "{next:?}");
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "no extra messages"
    );

    // The traffic counters (metrics) saw every message: each shard sent
    // (shards-1)·(N+1)+1 and received as many; nothing waits. A message
    // is counted before its handler runs, so this holds as soon as the
    // last one has been handed over.
    for s in observer.shard_stats() {
        assert_eq!(s.sent, per_shard, "{s:?}");
        assert_eq!(s.received, per_shard, "{s:?}");
        assert_eq!(s.inbox_depth, 0, "{s:?}");
    }

    // Idle: parked on the doorbell, a shard that nobody sends to does not
    // wake (a polling loop would wake thousands of times a second). Counted,
    // not timed: every sender has finished (its last ring included), so the
    // count can move by at most one — rings whose messages an earlier drain
    // already took leave bytes in the bell, and one wake-up reads them all.
    let woken: Vec<u64> = (0..shards).map(|s| observer.wake_ups(s).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(500));
    for (s, before) in woken.iter().enumerate() {
        let extra = observer.wake_ups(s).unwrap() - before;
        assert!(
            extra <= 1,
            "shard {s} woke {extra} times while the bus was idle"
        );
    }
    server.stop().unwrap();
}

#[test]
fn a_thread_that_is_no_shard_sends_in_order_and_wakes_parked_shards() {
    let builder = Server::builder().listen_on(LOOPBACK).unwrap();
    let bus: Bus<u64> = builder.bus().unwrap();
    let shards = bus.shard_count();
    let sender = bus.sender();
    let (tx, rx) = mpsc::channel::<(usize, u64)>();
    let observer = bus.clone();
    let server = builder
        .serve(move |shard| {
            let me = shard.id;
            let tx = tx.clone();
            let handle = bus
                .attach(shard, move |n| {
                    let _ = tx.send((me, n));
                })
                .unwrap();
            // The factory keeps the handle (and with it the receive loop).
            FnFactory(move |_peer| {
                let _ = &handle;
                Some(Echo)
            })
        })
        .unwrap();
    // Let every shard park on its doorbell first.
    assert!(wait_until(
        || (0..shards).all(|s| observer.wake_ups(s) == Some(0))
    ));
    std::thread::sleep(Duration::from_millis(50));
    let from_thread = std::thread::spawn(move || {
        for n in 0..N {
            sender.broadcast_all(n).unwrap();
        }
        sender.send_to(shards, 0).unwrap_err()
    });
    let err = from_thread.join().unwrap();
    assert_eq!(
        err,
        torsion::BusError::NoSuchShard {
            shard: shards,
            shards
        }
    );
    let mut next = vec![0u64; shards];
    for _ in 0..N * shards as u64 {
        let (shard, n) = rx.recv_timeout(PATIENCE).expect("a message went missing");
        assert_eq!(n, next[shard], "shard {shard}: out of order");
        next[shard] += 1;
    }
    assert!(wait_until(|| observer.shard_stats().iter().all(|s| s
        .received
        == N
        && s.sent == 0
        && s.inbox_depth == 0)));
    server.stop().unwrap();
}
