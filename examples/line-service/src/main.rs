//! A line service on every core: `INCR key` and `GET key` (each key's
//! counter lives on one shard), `SLOW ms` (answers after a timer) and
//! `HASH text` (worked out on the blocking pool). `line-service [ENDPOINT]`.
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use torsion::{Bus, BusError, Connection, ConnectionFn, Rpc, RpcMessage, Server};
use torsion_protocols::codec::LineCodec;

/// What a shard asks the shard that owns a key.
enum Op {
    Incr(String),
    Get(String),
}

/// Calls to the owners of the counters.
type Counters = Rpc<Op, i64>;

/// The shard that owns `key`.
fn owner(key: &str, shards: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % shards as u64) as usize
}

/// One connection, top to bottom: a line in, its answer out.
async fn serve(conn: Connection, counters: Rc<Counters>) {
    let mut lines = conn.framed(LineCodec::lf_or_crlf());
    while let Some(Ok(line)) = lines.next().await {
        let line = String::from_utf8_lossy(&line).into_owned();
        let shards = counters.shard_count();
        let reply = match line.split_once(' ') {
            Some(("INCR", key)) => counters
                .call(owner(key, shards), Op::Incr(key.into()))
                .await
                .map(|n| n.to_string()),
            Some(("GET", key)) => counters
                .call(owner(key, shards), Op::Get(key.into()))
                .await
                .map(|n| n.to_string()),
            Some(("SLOW", ms)) => match ms.parse() {
                Ok(ms) => {
                    lines
                        .connection()
                        .clock()
                        .sleep(Duration::from_millis(ms))
                        .await;
                    Ok("done".to_string())
                }
                Err(_) => Ok("ERR not a number of milliseconds".to_string()),
            },
            Some(("HASH", text)) => {
                let text = text.to_string();
                // Blocking work goes to the pool; this shard serves others meanwhile.
                let digest = torsion::defer_to_thread(move || {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    text.hash(&mut h);
                    h.finish()
                });
                Ok(digest
                    .await
                    .map_or_else(|e| format!("ERR {e}"), |d| format!("{d:016x}")))
            }
            _ => Ok(format!("ERR unknown command {line:?}")),
        };
        let reply = reply.unwrap_or_else(|e| format!("ERR {e}"));
        if lines.send(reply.as_bytes()).await.is_err() {
            break;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init(); // torsion's warnings and errors, on stderr
    let listen = std::env::args().nth(1);
    let listen = listen.as_deref().unwrap_or("tcp:7100:interface=127.0.0.1");
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let builder = Server::builder().listen_on(listen)?;
    let bus: Bus<RpcMessage<Op, i64>> = builder.bus()?; // one inbox per shard
    let server = builder.serve(move |shard| {
        // This shard's counters: only its own serve function touches them.
        let counts: RefCell<HashMap<String, i64>> = RefCell::default();
        let counters = Rpc::attach(&bus, shard, move |_from, op| {
            let mut counts = counts.borrow_mut();
            let value = match op {
                Op::Incr(key) => {
                    let n = counts.entry(key).or_insert(0);
                    *n += 1;
                    *n
                }
                Op::Get(key) => counts.get(&key).copied().unwrap_or(0),
            };
            std::future::ready(value)
        })?;
        Ok::<_, BusError>(ConnectionFn::new(move |conn| serve(conn, counters.clone())))
    })?;
    println!(
        "line-service: listening on {} ({} shards)",
        server.local_addr(),
        server.shard_count()
    );
    signals.forever().next(); // until Ctrl-C or SIGTERM: then requests in flight finish
    server.stop()?;
    Ok(())
}
