//! Faults anywhere in a connection's life end it once, with no panic and no
//! leak; panics in timers and bus handlers stay contained.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use bytes::BytesMut;
use torsion::{Bus, DisconnectReason, FnFactory, Protocol, Server, Transport};
use torsion_tests::*;

/// Echo that reports how its connection ended.
struct Reporting(mpsc::Sender<DisconnectReason>);

impl Protocol for Reporting {
    fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
        let _ = t.write_bytes(data.split().freeze());
    }
    fn connection_lost(&mut self, reason: &DisconnectReason) {
        let _ = self.0.send(reason.clone());
    }
}

fn reset(s: std::net::TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

#[test]
fn resets_before_any_read_and_during_shutdown_end_each_connection_once() {
    let (tx, rx) = mpsc::channel();
    let server = Server::builder()
        .listen_on(LOOPBACK)
        .unwrap()
        .drain_timeout(Duration::from_secs(5))
        .serve(move |_| {
            let tx = tx.clone();
            FnFactory(move |_peer| Some(Reporting(tx.clone())))
        })
        .unwrap();
    // Reset before sending anything.
    for _ in 0..20 {
        reset(connect(server.local_addr()));
    }
    // A connection reset while still in the accept queue is accepted but
    // gone (no protocol is built for it); every other one gets exactly one
    // connection_lost.
    // One snapshot where every accepted connection is accounted for: a
    // shard counts an acceptance before it finds the peer gone (refused),
    // and a served connection is open before it is counted closed.
    assert!(wait_until(|| {
        let t = server.total_stats();
        t.accepted == 20 && t.open_connections == 0 && t.served() == t.closed_total()
    }));
    let served = server.total_stats().served() as usize;
    let early: Vec<_> = (0..served)
        .map(|_| rx.recv_timeout(PATIENCE).unwrap())
        .collect();
    assert!(rx.try_recv().is_err(), "no second connection_lost");
    assert!(
        early
            .iter()
            .all(|r| *r == DisconnectReason::Reset || *r == DisconnectReason::Closed),
        "{early:?}"
    );
    // Reset while the server is draining: clients that never close by
    // themselves, reset once the shutdown has started.
    let held: Vec<_> = (0..10).map(|_| connect(server.local_addr())).collect();
    for c in &held {
        let mut c = c;
        c.write_all(b"hi").unwrap();
        let mut two = [0u8; 2];
        c.read_exact(&mut two).unwrap();
    }
    let trigger = server.trigger();
    trigger.shutdown();
    for c in held {
        // The drain sent FIN (end of stream); reset instead of closing.
        let mut c = c;
        let mut buf = [0u8; 8];
        let _ = c.read(&mut buf);
        reset(c);
    }
    server.join().unwrap();
    let late: Vec<_> = rx.try_iter().collect();
    assert_eq!(late.len(), 10, "exactly one connection_lost each: {late:?}");
    assert!(rx.try_recv().is_err());
}

#[test]
fn panics_in_timers_and_bus_handlers_are_contained() {
    let builder = Server::builder().listen_on(LOOPBACK).unwrap().shards(1);
    let bus: Bus<u32> = Bus::new(1).unwrap();
    let server = builder
        .serve(move |shard| {
            let handle = bus
                .attach(shard, |n| {
                    if n == 13 {
                        panic!("deliberate panic in a bus handler");
                    }
                })
                .unwrap();
            let clock = torsion::Clock::real();
            clock.call_later(Duration::from_millis(10), || {
                panic!("deliberate panic in a timer")
            });
            clock.call_later(Duration::from_millis(20), move || {
                handle.send_to(0, 13).unwrap();
                handle.send_to(0, 14).unwrap();
                std::mem::forget(handle);
            });
            FnFactory(|_peer| Some(torsion_protocols::Echo))
        })
        .unwrap();
    assert!(wait_until(|| server.total_stats().panics == 2));
    let mut c = connect(server.local_addr());
    assert_eq!(
        round_trip(&mut c, b"still serving").unwrap(),
        b"still serving"
    );
    server.stop().unwrap();
}
