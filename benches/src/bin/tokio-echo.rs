//! Peer for the benchmark suite: a tokio current-thread echo server (the
//! usual read / write_all loop per connection). `tokio-echo CORE` pins
//! itself to CORE, listens on 127.0.0.1:0 and prints the port.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let core = torsion_benches::peer_core();
    core_affinity::set_for_current(core_affinity::CoreId { id: core });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("addr").port());
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(async move { torsion_benches::echo_until_closed!(sock, 16 * 1024) });
        }
    });
}
