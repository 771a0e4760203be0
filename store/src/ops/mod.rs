//! The statements' code, shared by every backend: each backend module includes this folder
//! with its own [`dialect`] (the database type, how a write transaction begins, row locks),
//! so SQLite and PostgreSQL run the same SQL text and the same Rust, and the few places where
//! they differ are named in that one module.

mod approvals;
mod audit_anchors;
mod fleet_stores;
mod gateways;
mod history;
mod issue;
mod operators;
mod people_stores;
mod readiness;
mod registration;
mod reseal;
mod seal_keys;
mod session_stores;
mod sessions;
mod temp_codes;
mod token_admin;
mod token_store;
mod token_views;
mod tokens;
mod users;
mod vms;
mod web_sessions;

use sqlx::Transaction;

use super::Backend;
pub(super) use super::dialect;
use super::dialect::{Db, Pool};
use crate::StoreError;

/// Starts a write transaction ([`dialect::BEGIN_WRITE`]). Callers hold the backend's write
/// gate; dropping the transaction without [`commit`] rolls everything back.
async fn begin_write(pool: &Pool) -> Result<Transaction<'static, Db>, StoreError> {
    pool.begin_with(dialect::BEGIN_WRITE)
        .await
        .map_err(StoreError::from_sqlx)
}

/// Commits a transaction from [`begin_write`]; the change is durable when this returns.
async fn commit(tx: Transaction<'static, Db>) -> Result<(), StoreError> {
    tx.commit().await.map_err(StoreError::from_sqlx)
}

/// A number from a row that must fit `T`; otherwise the row is corrupt.
fn decode_int<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} out of range")))
}

/// A caller's number that must fit a BIGINT column.
fn encode_u64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Conflict(format!("{what} out of range")))
}
