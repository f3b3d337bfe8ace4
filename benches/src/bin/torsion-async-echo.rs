//! torsion's echo written as an async loop over its connection (the same
//! driver and transport as `torsion-echo`'s callback `Protocol`), for the
//! benchmark suite: `torsion-async-echo CORE` runs one shard on CORE,
//! listens on 127.0.0.1:0 and prints the port.

use torsion::{Policies, Server};

fn main() {
    let core = torsion_benches::peer_core();
    let server = Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .expect("endpoint")
        .cores(vec![core])
        .policies(Policies::default().with_max_connections(Some(1 << 20)))
        .serve_fn(|mut conn| async move {
            while let Some(bytes) = conn.read().await {
                if conn.write_bytes(bytes).await.is_err() {
                    break;
                }
            }
        })
        .expect("server");
    println!("{}", server.local_addr().port());
    server.join().expect("server ran");
}
