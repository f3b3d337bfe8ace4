//! The scrape endpoint: `GET /metrics` over torsion's own HTTP protocol.
//!
//! [`serve_metrics`] starts a server of its own — one shard by default, on
//! whatever endpoint the builder names (`tcp:`, `tcp6:`, `tls:`) — whose
//! router answers `GET /metrics` (and `HEAD`) with [`Metrics::encode`] in
//! Prometheus's text format, and 404 elsewhere. The encoding runs on that
//! shard's thread and reads what the serving shards already publish (see
//! `torsion::metrics`): a scrape sends the serving shards nothing and takes
//! no lock they take on their hot paths.

use torsion::metrics::{Metrics, CONTENT_TYPE};
use torsion::{ServerBuilder, ServerError, ServerHandle};

use crate::http::{response, start_http_server, HttpConfig, Router, StatusCode};

/// The path scrapes use.
pub const METRICS_PATH: &str = "/metrics";

/// A router answering `GET /metrics` with `metrics`.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new().get(METRICS_PATH, move |_req| {
        response(StatusCode::OK, CONTENT_TYPE, metrics.encode())
    })
}

/// Serves `metrics` at `GET /metrics` on `builder`'s endpoint (one shard
/// unless the builder says otherwise; its thread is `torsion-metrics-0`, shown as `torsion-metrics` since Linux keeps 15 bytes).
pub fn serve_metrics(
    builder: ServerBuilder,
    metrics: Metrics,
) -> Result<ServerHandle, ServerError> {
    let builder = builder.thread_name("torsion-metrics");
    start_http_server(builder, HttpConfig::default(), move |_shard| {
        metrics_router(metrics.clone())
    })
}
