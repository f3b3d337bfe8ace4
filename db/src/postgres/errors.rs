//! `postgres` errors as [`DbError`]s: one sentence each, the server's
//! code kept, and a lost connection told from a refused statement.
//!
//! A connection counts as lost when the client says it is closed, when the
//! server ended the session (a `FATAL` or `PANIC`: an idle-in-transaction
//! timeout, a recovery conflict, the server shutting down), or when its
//! code says the server is going away (`57P01`…`57P03`). Nothing else is:
//! an error whose cause is an I/O error can be a value that could not be
//! encoded (a NUL in the SQL), and class `08` also reports a foreign
//! server (postgres_fdw, dblink) that could not be reached.

use std::error::Error as StdError;

use postgres::error::Severity;

use crate::error::DbError;

/// A `postgres` error as one sentence: the server's own words with its
/// SQLSTATE, detail and hint, or the client's with every cause.
pub(super) fn sentence(e: &postgres::Error) -> String {
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

/// Whether `e` means the session is over (see the module docs);
/// `client_closed` is what the client said after the failure.
pub(super) fn ends_the_session(e: &postgres::Error, client_closed: bool) -> bool {
    if client_closed || e.is_closed() {
        return true;
    }
    e.as_db_error().is_some_and(|db| {
        matches!(
            db.parsed_severity(),
            Some(Severity::Fatal) | Some(Severity::Panic)
        ) || db.code().code().starts_with("57P0")
    })
}

/// `e` as a [`DbError`], lost or not as `ends_the_session` said.
pub(super) fn classify(e: postgres::Error, lost: bool) -> DbError {
    if lost {
        DbError::ConnectionLost(sentence(&e))
    } else {
        DbError::Database {
            message: sentence(&e),
            code: e.code().map(|c| c.code().to_owned()),
        }
    }
}

impl From<postgres::Error> for DbError {
    /// For `?` inside an interaction; the pool's own calls classify with
    /// what the client says after the failure, too.
    fn from(e: postgres::Error) -> DbError {
        let lost = ends_the_session(&e, false);
        classify(e, lost)
    }
}
