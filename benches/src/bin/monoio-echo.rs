//! Peer for the benchmark suite: monoio (ByteDance's io_uring
//! thread-per-core runtime), built like monoio's own echo example: one
//! thread, a task per connection, owned buffers (`read` then `write_all`
//! of the same buffer). `monoio-echo CORE` pins itself to CORE, listens on
//! 127.0.0.1:0 and prints the port.

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};

fn main() {
    let core = torsion_benches::peer_core();
    core_affinity::set_for_current(core_affinity::CoreId { id: core });
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(256)
        .build()
        .expect("monoio io_uring runtime");
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        println!("{}", listener.local_addr().expect("addr").port());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            monoio::spawn(echo(stream));
        }
    });
}

/// Reads into an owned buffer and writes it back, until EOF or an error.
async fn echo(mut stream: TcpStream) {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        let (res, b) = stream.read(buf).await;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (res, b) = stream.write_all(b).await;
        if res.is_err() {
            return;
        }
        buf = b;
        buf.clear();
    }
}
