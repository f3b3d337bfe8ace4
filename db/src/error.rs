//! Every way a database call fails, as a sentence.

/// Why a database call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The pool's queue was full: the database is slower than the calls
    /// coming in (the caller decides: retry later, shed load).
    #[error("the database pool's queue is full ({queue} calls waiting): the database is behind")]
    QueueFull {
        /// The queue's size.
        queue: usize,
    },
    /// The pool was shut down before the call ran.
    #[error("the database pool is shut down")]
    PoolClosed,
    /// The work panicked on the pool's thread (the thread and its
    /// connection go on).
    #[error("the database work panicked: {0}")]
    Panicked(String),
    /// A connection could not be opened.
    #[error("cannot open the {backend} database {target}: {problem}")]
    Connect {
        /// `sqlite`, `postgres`.
        backend: &'static str,
        /// The file or address.
        target: String,
        /// What the backend said.
        problem: String,
    },
    /// The database refused or failed the statement.
    #[error("the database said: {message}")]
    Database {
        /// What it said.
        message: String,
        /// Its code for the failure, where it has one: PostgreSQL's
        /// SQLSTATE (`23505` is a unique violation, `55P03` a lock
        /// timeout), SQLite's extended result code (`1555` is a primary
        /// key already taken, `2067` a unique index, `5` busy).
        code: Option<String>,
    },
    /// The connection broke under the call (the server shut down or went
    /// away): the call may or may not have run; the pool opens a new
    /// connection for the next one.
    #[error("the connection to the database was lost (the next call opens a new one): {0}")]
    ConnectionLost(String),
    /// A failure of the caller's own, from inside an interaction (which is
    /// then rolled back).
    #[error("{0}")]
    Failed(String),
}

impl DbError {
    /// A failure of the caller's own, e.g. to roll an interaction back.
    pub fn failed(why: impl Into<String>) -> DbError {
        DbError::Failed(why.into())
    }

    /// The database's code for a [`DbError::Database`] failure (see
    /// there), to tell one kind from another without reading the text.
    pub fn code(&self) -> Option<&str> {
        match self {
            DbError::Database { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}
