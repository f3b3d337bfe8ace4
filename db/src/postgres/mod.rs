//! PostgreSQL through the `postgres` crate (a Rust client, no libpq):
//! [`Postgres`] opens one connection per pool thread; `run_query`,
//! `run_operation` and `run_interaction` are Twisted's `runQuery`,
//! `runOperation` and `runInteraction`, as for SQLite.
//!
//! # Design
//!
//! - **Statements are prepared once per connection** and kept (up to
//!   [`STATEMENT_CACHE`] per connection, then the cache starts again): a
//!   point query is then one round trip, not two. A cached statement whose
//!   result columns a schema change altered fails on the server with
//!   "cached plan must not change result type" before it runs; that one
//!   error drops the statement and prepares it again, once.
//! - **Locks**: each connection sets `lock_timeout` (default 5 s, like
//!   SQLite's busy timeout), so a statement waiting on another's lock fails
//!   with PostgreSQL's "canceling statement due to lock timeout" instead of
//!   holding a pool thread for ever.
//! - **A server that goes away** fails the call that finds the connection
//!   closed with [`DbError::ConnectionLost`]; the pool's thread opens a new
//!   connection before its next call ([`Backend::is_usable`]).
//! - **Types**: a [`Value`] becomes the parameter type the server asks for
//!   (`Integer` → `int2`/`int4`/`int8`/`oid`, range-checked, or a float
//!   when exact; `Real` → `float4`/`float8`; `Text` → any text type,
//!   `json`, `jsonb`; `Blob` → `bytea`; `Bool` → `boolean`); anything else
//!   is an error that says which parameter and what to cast. Columns of a
//!   type `Value` does not hold (timestamps, numeric, arrays …) are refused
//!   before the query runs, with the cast that reads them (`col::text`).
//! - **TLS** to the server is not built: connections are plain TCP or a
//!   Unix socket (`host=/run/postgresql`), and `sslmode=require` fails the
//!   pool with the crate's "no TLS implementation configured".

use std::collections::HashMap;
use std::error::Error as StdError;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement};

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
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the config: it may hold a password.
        f.debug_struct("Postgres")
            .field("target", &self.target)
            .field("lock_timeout", &self.lock_timeout)
            .finish()
    }
}

impl Postgres {
    /// The database `conninfo` names: `host=127.0.0.1 port=5432
    /// user=app dbname=app` or `postgresql://app@127.0.0.1/app` (libpq's
    /// two forms; `host=/run/postgresql` is a Unix socket directory). A
    /// connect timeout of 10 s applies unless `connect_timeout` says
    /// otherwise.
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
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let target = describe(&config);
        Ok(Postgres {
            config,
            target,
            lock_timeout: Duration::from_secs(5),
        })
    }

    /// How long a statement waits for a lock another session holds
    /// (default 5 s; zero waits for ever, PostgreSQL's own default).
    pub fn lock_timeout(mut self, d: Duration) -> Postgres {
        self.lock_timeout = d;
        self
    }
}

/// Where a config points, for errors (never its password).
fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
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
}

impl PgConnection {
    /// The `postgres` client, for work of one's own
    /// ([`ConnectionPool::run_with`]).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// `sql` prepared, from the cache when it is there; and whether it was.
    fn statement(&mut self, sql: &str) -> Result<(Statement, bool), postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok((s.clone(), true));
        }
        let s = self.client.prepare(sql)?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), s.clone());
        Ok((s, false))
    }

    /// Runs `run` with `sql` prepared; a cached statement the schema has
    /// outdated is prepared again, once.
    fn with_statement<R>(
        &mut self,
        sql: &str,
        run: impl Fn(&mut Client, &Statement) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        let (stmt, cached) = self.statement(sql)?;
        match run(&mut self.client, &stmt) {
            Err(DbError::Database {
                code: Some(code), ..
            }) if cached && code == SqlState::FEATURE_NOT_SUPPORTED.code() => {
                self.statements.remove(sql);
                let (stmt, _) = self.statement(sql)?;
                run(&mut self.client, &stmt)
            }
            answer => answer,
        }
    }
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
                "SET lock_timeout = {}",
                self.lock_timeout.as_millis()
            ))
            .map_err(failed)?;
        Ok(PgConnection {
            client,
            statements: HashMap::new(),
        })
    }

    fn is_usable(&self, conn: &mut PgConnection) -> bool {
        !conn.client.is_closed()
    }
}

/// A `postgres` error as one sentence: the server's own words with its
/// SQLSTATE, detail and hint, or the client's with every cause.
fn sentence(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            s.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            s.push_str(&format!("; hint: {hint}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> DbError {
        let lost_io = e
            .source()
            .is_some_and(|c| c.downcast_ref::<std::io::Error>().is_some());
        let code = e.code().map(|c| c.code().to_owned());
        // Class 08 is "connection exception"; 57P01..03 the server
        // shutting down or restarting.
        let lost_code = code
            .as_deref()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0"));
        if e.is_closed() || lost_io || lost_code {
            DbError::ConnectionLost(sentence(&e))
        } else {
            DbError::Database {
                message: sentence(&e),
                code,
            }
        }
    }
}

/// The parameter types a `Value::Text` is written to as bytes.
fn takes_text(ty: &Type) -> bool {
    <&str as ToSql>::accepts(ty)
}

/// Whether `Value` can hold a column of type `ty`.
fn readable(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::BOOL
            | Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::OID
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::BYTEA
            | Type::JSON
            | Type::JSONB
    ) || <&str as FromSql>::accepts(ty)
}

type BoxError = Box<dyn StdError + Sync + Send>;

fn cannot_take(value: &Value, ty: &Type) -> BoxError {
    let kind = match value {
        Value::Null => "NULL",
        Value::Bool(_) => "a Bool",
        Value::Integer(_) => "an Integer",
        Value::Real(_) => "a Real",
        Value::Text(_) => "a Text",
        Value::Blob(_) => "a Blob",
    };
    format!(
        "{kind} value cannot be a parameter of type {ty}: pass the Value of that type, \
         or cast the parameter in the SQL (e.g. $1::text::{ty})"
    )
    .into()
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        let out_of_range = |n: &i64| -> BoxError {
            format!("the Integer {n} does not fit a {ty} parameter").into()
        };
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Bool(b) if *ty == Type::BOOL => b.to_sql(ty, out),
            Value::Integer(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n)
                    .map_err(|_| out_of_range(n))?
                    .to_sql(ty, out),
                Type::INT2 => i16::try_from(*n)
                    .map_err(|_| out_of_range(n))?
                    .to_sql(ty, out),
                Type::OID => u32::try_from(*n)
                    .map_err(|_| out_of_range(n))?
                    .to_sql(ty, out),
                // A float parameter takes an integer it holds exactly.
                Type::FLOAT8 if (*n as f64) as i64 == *n => (*n as f64).to_sql(ty, out),
                Type::FLOAT4 if (*n as f32) as i64 == *n => (*n as f32).to_sql(ty, out),
                _ => Err(cannot_take(self, ty)),
            },
            Value::Real(x) => match *ty {
                Type::FLOAT8 => x.to_sql(ty, out),
                Type::FLOAT4 => (*x as f32).to_sql(ty, out),
                _ => Err(cannot_take(self, ty)),
            },
            Value::Text(s) => match *ty {
                Type::JSON => {
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                // jsonb's binary form: a version byte, then the text.
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                _ if takes_text(ty) => s.as_str().to_sql(ty, out),
                _ => Err(cannot_take(self, ty)),
            },
            Value::Blob(b) if *ty == Type::BYTEA => b.as_slice().to_sql(ty, out),
            _ => Err(cannot_take(self, ty)),
        }
    }

    /// Every type: each value checks its own in `to_sql`, with an error
    /// that names the parameter's type and the cast.
    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value, BoxError> {
        Ok(match *ty {
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::OID => Value::Integer(u32::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::JSON => Value::Text(std::str::from_utf8(raw)?.to_owned()),
            Type::JSONB => match raw.split_first() {
                Some((1, text)) => Value::Text(std::str::from_utf8(text)?.to_owned()),
                _ => return Err("a jsonb value in an unknown binary version".into()),
            },
            _ => Value::Text(<&str as FromSql>::from_sql(ty, raw)?.to_owned()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        readable(ty)
    }
}

/// The parameters as the `postgres` crate takes them.
fn as_params(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// Every row `stmt` returns with `params`, each row its columns' values;
/// a column `Value` cannot hold is refused before the query runs.
fn query(
    client: &mut Client,
    stmt: &Statement,
    params: &[Value],
) -> Result<Vec<Vec<Value>>, DbError> {
    if let Some(col) = stmt.columns().iter().find(|c| !readable(c.type_())) {
        return Err(DbError::failed(format!(
            "column `{name}` is of type {ty}, which torsion_db::Value does not hold: \
             cast it in the query ({name}::text)",
            name = col.name(),
            ty = col.type_()
        )));
    }
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

impl ConnectionPool<Postgres> {
    /// The rows `sql` selects, with `$1`, `$2` … bound to `params`
    /// (Twisted's `runQuery`).
    pub fn run_query(&self, sql: impl Into<String>, params: Vec<Value>) -> DbCall<Vec<Vec<Value>>> {
        let sql = sql.into();
        self.run_with(move |conn| {
            conn.with_statement(&sql, |client, stmt| query(client, stmt, &params))
        })
    }

    /// Runs `sql` for its effect; the rows it changed (Twisted's
    /// `runOperation`).
    pub fn run_operation(&self, sql: impl Into<String>, params: Vec<Value>) -> DbCall<usize> {
        let sql = sql.into();
        self.run_with(move |conn| {
            conn.with_statement(&sql, |client, stmt| {
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
            let mut tx = conn.client.transaction()?;
            // On Err, or a panic unwinding through here, dropping `tx`
            // rolls it back.
            let answer = work(&mut tx)?;
            tx.commit()?;
            Ok(answer)
        })
    }
}
