//! `serve http`: the TechEmpower routes, and a directory with `--dir`.

use anyhow::Context;
use clap::Args;
use torsion::ServerHandle;
use torsion_protocols::http::{start_http_server, HttpConfig, HttpMetrics, StaticDir};

use crate::cli::parse_size;
use torsion_app::{App, ServeContext};

/// `serve http`'s own flags.
#[derive(Debug, Args)]
pub struct HttpFlags {
    /// Serve the files under this directory too (Twisted's `twistd web
    /// --path`): index.html or a listing for directories, ETag and
    /// Last-Modified, single byte ranges; nothing outside it.
    #[arg(long, value_name = "PATH")]
    pub dir: Option<std::path::PathBuf>,

    /// Largest request body in bytes (e.g. 1MiB); larger ones get 413 and
    /// the connection is closed.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_size)]
    pub max_body: usize,
}

/// The HTTP server.
#[derive(Debug)]
pub struct HttpApp;

impl App for HttpApp {
    type Flags = HttpFlags;

    fn name(&self) -> &'static str {
        "http"
    }

    fn about(&self) -> &'static str {
        "HTTP/1.1: GET /plaintext and GET /json (the TechEmpower tests), and --dir."
    }

    fn default_listen(&self) -> &'static str {
        "tcp:8080:interface=127.0.0.1"
    }

    fn start(&self, flags: HttpFlags, ctx: ServeContext) -> anyhow::Result<ServerHandle> {
        if ctx.endpoint.is_datagram() {
            anyhow::bail!("http needs a tcp: or tls: endpoint");
        }
        let mut config = HttpConfig::default().with_max_body(flags.max_body);
        if let Some(metrics) = &ctx.metrics {
            let http_metrics = HttpMetrics::new();
            metrics.register_collector(http_metrics.clone());
            config = config.with_metrics(http_metrics);
        }
        let dir = match &flags.dir {
            Some(path) => Some(
                StaticDir::new(path)
                    .with_context(|| format!("bad --dir \"{}\"", path.display()))?,
            ),
            None => None,
        };
        Ok(start_http_server(ctx.builder, config, move |_shard| {
            crate::http_site::router(dir.as_ref())
        })?)
    }
}
