//! How the copy's database failures read: which side, what it was doing, and never a value.

use crate::StoreError;

/// A SQLite failure while reading `what`.
pub(super) fn sqlite_err(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |err| StoreError::Unavailable(format!("reading the SQLite store ({what}): {}", db_message(&err)))
}

/// A PostgreSQL failure while doing `what`. Conflicts keep the database's primary message only
/// (it names the constraint, never the values).
pub(super) fn pg_err(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |err| {
        use sqlx::error::ErrorKind;
        let message = format!("writing the PostgreSQL database ({what}): {}", db_message(&err));
        match &err {
            sqlx::Error::Database(db)
                if matches!(
                    db.kind(),
                    ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation | ErrorKind::CheckViolation
                ) =>
            {
                StoreError::Conflict(message)
            }
            _ => StoreError::Unavailable(message),
        }
    }
}

/// A database error's own words: for errors the server sent, only the primary message (its
/// detail may quote values such as a key's hash).
pub(super) fn db_message(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

/// Why a value did not decode, without the value.
pub(super) fn decode_message(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::ColumnDecode { source, .. } => format!("cannot decode: {source}"),
        other => other.to_string(),
    }
}
