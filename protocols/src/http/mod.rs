//! HTTP/1.1 on every shard (Twisted's `twisted.web`): a torsion protocol,
//! per shard, no locks.
//!
//! | file | what | Twisted |
//! |---|---|---|
//! | `head.rs` | where a request head ends, `httparse` parsing, the framing and smuggling policy | `HTTPChannel.lineReceived`/`headerReceived` |
//! | `body.rs` | `Content-Length` and chunked request bodies, the body limit | `_ChunkedTransferDecoder` |
//! | `response.rs` | [`Body`] (whole or streamed), writing a response head, the `Date` cache | `Request.write`/`finish` |
//! | `router.rs` | [`Router`], [`Handler`], [`Reply`]: method + path → handler, sync or async | `Resource`, `Site` |
//! | `connection.rs` | [`HttpConnection`]: requests in, responses out in order, limits, timeouts | `HTTPChannel` |
//! | `metrics.rs` | [`HttpMetrics`]: responses by status class, request durations, per shard |
//! | `client/` | (feature `http-client`) [`client::HttpClient`]: requests from a shard, a per-shard pool | `Agent`, `HTTPConnectionPool` |
//! | `static_files.rs` | [`StaticDir`]: a directory, off the shard's thread, streamed, never outside its root | `static.File` |
//!
//! A server: [`start_http_server`] with a function that builds each shard's
//! [`Router`]:
//!
//! ```no_run
//! use torsion::Server;
//! use torsion_protocols::http::{self, HttpConfig, Reply, Router};
//!
//! let server = http::start_http_server(
//!     Server::builder().listen_on("tcp:8080:interface=127.0.0.1")?,
//!     HttpConfig::default(),
//!     |_shard| {
//!         Router::new()
//!             .get("/hello", |_req| http::text("Hello, World!"))
//!             .post("/echo", |req: http::Request| http::text(req.into_body()))
//!             .get("/slow", |_req| {
//!                 Reply::later(async {
//!                     let n = torsion::defer_to_thread(|| 6 * 7).await.unwrap_or(0);
//!                     http::text(format!("{n}\n"))
//!                 })
//!             })
//!     },
//! )?;
//! # server.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod body;
#[cfg(feature = "http-client")]
pub mod client;
mod connection;
mod head;
mod metrics;
mod response;
mod router;
mod static_files;

use std::net::SocketAddr;
use std::rc::Rc;

use torsion::{Factory, ServerBuilder, ServerError, ServerHandle, ShardInfo};

/// The `http` crate's types handlers meet, so users need not depend on it.
pub use ::http::{header, Method, StatusCode, Version};
pub use body::{BodyError, BodyReader};
pub use connection::{HttpConfig, HttpConnection};
pub use head::{parse_head, BodyFraming, HeadError, HeadScanner, RequestHead};
pub use metrics::{HttpMetrics, HttpShardStats};
#[cfg(feature = "websocket")]
pub(crate) use response::whole_response;
pub use response::{http_date, json, response, status_page, text, Body, BodyStream, Response};
pub use router::{Handler, Reply, Request, Router};
pub use static_files::StaticDir;

/// Builds [`HttpConnection`]s for one shard, all sharing its [`Router`].
pub struct HttpFactory {
    router: Rc<Router>,
    config: Rc<HttpConfig>,
    metrics: Option<Rc<metrics::ShardHttpMetrics>>,
}

impl HttpFactory {
    /// A factory answering with `router`. With metrics in `config`, call
    /// it on the shard it serves (the shard registers its counters).
    pub fn new(router: Router, config: HttpConfig) -> HttpFactory {
        let shard = torsion::ShardInfo::current().map_or(0, |s| s.id);
        HttpFactory {
            metrics: config.metrics.as_ref().map(|m| Rc::new(m.for_shard(shard))),
            router: Rc::new(router),
            config: Rc::new(config),
        }
    }
}

impl Factory for HttpFactory {
    type Protocol = HttpConnection;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<HttpConnection> {
        Some(
            HttpConnection::new(self.router.clone(), self.config.clone())
                .with_metrics(self.metrics.clone()),
        )
    }
}

/// Starts an HTTP server: `make_router` runs once on each shard, so the
/// handlers' state is per shard and needs no locks.
pub fn start_http_server<R>(
    builder: ServerBuilder,
    config: HttpConfig,
    make_router: R,
) -> Result<ServerHandle, ServerError>
where
    R: Fn(&ShardInfo) -> Router + Send + Sync + 'static,
{
    builder.serve(move |shard| HttpFactory::new(make_router(shard), config.clone()))
}
