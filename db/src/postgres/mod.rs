//! PostgreSQL through the `postgres` crate (a Rust client, no libpq):
//! [`Postgres`] opens one connection per pool thread; `run_query`,
//! `run_operation` and `run_interaction` are Twisted's `runQuery`,
//! `runOperation` and `runInteraction`, as for SQLite.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Postgres`] (where, and the timeouts), [`PgConnection`] (a client and its statements), the three calls |
//! | `values.rs` | [`Value`] as parameters and columns |
//! | `errors.rs` | errors as sentences; a lost session told from a refused statement |
//!
//! # Design
//!
//! - **Statements are prepared once per connection** and kept (up to
//!   [`STATEMENT_CACHE`] per connection, then the cache starts again): a
//!   point query is then one round trip, not two. A cached statement can
//!   go stale: a schema change alters its result columns ("cached plan
//!   must not change result type", raised while the server revalidates it)
//!   or its parameter types, or `DISCARD ALL` drops it from the session.
//!   Each of these fails before the statement runs, and only these make
//!   the connection drop it, prepare it again and run it once more;
//!   nothing that may have run is ever retried.
//! - **Timeouts**: `lock_timeout` (default 5 s, like SQLite's busy
//!   timeout) so a statement waiting on another session's lock fails with
//!   PostgreSQL's "canceling statement due to lock timeout" instead of
//!   holding a pool thread; an optional `statement_timeout`; a connect
//!   timeout (10 s unless the connection string says otherwise) on each
//!   socket connect; `tcp_user_timeout` 30 s and keepalives after 60 s
//!   idle unless the string says otherwise, so a server that vanished
//!   without a word (a half-open connection) fails the call in about half a
//!   minute instead of TCP's quarter of an hour. The `postgres` crate has no
//!   bound on the startup exchange itself: a server that accepts and then
//!   says nothing holds the connecting thread.
//! - **A session that ends** (the server shut down or restarted, a
//!   `FATAL`) fails the call that finds it with
//!   [`DbError::ConnectionLost`]; the pool's thread opens a new connection
//!   before its next call ([`Backend::is_usable`]).
//! - **TLS** to the server is not built: connections are plain TCP or a
//!   Unix socket (`host=/run/postgresql`; with no host at all, Debian's
//!   `/var/run/postgresql`), and `sslmode=require` fails the pool with the
//!   client's TLS error.

mod errors;
mod values;

use std::collections::HashMap;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Statement};

use self::errors::{classify, ends_the_session, sentence};
use self::values::{readable, ParamRefused};
use crate::error::DbError;
use crate::pool::{Backend, ConnectionPool, DbCall};
use crate::value::Value;

/// How many prepared statements one connection keeps.
pub const STATEMENT_CACHE: usize = 256;

/// A PostgreSQL database, by a libpq connection string or URL.
#[derive(Clone)]
pub struct Postgres {
    config: postgres::Config,
    target: String,
    lock_timeout: Duration,
    statement_timeout: Duration,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the config: it may hold a password.
        f.debug_struct("Postgres")
            .field("target", &self.target)
            .field("lock_timeout", &self.lock_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// The keepalive idle time the `postgres` crate uses when told nothing.
const CRATE_KEEPALIVE_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

impl Postgres {
    /// The database `conninfo` names: `host=127.0.0.1 port=5432
    /// user=app dbname=app` or `postgresql://app@127.0.0.1/app` (libpq's
    /// two forms; `host=/run/postgresql` is a Unix socket directory). The
    /// module docs list the timeouts that apply unless the string sets its
    /// own.
    pub fn new(conninfo: &str) -> Result<Postgres, DbError> {
        let mut config: postgres::Config = conninfo.parse().map_err(|e| DbError::Connect {
            backend: "postgres",
            target: "(connection string)".into(),
            problem: format!(
                "the connection string cannot be read ({}); write it as \
                 \"host=H port=P user=U dbname=D\" or postgresql://U@H:P/D",
                sentence(&e)
            ),
        })?;
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            config.host_path("/var/run/postgresql");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        if config.get_keepalives_idle() == CRATE_KEEPALIVE_IDLE {
            config.keepalives_idle(Duration::from_secs(60));
        }
        let target = describe(&config);
        Ok(Postgres {
            config,
            target,
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::ZERO,
        })
    }

    /// How long a statement waits for a lock another session holds
    /// (default 5 s; zero waits for ever, PostgreSQL's own default).
    pub fn lock_timeout(mut self, d: Duration) -> Postgres {
        self.lock_timeout = d;
        self
    }

    /// How long a statement may run before the server cancels it (default
    /// zero: no bound, PostgreSQL's own default).
    pub fn statement_timeout(mut self, d: Duration) -> Postgres {
        self.statement_timeout = d;
        self
    }
}

/// `d` as PostgreSQL's milliseconds: rounded up (so a bound under a
/// millisecond stays a bound, not zero's "for ever"), at most `i32::MAX`.
fn millis(d: Duration) -> u128 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    ms.min(i32::MAX as u128)
}

/// Where a config points, for errors (never its password).
fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => config
            .get_hostaddrs()
            .first()
            .map_or_else(|| "(no host)".into(), |a| a.to_string()),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("(the login user)");
    let db = config.get_dbname().unwrap_or(user);
    format!("{db} on {host}:{port} as {user}")
}

/// One pool thread's connection: the client and its prepared statements.
pub struct PgConnection {
    client: Client,
    statements: HashMap<String, Statement>,
    /// A call found the session over (the client may not know yet).
    ended: bool,
}

impl PgConnection {
    /// The `postgres` client, for work of one's own
    /// ([`ConnectionPool::run_with`]).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// `e` as a [`DbError`]; a lost session is remembered, so the pool's
    /// thread reconnects before the next call.
    fn fail(&mut self, e: postgres::Error) -> DbError {
        let lost = ends_the_session(&e, self.client.is_closed());
        self.ended |= lost;
        classify(e, lost)
    }

    /// `sql` prepared, from the cache when it is there; and whether it was.
    fn statement(&mut self, sql: &str) -> Result<(Statement, bool), DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok((s.clone(), true));
        }
        let s = self.client.prepare(sql).map_err(|e| self.fail(e))?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), s.clone());
        Ok((s, false))
    }

    /// Runs `run` with `sql` prepared. A cached statement that turns out
    /// stale (see the module docs) is prepared again and run once more;
    /// with `columns_checked`, one whose columns `Value` cannot hold is
    /// refused (and not kept) before it runs.
    fn with_statement<R>(
        &mut self,
        sql: &str,
        columns_checked: bool,
        run: impl Fn(&mut Client, &Statement) -> Result<R, postgres::Error>,
    ) -> Result<R, DbError> {
        let mut retried = false;
        loop {
            let (stmt, cached) = self.statement(sql)?;
            let again = cached && !retried;
            if columns_checked {
                if let Some(refusal) = unreadable_column(&stmt) {
                    self.statements.remove(sql);
                    if again {
                        retried = true;
                        continue;
                    }
                    return Err(refusal);
                }
            }
            match run(&mut self.client, &stmt) {
                Ok(answer) => return Ok(answer),
                Err(e) if again && stale(&e) => {
                    self.statements.remove(sql);
                    retried = true;
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
    }
}

/// Whether `e` says a cached statement is out of date, and nothing ran: a
/// parameter refused for a type the statement fixed when it was prepared,
/// the statement gone from the session (`26000`), or the server's
/// revalidation refusing a changed result type (`0A000`, raised in
/// `RevalidateCachedQuery`, before execution).
fn stale(e: &postgres::Error) -> bool {
    if std::error::Error::source(e).is_some_and(|c| c.is::<ParamRefused>()) {
        return true;
    }
    e.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::INVALID_SQL_STATEMENT_NAME
            || (*db.code() == SqlState::FEATURE_NOT_SUPPORTED
                && db.routine() == Some("RevalidateCachedQuery"))
    })
}

/// The refusal of a statement with a column `Value` cannot hold.
fn unreadable_column(stmt: &Statement) -> Option<DbError> {
    let col = stmt.columns().iter().find(|c| !readable(c.type_()))?;
    Some(DbError::failed(format!(
        "column `{name}` is of type {ty}, which torsion_db::Value does not hold: \
         convert it to text in the query (e.g. `SELECT created::text`, \
         `SELECT now()::text AS {name}`)",
        name = col.name(),
        ty = col.type_()
    )))
}

impl Backend for Postgres {
    type Connection = PgConnection;

    fn connect(&self) -> Result<PgConnection, DbError> {
        let failed = |e: postgres::Error| DbError::Connect {
            backend: "postgres",
            target: self.target.clone(),
            problem: sentence(&e),
        };
        let mut client = self.config.connect(NoTls).map_err(failed)?;
        client
            .batch_execute(&format!(
                "SET lock_timeout = {}; SET statement_timeout = {}",
                millis(self.lock_timeout),
                millis(self.statement_timeout)
            ))
            .map_err(failed)?;
        Ok(PgConnection {
            client,
            statements: HashMap::new(),
            ended: false,
        })
    }

    fn is_usable(&self, conn: &mut PgConnection) -> bool {
        !conn.ended && !conn.client.is_closed()
    }
}

/// The parameters as the `postgres` crate takes them.
fn as_params(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// Every row `stmt` returns with `params`, each row its columns' values.
fn query(
    client: &mut Client,
    stmt: &Statement,
    params: &[Value],
) -> Result<Vec<Vec<Value>>, postgres::Error> {
    let rows = client.query(stmt, &as_params(params))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut values = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            values.push(row.try_get::<_, Value>(i)?);
        }
        out.push(values);
    }
    Ok(out)
}

/// Why an interaction failed: the client, or the caller's work.
enum InteractionFailure {
    Client(postgres::Error),
    Work(DbError),
}

impl ConnectionPool<Postgres> {
    /// The rows `sql` selects, with `$1`, `$2` … bound to `params`
    /// (Twisted's `runQuery`).
    pub fn run_query(&self, sql: impl Into<String>, params: Vec<Value>) -> DbCall<Vec<Vec<Value>>> {
        let sql = sql.into();
        self.run_with(move |conn| {
            conn.with_statement(&sql, true, |client, stmt| query(client, stmt, &params))
        })
    }

    /// Runs `sql` for its effect; the rows it changed (Twisted's
    /// `runOperation`).
    pub fn run_operation(&self, sql: impl Into<String>, params: Vec<Value>) -> DbCall<usize> {
        let sql = sql.into();
        self.run_with(move |conn| {
            conn.with_statement(&sql, false, |client, stmt| {
                let changed = client.execute(stmt, &as_params(&params))?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            })
        })
    }

    /// Runs `work` in a transaction: committed when it returns `Ok`, rolled
    /// back when it returns `Err` or panics (Twisted's `runInteraction`).
    /// `?` works on the `postgres` crate's errors inside it.
    pub fn run_interaction<R, W>(&self, work: W) -> DbCall<R>
    where
        R: Send + 'static,
        W: FnOnce(&mut postgres::Transaction<'_>) -> Result<R, DbError> + Send + 'static,
    {
        self.run_with(move |conn| {
            let outcome = (|| {
                let mut tx = conn
                    .client
                    .transaction()
                    .map_err(InteractionFailure::Client)?;
                // On Err, or a panic unwinding through here, dropping `tx`
                // rolls it back.
                let answer = work(&mut tx).map_err(InteractionFailure::Work)?;
                tx.commit().map_err(InteractionFailure::Client)?;
                Ok(answer)
            })();
            match outcome {
                Ok(answer) => Ok(answer),
                Err(InteractionFailure::Client(e)) => Err(conn.fail(e)),
                Err(InteractionFailure::Work(e)) => {
                    conn.ended |=
                        matches!(e, DbError::ConnectionLost(_)) || conn.client.is_closed();
                    Err(e)
                }
            }
        })
    }
}
