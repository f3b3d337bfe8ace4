//! Peer for the HTTP bench: hyper 1.x on a tokio current-thread runtime,
//! built as hyper's own server examples (`http1::Builder` with
//! `pipeline_flush`, `TCP_NODELAY`), answering `GET /plaintext` with
//! `Hello, World!` and the TechEmpower headers (hyper writes `Date` itself).
//! `hyper-http CORE` pins itself to CORE, listens on 127.0.0.1:0 and prints
//! the port.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = if req.uri().path() == "/plaintext" {
        Response::builder()
            .header(CONTENT_TYPE, "text/plain")
            .header(SERVER, "hyper")
            .body(Full::new(Bytes::from_static(b"Hello, World!")))
    } else {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(SERVER, "hyper")
            .body(Full::new(Bytes::new()))
    };
    Ok(response.expect("a valid response"))
}

fn main() {
    torsion_benches::run_tokio_peer(|listener| async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(sock), service_fn(handle))
                    .await;
            });
        }
    });
}
