//! torsion's side of the HTTP bench: `torsion serve http`'s plaintext
//! route on one shard. `torsion-http CORE` pins the shard to CORE, listens
//! on 127.0.0.1:0 and prints the port.

use torsion::Server;
use torsion_protocols::http::{self, HttpConfig, Router};

fn main() {
    let core = torsion_benches::peer_core();
    let server = http::start_http_server(
        Server::builder()
            .listen_on("tcp:0:interface=127.0.0.1")
            .expect("endpoint")
            .cores(vec![core]),
        HttpConfig::default(),
        |_shard| Router::new().get("/plaintext", |_| http::text("Hello, World!")),
    )
    .expect("start");
    println!("{}", server.local_addr().port());
    server.join().expect("server");
}
