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
        /// `sqlite`, …
        backend: &'static str,
        /// The file or address.
        target: String,
        /// What the backend said.
        problem: String,
    },
    /// The database refused or failed the statement.
    #[error("the database said: {0}")]
    Database(String),
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
}
