//! Awaited calls between real shards: `Rpc` with serve functions that
//! wait, `invoke_on` and `map_reduce`, what a call to a stopped shard gets,
//! and a drain that lets a cross-shard call in flight finish.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use torsion::{Bus, BusError, ConnectionFn, Rpc, RpcError, RpcMessage, Server};
use torsion_protocols::codec::LineCodec;
use torsion_tests::*;

fn cores() -> Vec<usize> {
    torsion::cores::allowed_cores().unwrap()
}

/// Two pool shards (the same core twice if only one is allowed).
fn two_shards() -> Vec<usize> {
    let c = cores();
    vec![c[0], *c.get(1).unwrap_or(&c[0])]
}

/// Counts this shard done, then waits until both are (a pool shard that
/// returns stops serving the other).
async fn both_done(done: &AtomicUsize) {
    done.fetch_add(1, Ordering::SeqCst);
    while done.load(Ordering::SeqCst) < 2 {
        torsion::Clock::real().sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn many_calls_in_flight_to_a_serve_function_that_waits() {
    let bus: Bus<RpcMessage<u64, (usize, u64)>> = Bus::new(2).unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let results = torsion::run_on_cores(&two_shards(), move |shard| {
        let (bus, answered) = (bus.clone(), answered.clone());
        async move {
            // Each shard answers with its id after sleeping `ms`.
            let rpc = Rpc::attach(&bus, &shard, move |_from, ms: u64| async move {
                torsion::Clock::real()
                    .sleep(Duration::from_millis(ms))
                    .await;
                (shard.id, ms)
            })
            .unwrap();
            let other = 1 - shard.id;
            // Longest first: they complete out of order, each with its own
            // answer.
            let calls: Vec<_> = [60u64, 40, 20, 0]
                .iter()
                .map(|&ms| rpc.call(other, ms))
                .collect();
            let mut answers = Vec::new();
            for call in calls {
                answers.push(call.await.unwrap());
            }
            // Stay until the other shard's calls are answered too.
            both_done(&answered).await;
            answers
        }
    })
    .unwrap();
    for (me, answers) in results.iter().enumerate() {
        let other = 1 - me;
        assert_eq!(
            answers,
            &vec![(other, 60), (other, 40), (other, 20), (other, 0)]
        );
    }
}

#[test]
fn invoke_on_and_map_reduce_reach_every_shard() {
    let answered = Arc::new(AtomicUsize::new(0));
    let out = torsion::run_on_cores(&two_shards(), move |shard| {
        let answered = answered.clone();
        async move {
            let theirs = torsion::invoke_on(1 - shard.id, || async {
                torsion::ShardInfo::current().unwrap().id
            })
            .await
            .unwrap();
            let ids = torsion::map_reduce(
                |s| async move { vec![s.id] },
                Vec::new(),
                |mut a, b| {
                    a.extend(b);
                    a
                },
            )
            .await
            .unwrap();
            // Stay until the other shard has its answers too.
            both_done(&answered).await;
            (theirs, ids)
        }
    })
    .unwrap();
    assert_eq!(out, vec![(1, vec![0, 1]), (0, vec![0, 1])]);
    // On a single executor, invoking on itself.
    let own = torsion::block_on(async { torsion::invoke_on(0, || async { 6 * 7 }).await }).unwrap();
    assert_eq!(own, Ok(42));
}

#[test]
fn a_panic_in_an_invoked_future_comes_back_as_an_error() {
    let out = torsion::block_on(async {
        torsion::invoke_on(0, || async {
            if torsion::ShardInfo::current().is_some() {
                panic!("deliberate panic on the other side");
            }
        })
        .await
    })
    .unwrap();
    assert_eq!(
        out,
        Err(RpcError::Panicked(
            "deliberate panic on the other side".into()
        ))
    );
}

#[test]
fn calls_to_a_shard_that_has_stopped_get_stopped() {
    let bus: Bus<RpcMessage<u8, u8>> = Bus::new(2).unwrap();
    let finished = Arc::new(AtomicBool::new(false));
    let out = torsion::run_on_cores(&two_shards(), move |shard| {
        let (bus, finished) = (bus.clone(), finished.clone());
        async move {
            let rpc = Rpc::attach(&bus, &shard, |_, x| std::future::ready(x)).unwrap();
            if shard.id == 1 {
                // Stop at once: its executor ends with this future.
                finished.store(true, Ordering::SeqCst);
                return (None, None);
            }
            while !finished.load(Ordering::SeqCst) {
                torsion::Clock::real().sleep(Duration::from_millis(1)).await;
            }
            let by_rpc = rpc.call(1, 7).await;
            let by_invoke = torsion::invoke_on(1, || async { 1 }).await;
            (Some(by_rpc), Some(by_invoke))
        }
    })
    .unwrap();
    assert_eq!(out[0].0, Some(Err(RpcError::Stopped(1))));
    assert_eq!(out[0].1, Some(Err(RpcError::Stopped(1))));
}

/// A line server whose every line is answered by shard `line % shards`
/// after 300 ms (a slow owner): the client's request is in flight on
/// another shard when the server stops.
#[test]
fn a_drain_lets_a_call_to_another_shard_finish() {
    let builder = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .drain_timeout(Duration::from_secs(20));
    let shards = builder.planned_cores().unwrap().len();
    let bus: Bus<RpcMessage<u8, String>> = builder.bus().unwrap();
    let server = builder
        .serve(move |shard| {
            let served = Rc::new(Cell::new(0u32));
            let rpc = Rpc::attach(&bus, shard, move |from, n: u8| {
                let served = served.clone();
                async move {
                    torsion::Clock::real()
                        .sleep(Duration::from_millis(300))
                        .await;
                    served.set(served.get() + 1);
                    format!(
                        "{n} served by shard {} for shard {from}",
                        torsion::ShardInfo::current().unwrap().id
                    )
                }
            })?;
            Ok::<_, BusError>(ConnectionFn::new(move |conn: torsion::Connection| {
                let rpc = rpc.clone();
                async move {
                    let mut lines = conn.framed(LineCodec::lf_or_crlf());
                    while let Some(Ok(line)) = lines.next().await {
                        let n: u8 = std::str::from_utf8(&line).unwrap().parse().unwrap();
                        let owner = (n as usize + 1) % rpc.shard_count();
                        let answer = match rpc.call(owner, n).await {
                            Ok(a) => a,
                            Err(e) => format!("error: {e}"),
                        };
                        let _ = lines.send(answer.as_bytes()).await;
                    }
                }
            }))
        })
        .unwrap();
    let c = connect(server.local_addr());
    let mut r = BufReader::new(c.try_clone().unwrap());
    (&c).write_all(b"4\n").unwrap();
    assert!(wait_until(|| server.total_stats().bytes_in >= 2));
    let stopping = std::thread::spawn(move || server.stop());
    let mut answer = String::new();
    r.read_line(&mut answer).unwrap();
    let owner = (4 + 1) % shards;
    assert!(
        answer.starts_with(&format!("4 served by shard {owner} for shard ")),
        "{answer:?}"
    );
    let mut rest = String::new();
    assert_eq!(r.read_line(&mut rest).unwrap(), 0, "then closed: {rest:?}");
    stopping.join().unwrap().unwrap();
}
