use bytes::BytesMut;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use torsion::{FnFactory, Protocol, Server, Transport};
use tracing_subscriber::EnvFilter;

struct Echo;

impl Protocol for Echo {
    fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
        let _ = t.write_bytes(data.split().freeze()); // no copy
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // torsion logs through `tracing`: without a subscriber its warnings (a
    // slow consumer cut, a contained panic, a lost reply) go nowhere.
    // RUST_LOG=debug for more.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let listen = std::env::args().nth(1);
    let listen = listen.as_deref().unwrap_or("tcp:7000:interface=127.0.0.1");
    // Block SIGINT/SIGTERM before the shards start, so they reach this thread.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let server = Server::builder()
        .listen_on(listen)? // Twisted's endpoint syntax
        .serve(|_shard| FnFactory(|_peer| Some(Echo)))?; // one shard per allowed core
    println!(
        "listening on {} ({} shards)",
        server.local_addr(),
        server.shard_count()
    );
    signals.forever().next(); // until Ctrl-C or SIGTERM
    let stats = server.total_stats(); // all shards: accepted, closed by reason, bytes…
    server.stop()?; // stop accepting, drain, join
    println!(
        "served {} connections, {} bytes",
        stats.accepted, stats.bytes_in
    );
    Ok(())
}
