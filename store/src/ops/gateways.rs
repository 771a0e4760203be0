//! Gateways sharing the store: a registration at start (replacing the record a restarted
//! gateway left), a heartbeat every few seconds with how busy it is, a mark at clean shutdown.

use sqlx::Row;

use super::dialect::{DbRow, Pool};
use super::{decode_int, encode_u64};
use crate::{GatewayNode, StoreError};

const COLUMNS: &str = "id, address, admin_url, version, started_at, last_seen_at, sessions, flows, stopped_at";

pub(super) async fn register(pool: &Pool, node: &GatewayNode) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO gateway_nodes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL) \
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, admin_url = excluded.admin_url, \
         version = excluded.version, started_at = excluded.started_at, last_seen_at = excluded.last_seen_at, \
         sessions = excluded.sessions, flows = excluded.flows, stopped_at = NULL"
    ))
    .bind(&node.id)
    .bind(&node.address)
    .bind(&node.admin_url)
    .bind(&node.version)
    .bind(node.started_at)
    .bind(node.last_seen_at)
    .bind(encode_u64(node.sessions, "sessions")?)
    .bind(encode_u64(node.flows, "flows")?)
    .execute(pool)
    .await
    .map(|_| ())
    .map_err(StoreError::from_sqlx)
}

pub(super) async fn heartbeat(pool: &Pool, id: &str, now: i64, sessions: u64, flows: u64) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE gateway_nodes SET last_seen_at = $2, sessions = $3, flows = $4, stopped_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(encode_u64(sessions, "sessions")?)
    .bind(encode_u64(flows, "flows")?)
    .execute(pool)
    .await
    .map_err(StoreError::from_sqlx)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(super) async fn stopped(pool: &Pool, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE gateway_nodes SET stopped_at = $2, last_seen_at = $2, sessions = 0, flows = 0 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}

pub(super) async fn all(pool: &Pool) -> Result<Vec<GatewayNode>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM gateway_nodes ORDER BY id"))
        .fetch_all(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    rows.iter().map(decode).collect()
}

fn decode(row: &DbRow) -> Result<GatewayNode, StoreError> {
    let get = StoreError::from_sqlx;
    Ok(GatewayNode {
        id: row.try_get("id").map_err(get)?,
        address: row.try_get("address").map_err(get)?,
        admin_url: row.try_get("admin_url").map_err(get)?,
        version: row.try_get("version").map_err(get)?,
        started_at: row.try_get("started_at").map_err(get)?,
        last_seen_at: row.try_get("last_seen_at").map_err(get)?,
        sessions: decode_int(row.try_get("sessions").map_err(get)?, "gateway_nodes.sessions")?,
        flows: decode_int(row.try_get("flows").map_err(get)?, "gateway_nodes.flows")?,
        stopped_at: row.try_get("stopped_at").map_err(get)?,
    })
}
