//! SQLite through rusqlite (compiled in): [`Sqlite`] opens one connection
//! per pool thread; `run_query`, `run_operation` and `run_interaction` are
//! Twisted's `runQuery`, `runOperation` and `runInteraction`.
//!
//! Each connection waits up to its busy timeout (default 5 s) for a lock
//! another connection holds, then fails with SQLite's "database is locked",
//! as [`DbError::Database`]. An interaction runs in a transaction
//! (`BEGIN DEFERRED`): committed when the closure returns `Ok`, rolled
//! back when it returns `Err` or panics.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::DbError;
use crate::pool::{Backend, ConnectionPool, DbCall};
use crate::value::Value;

/// An SQLite database file (or `:memory:`, one per connection).
#[derive(Debug, Clone)]
pub struct Sqlite {
    path: PathBuf,
    busy_timeout: Duration,
}

impl Sqlite {
    /// The database at `path` (created if missing).
    pub fn file(path: impl Into<PathBuf>) -> Sqlite {
        Sqlite {
            path: path.into(),
            busy_timeout: Duration::from_secs(5),
        }
    }

    /// How long a statement waits for another connection's lock (default
    /// 5 s).
    pub fn busy_timeout(mut self, d: Duration) -> Sqlite {
        self.busy_timeout = d;
        self
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> DbError {
        let code = match &e {
            rusqlite::Error::SqliteFailure(failure, _) => Some(failure.extended_code.to_string()),
            _ => None,
        };
        DbError::Database {
            message: e.to_string(),
            code,
        }
    }
}

impl Backend for Sqlite {
    type Connection = rusqlite::Connection;

    fn connect(&self) -> Result<rusqlite::Connection, DbError> {
        let open = || -> rusqlite::Result<rusqlite::Connection> {
            let conn = rusqlite::Connection::open(&self.path)?;
            conn.busy_timeout(self.busy_timeout)?;
            Ok(conn)
        };
        open().map_err(|e| DbError::Connect {
            backend: "sqlite",
            target: self.path.display().to_string(),
            problem: e.to_string(),
        })
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Integer(i64::from(*b)),
            Value::Integer(n) => ValueRef::Integer(*n),
            Value::Real(x) => ValueRef::Real(*x),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl From<rusqlite::types::ValueRef<'_>> for Value {
    fn from(v: rusqlite::types::ValueRef<'_>) -> Value {
        use rusqlite::types::ValueRef;
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::Integer(n),
            ValueRef::Real(x) => Value::Real(x),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

/// Every row of `sql` with `params`, each row its columns' values.
fn query(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Vec<Value>>, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let columns = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(Value::from(row.get_ref(i)?));
        }
        out.push(values);
    }
    Ok(out)
}

impl ConnectionPool<Sqlite> {
    /// The rows `sql` selects (Twisted's `runQuery`).
    pub fn run_query(&self, sql: impl Into<String>, params: Vec<Value>) -> DbCall<Vec<Vec<Value>>> {
        let sql = sql.into();
        self.run_with(move |conn| query(conn, &sql, &params))
    }

    /// Runs `sql` for its effect; the rows it changed (Twisted's
    /// `runOperation`).
    pub fn run_operation(&self, sql: impl Into<String>, params: Vec<Value>) -> DbCall<usize> {
        let sql = sql.into();
        self.run_with(move |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            Ok(stmt.execute(rusqlite::params_from_iter(&params))?)
        })
    }

    /// Runs `work` in a transaction: committed when it returns `Ok`, rolled
    /// back when it returns `Err` or panics (Twisted's `runInteraction`).
    pub fn run_interaction<R, W>(&self, work: W) -> DbCall<R>
    where
        R: Send + 'static,
        W: FnOnce(&rusqlite::Transaction<'_>) -> Result<R, DbError> + Send + 'static,
    {
        self.run_with(move |conn| {
            let tx = conn.transaction()?;
            // On Err, or a panic unwinding through here, dropping `tx`
            // rolls it back.
            let answer = work(&tx)?;
            tx.commit()?;
            Ok(answer)
        })
    }
}
