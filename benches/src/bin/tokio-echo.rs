//! Peer for the benchmark suite: a tokio current-thread echo server (the
//! usual read / write_all loop per connection). `tokio-echo CORE` pins
//! itself to CORE, listens on 127.0.0.1:0 and prints the port.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    torsion_benches::run_tokio_peer(|listener| async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(async move { torsion_benches::echo_until_closed!(sock, 16 * 1024) });
        }
    });
}
