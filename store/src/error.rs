//! `StoreError`: why a store operation failed. Messages name tables, ids and causes, never
//! seeds, sealed blobs, password hashes or ticket hashes.

use crate::seal::SealError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or answered with an I/O-level failure (file missing or
    /// unwritable, pool exhausted, lock held too long). Callers must fail closed and may retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The record the operation targets does not exist.
    #[error("record not found")]
    NotFound,
    /// The write would break a uniqueness rule or a state rule (a second live token for a user,
    /// a duplicate id or username, reviving a revoked token).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored row holds a value this version cannot decode (unknown state, out-of-range
    /// number, malformed JSON).
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// The database's schema is not the one this build was made for; the message says which
    /// command brings them together.
    #[error("{0}")]
    Schema(String),
    /// The store's settings are unusable (a malformed URL, an unreadable password file).
    #[error("store settings: {0}")]
    Config(String),
    /// Sealing or opening a seed failed.
    #[error(transparent)]
    Seal(#[from] SealError),
}

impl StoreError {
    /// Maps a sqlx error onto the store's categories. Constraint violations keep only the
    /// database's primary message, which names the constraint but not the offending values.
    pub(crate) fn from_sqlx(err: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match err {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => Self::Conflict(db.message().to_owned()),
                ErrorKind::ForeignKeyViolation => Self::NotFound,
                ErrorKind::CheckViolation | ErrorKind::NotNullViolation => Self::Conflict(db.message().to_owned()),
                _ => Self::Unavailable(db.message().to_owned()),
            },
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::TypeNotFound { .. } => Self::Corrupt(err.to_string()),
            other => Self::Unavailable(other.to_string()),
        }
    }

    /// A value read from a row that does not fit its Rust type.
    pub(crate) fn corrupt(what: &str) -> Self {
        Self::Corrupt(what.to_owned())
    }
}
