//! # torsion-db
//!
//! Blocking database work on threads of its own, awaited on a shard —
//! Twisted's `adbapi.ConnectionPool`. A shard never blocks on the database:
//! it hands the work to the pool and goes on serving; the answer comes
//! back as a future ([`DbCall`]). Each backend is a Cargo feature, so a
//! crate compiles only the one it uses: `sqlite` (the default, compiled
//! in) and `postgres`.
//!
//! | file | what | Twisted |
//! |---|---|---|
//! | `pool.rs` | [`ConnectionPool`]: N threads, one connection each, a bounded queue; [`DbCall`], the future of one call | `adbapi.ConnectionPool`, `runWithConnection` |
//! | `error.rs` | [`DbError`]: every way a call fails, as a sentence | — |
//! | `value.rs` | [`Value`]: one value in or out of any backend | — |
//! | `sqlite.rs` | (feature `sqlite`, default) [`Sqlite`]: `run_query`, `run_operation`, `run_interaction` | `runQuery`, `runOperation`, `runInteraction` |
//! | `postgres.rs` | (feature `postgres`) `Postgres`, `PgConnection`: the same three calls, prepared statements cached per connection, reconnect after a lost server | the same, with `cp_reconnect` |
//!
//! ```no_run
//! use torsion_db::{ConnectionPool, Sqlite, Value};
//!
//! let pool = ConnectionPool::new(Sqlite::file("app.db"), 2, 64)?;
//! torsion::block_on(async move {
//!     pool.run_operation("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)", vec![])
//!         .await?;
//!     pool.run_operation("INSERT OR REPLACE INTO kv VALUES (?1, ?2)", vec!["a".into(), "1".into()])
//!         .await?;
//!     let rows = pool.run_query("SELECT v FROM kv WHERE k = ?1", vec!["a".into()]).await?;
//!     assert_eq!(rows, vec![vec![Value::Text("1".into())]]);
//!     Ok::<_, torsion_db::DbError>(())
//! })??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod pool;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod value;

pub use error::DbError;
pub use pool::{Backend, ConnectionPool, DbCall, PoolStats, RECONNECT_BACKOFF};
#[cfg(feature = "postgres")]
pub use postgres::{PgConnection, Postgres, STATEMENT_CACHE};
#[cfg(feature = "sqlite")]
pub use sqlite::Sqlite;
pub use value::Value;
