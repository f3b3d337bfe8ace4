//! `torsion load echo --udp`: open-loop datagram echo load. Each "connection"
//! is a UDP socket with its own send schedule (as in the TCP open loop);
//! replies are matched to requests by the sequence number they carry, so
//! loss and reordering are told apart: a reply that never comes is counted
//! as lost, a duplicate as unexpected, a corrupted one as a mismatch.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use torsion::{ShardInfo, UdpSocket};

use super::echo::{EchoLoad, Rate};
use super::engine::{
    report_final_interval, sleep_until, spawn_ticker, Coordinator, Phases, Schedule,
};
use super::payload;
use super::recorder::Recorder;

type Pending = Rc<RefCell<HashMap<u64, (Instant, Instant)>>>;

/// One load shard of a UDP echo load.
pub async fn shard(info: ShardInfo, load: Arc<EchoLoad>, coord: Arc<Coordinator>) -> Recorder {
    let rec = Rc::new(RefCell::new(Recorder::default()));
    let Rate::PerSecond(rate) = load.rate else {
        coord.fail("UDP load is open loop: give --rate".into());
        return rec.borrow().clone();
    };
    let bind: SocketAddr = if load.targets[0].addr.is_ipv6() {
        "[::1]:0".parse().expect("literal")
    } else {
        "127.0.0.1:0".parse().expect("literal")
    };
    let mut sockets = Vec::new();
    for i in (info.id..load.connections).step_by(info.count) {
        match UdpSocket::bind(bind) {
            Ok(s) => sockets.push((i, Rc::new(s))),
            Err(e) => {
                coord.fail(format!("cannot open a UDP socket: {e}"));
                break;
            }
        }
    }
    let Some(phases) = coord.arrive().await else {
        return rec.borrow().clone();
    };
    let ticker = spawn_ticker(coord.clone(), phases, rec.clone());
    let mut pendings = Vec::new();
    let mut tasks = Vec::new();
    for (i, sock) in sockets {
        let pending: Pending = Rc::default();
        pendings.push(pending.clone());
        let schedule = Schedule::new(phases, rate, i, load.connections);
        let (l, r, c, p, s) = (
            load.clone(),
            rec.clone(),
            coord.clone(),
            pending.clone(),
            sock.clone(),
        );
        tasks.push(torsion::spawn_local(async move {
            send_loop(i, &s, &l, schedule, phases, &r, &c, &p).await
        }));
        let (l, r, p) = (load.clone(), rec.clone(), pending);
        tasks.push(torsion::spawn_local(async move {
            receive_loop(i, &sock, &l, phases, &r, &p).await
        }));
    }
    let all = async {
        for t in tasks {
            t.await;
        }
    };
    futures_lite::future::or(all, sleep_until(phases.end + load.drain)).await;
    let lost: usize = pendings.iter().map(|p| p.borrow().len()).sum();
    rec.borrow_mut().errors.lost += lost as u64;
    report_final_interval(&coord, ticker, &rec).await;
    let r = rec.borrow().clone();
    r
}

#[allow(clippy::too_many_arguments)]
async fn send_loop(
    conn: usize,
    sock: &UdpSocket,
    load: &EchoLoad,
    mut schedule: Schedule,
    phases: Phases,
    rec: &RefCell<Recorder>,
    coord: &Coordinator,
    pending: &Pending,
) {
    let mut buf = Vec::new();
    while let Some((seq, intended)) = schedule.next(coord).await {
        payload::fill(&mut buf, conn as u32, seq, load.size);
        pending.borrow_mut().insert(seq, (intended, Instant::now()));
        if intended >= phases.measure_from {
            rec.borrow_mut().sent += 1;
        }
        if let Err(e) = sock.send_to(&buf, load.targets[0].addr).await {
            rec.borrow_mut().errors.io_error(&e);
        }
    }
}

async fn receive_loop(
    conn: usize,
    sock: &UdpSocket,
    load: &EchoLoad,
    phases: Phases,
    rec: &RefCell<Recorder>,
    pending: &Pending,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, _from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(_) => {
                // An ICMP error for an earlier datagram (e.g. nobody is
                // listening): the request is lost, keep listening.
                rec.borrow_mut().errors.io += 1;
                continue;
            }
        };
        let now = Instant::now();
        let reply = &buf[..n];
        let Some(seq) = payload::sequence_of(reply) else {
            rec.borrow_mut().errors.mismatch += 1;
            continue;
        };
        let Some((intended, sent)) = pending.borrow_mut().remove(&seq) else {
            rec.borrow_mut().errors.unexpected += 1;
            continue;
        };
        let mut r = rec.borrow_mut();
        if !payload::matches(reply, conn as u32, seq, load.size) {
            r.errors.mismatch += 1;
        } else if intended >= phases.measure_from {
            r.record(now - intended, now - sent);
        }
    }
}
