//! Peer for the benchmark suite: the minimal glommio echo loop (accept,
//! spawn, read, write_all) — what torsion's layers cost on top of glommio.
//! `glommio-echo CORE` pins to CORE, listens on 127.0.0.1:0, prints the port.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::{LocalExecutorBuilder, Placement};

fn main() {
    let core = torsion_benches::peer_core();
    let ex = LocalExecutorBuilder::new(Placement::Fixed(core))
        .io_memory(64 * 1024)
        .make()
        .expect("glommio executor");
    ex.run(async {
        let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        println!("{}", listener.local_addr().expect("addr").port());
        loop {
            let Ok(mut sock) = listener.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            glommio::spawn_local(
                async move { torsion_benches::echo_until_closed!(sock, 16 * 1024) },
            )
            .detach();
        }
    });
}
