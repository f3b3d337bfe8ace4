//! The `links` app: `serve links [--db PATH] [--db-threads N]
//! [--check-timeout DURATION]`.
//!
//! One database pool for the process (its threads are shared by the
//! shards: SQLite allows one writer at a time anyway); one router and one
//! HTTP client per shard, so each shard keeps its own keep-alive
//! connections and nothing is locked.

use std::path::PathBuf;
use std::time::Duration;

use torsion::ServerHandle;
use torsion_app::{App, ServeContext};
use torsion_db::{ConnectionPool, Sqlite};
use torsion_protocols::http::client::{ClientConfig, HttpClient};
use torsion_protocols::http::{self, HttpConfig};

use crate::routes::routes;
use crate::store::Store;

/// `serve links`'s own flags.
#[derive(clap::Args)]
pub struct LinksFlags {
    /// The SQLite database file (created if missing).
    #[arg(long, default_value = "links.db")]
    db: PathBuf,
    /// Threads of the database pool (one connection each).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    db_threads: u16,
    /// How long a link check may take, whole (e.g. 5s, 500ms).
    #[arg(long, default_value = "10s", value_parser = torsion_app::args::parse_duration)]
    check_timeout: Duration,
}

/// The app.
pub struct LinksApp;

impl App for LinksApp {
    type Flags = LinksFlags;

    fn name(&self) -> &'static str {
        "links"
    }

    fn about(&self) -> &'static str {
        "An HTTP API that checks links and keeps them in SQLite"
    }

    fn default_listen(&self) -> &'static str {
        "tcp:8080:interface=127.0.0.1"
    }

    fn describe(&self, flags: &LinksFlags) -> String {
        format!("db={}", flags.db.display())
    }

    fn start(&self, flags: LinksFlags, ctx: ServeContext) -> anyhow::Result<ServerHandle> {
        let pool = ConnectionPool::new(Sqlite::file(&flags.db), flags.db_threads.into(), 256)
            .map_err(|e| anyhow::anyhow!("--db {}: {e}", flags.db.display()))?;
        let store = Store::new(pool);
        torsion::block_on(store.create())?
            .map_err(|e| anyhow::anyhow!("--db {}: {e}", flags.db.display()))?;
        let timeout = flags.check_timeout;
        Ok(http::start_http_server(
            ctx.builder,
            HttpConfig::default(),
            move |_shard| {
                let client = HttpClient::new(ClientConfig {
                    connect_timeout: timeout,
                    first_byte_timeout: Some(timeout),
                    timeout: Some(timeout),
                    ..ClientConfig::default()
                });
                routes(store.clone(), client)
            },
        )?)
    }
}
