//! `torsion-kv serve kv`: the app the runner starts.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use clap::Args;
use torsion::{Bus, ConnectionFn, Factory, Rpc, RpcMessage, ServerHandle, ShardInfo};
use torsion_app::{App, ServeContext};

use crate::connection::{serve, ShardKv};
use crate::metrics::KvMetrics;
use crate::store::{Answer, Op, Store};

/// Every this many ops a shard serves, it also sweeps expired keys.
const SWEEP_EVERY: u32 = 256;

/// `serve kv` has no flags of its own.
#[derive(Debug, Args)]
pub struct KvFlags {}

/// The key-value server.
#[derive(Debug)]
pub struct KvApp;

/// On a shard: its store, served to the other shards over `bus`, and the
/// factory of its connections (each one [`serve`]s as a loop).
pub fn kv_factory(
    shard: &ShardInfo,
    bus: &Bus<RpcMessage<Op, Answer>>,
    metrics: &KvMetrics,
) -> Result<impl Factory, torsion::BusError> {
    let store = Rc::new(RefCell::new(Store::new()));
    let stats = metrics.register(shard.id);
    let served = store.clone();
    let counted = stats.clone();
    let ops = Cell::new(0u32);
    let rpc = Rpc::attach(bus, shard, move |_from, op| {
        let now = Instant::now();
        let mut store = served.borrow_mut();
        ops.set(ops.get().wrapping_add(1));
        if ops.get() % SWEEP_EVERY == 0 {
            store.sweep(now);
        }
        let answer = store.apply(op, now);
        counted.keys.set(store.len() as u64);
        std::future::ready(answer)
    })?;
    let shard_kv = Rc::new(ShardKv {
        store,
        rpc,
        shards: shard.count,
        stats,
    });
    Ok(ConnectionFn::new(move |conn| serve(conn, shard_kv.clone())))
}

impl App for KvApp {
    type Flags = KvFlags;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn about(&self) -> &'static str {
        "A key-value server speaking RESP2 (Redis's protocol); each key owned by one shard."
    }

    fn default_listen(&self) -> &'static str {
        "tcp:6380:interface=127.0.0.1"
    }

    fn start(&self, _flags: KvFlags, ctx: ServeContext) -> anyhow::Result<ServerHandle> {
        if ctx.endpoint.is_datagram() {
            anyhow::bail!("kv needs a tcp: or tls: endpoint");
        }
        let bus = ctx.builder.bus()?;
        let kv_metrics = KvMetrics::default();
        if let Some(metrics) = &ctx.metrics {
            metrics.register_bus("kv", &bus);
            metrics.register_collector(kv_metrics.clone());
        }
        Ok(ctx
            .builder
            .serve(move |shard| kv_factory(shard, &bus, &kv_metrics))?)
    }
}
