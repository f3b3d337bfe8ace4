//! The `links` table, as calls on the database pool: each runs on one of
//! the pool's threads and is awaited on the shard that asked.

use serde_json::json;
use torsion_db::{ConnectionPool, DbError, Sqlite, Value};

use crate::check::Checked;

/// The columns every read returns, in this order.
const COLUMNS: &str = "id, url, status, bytes, error, checked_at";

/// The links, in SQLite through a pool (cheap to clone: clones share it).
#[derive(Clone)]
pub struct Store {
    pool: ConnectionPool<Sqlite>,
}

/// One stored link check.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub id: i64,
    pub url: String,
    pub status: Option<i64>,
    pub bytes: Option<i64>,
    pub error: Option<String>,
    pub checked_at: String,
}

impl Link {
    /// The link as the API shows it.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "url": self.url,
            "status": self.status,
            "bytes": self.bytes,
            "error": self.error,
            "checked_at": self.checked_at,
        })
    }

    fn from_row(row: &[Value]) -> Result<Link, DbError> {
        let int = |v: &Value| match v {
            Value::Integer(n) => Some(*n),
            _ => None,
        };
        let text = |v: &Value| match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        };
        match row {
            [id, url, status, bytes, error, at] => Ok(Link {
                id: int(id).unwrap_or_default(),
                url: text(url).unwrap_or_default(),
                status: int(status),
                bytes: int(bytes),
                error: text(error),
                checked_at: text(at).unwrap_or_default(),
            }),
            _ => Err(DbError::failed(format!(
                "a links row of {} columns, not 6",
                row.len()
            ))),
        }
    }
}

impl Store {
    /// A store over `pool`.
    pub fn new(pool: ConnectionPool<Sqlite>) -> Store {
        Store { pool }
    }

    /// Creates the table if it is not there.
    pub async fn create(&self) -> Result<(), DbError> {
        self.pool
            .run_operation(
                "CREATE TABLE IF NOT EXISTS links (\
                   id INTEGER PRIMARY KEY, url TEXT NOT NULL, status INTEGER, \
                   bytes INTEGER, error TEXT, \
                   checked_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))",
                vec![],
            )
            .await
            .map(|_| ())
    }

    /// Stores a check and returns it as stored (in one transaction).
    pub async fn insert(&self, checked: Checked) -> Result<Link, DbError> {
        let rows = self
            .pool
            .run_interaction(move |tx| {
                tx.execute(
                    "INSERT INTO links (url, status, bytes, error) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![checked.url, checked.status, checked.bytes, checked.error],
                )?;
                let id = tx.last_insert_rowid();
                let mut stmt = tx.prepare(&format!("SELECT {COLUMNS} FROM links WHERE id = ?1"))?;
                let row = stmt.query_row([id], |r| {
                    Ok(vec![
                        Value::Integer(r.get(0)?),
                        Value::Text(r.get(1)?),
                        r.get::<_, Option<i64>>(2)?
                            .map_or(Value::Null, Value::Integer),
                        r.get::<_, Option<i64>>(3)?
                            .map_or(Value::Null, Value::Integer),
                        r.get::<_, Option<String>>(4)?
                            .map_or(Value::Null, Value::Text),
                        Value::Text(r.get(5)?),
                    ])
                })?;
                Ok(row)
            })
            .await?;
        Link::from_row(&rows)
    }

    /// Every link, oldest first.
    pub async fn list(&self) -> Result<Vec<Link>, DbError> {
        let rows = self
            .pool
            .run_query(format!("SELECT {COLUMNS} FROM links ORDER BY id"), vec![])
            .await?;
        rows.iter().map(|r| Link::from_row(r)).collect()
    }

    /// One link, if there is one with this id.
    pub async fn get(&self, id: i64) -> Result<Option<Link>, DbError> {
        let rows = self
            .pool
            .run_query(
                format!("SELECT {COLUMNS} FROM links WHERE id = ?1"),
                vec![id.into()],
            )
            .await?;
        rows.first().map(|r| Link::from_row(r)).transpose()
    }
}
