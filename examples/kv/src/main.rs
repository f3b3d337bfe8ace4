//! `torsion-kv`: a sharded key-value server speaking RESP2, built on
//! torsion's app runner — thread-per-core sharding as Dragonfly and Seastar
//! do it. `torsion-kv serve kv --listen tcp:6380 --shards 2`.
//!
//! | file | what |
//! |---|---|
//! | `main.rs` | the runner with one app |
//! | `app.rs` | the app: a store per shard, an [`Rpc`](torsion::Rpc) between shards |
//! | `connection.rs` | a client connection: RESP in, replies out in order |
//! | `command.rs` | a command → which shard does what, Redis's error texts |
//! | `store.rs` | one shard's keys and what it does when asked |
//! | `metrics.rs` | the app's own metrics: commands, remote calls, keys per shard |

mod app;
mod command;
mod connection;
mod metrics;
mod store;

fn main() {
    torsion_app::Runner::new("torsion-kv")
        .about("A sharded key-value server speaking RESP2 (Redis's protocol)")
        .app(app::KvApp)
        .main()
}
