//! torsion's echo server for the benchmark suite, in its own process like
//! the peers: `torsion-echo CORE` runs one shard on CORE, listens on
//! 127.0.0.1:0 and prints the port.

use torsion::{Policies, Server};
use torsion_protocols::EchoFactory;

fn main() {
    let core = torsion_benches::peer_core();
    let server = Server::builder()
        .listen_on("tcp:0:interface=127.0.0.1")
        .expect("endpoint")
        .cores(vec![core])
        .policies(Policies::default().with_max_connections(Some(1 << 20)))
        .serve(|_| EchoFactory)
        .expect("server");
    println!("{}", server.local_addr().port());
    server.join().expect("server ran");
}
