//! The audit trail's anchors: registering a stream when its writer opens (with its newest
//! anchored head, for the writer to compare its files with), recording each checkpoint's head
//! once (a different hash under a recorded number is refused), and reading them back for
//! `rampart audit verify`.

use sqlx::Row;

use super::dialect::{DbRow, Pool};
use super::{Backend, begin_write, commit, decode_int, encode_u64};
use crate::{AuditAnchor, AuditAnchorStore, AuditStream, StoreError};

const ANCHOR_COLUMNS: &str = "key_id, stream, seq, hash, file, recorded_at";

#[async_trait::async_trait]
impl AuditAnchorStore for Backend {
    async fn open_audit_stream(
        &self,
        key_id: &str,
        stream: &str,
        service: &str,
        now: i64,
    ) -> Result<Option<AuditAnchor>, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            let mut tx = begin_write(&self.pool()).await?;
            sqlx::query(
                "INSERT INTO audit_streams (key_id, stream, service, first_seen_at, last_opened_at) \
                 VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (key_id, stream) DO UPDATE SET service = excluded.service, \
                 last_opened_at = excluded.last_opened_at",
            )
            .bind(key_id)
            .bind(stream)
            .bind(service)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            commit(tx).await?;
            head(&self.pool(), key_id, stream).await
        })
        .await
    }

    async fn anchor_audit_head(&self, anchor: &AuditAnchor) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            let mut tx = begin_write(&self.pool()).await?;
            // A head may arrive for a stream registered before the store was reset or copied.
            sqlx::query(
                "INSERT INTO audit_streams (key_id, stream, service, first_seen_at, last_opened_at) \
                 VALUES ($1, $2, '', $3, $3) ON CONFLICT (key_id, stream) DO NOTHING",
            )
            .bind(&anchor.key_id)
            .bind(&anchor.stream)
            .bind(anchor.recorded_at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            let added = sqlx::query(&format!(
                "INSERT INTO audit_anchors ({ANCHOR_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (key_id, stream, seq) DO NOTHING"
            ))
            .bind(&anchor.key_id)
            .bind(&anchor.stream)
            .bind(encode_u64(anchor.seq, "seq")?)
            .bind(&anchor.hash)
            .bind(&anchor.file)
            .bind(anchor.recorded_at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?
            .rows_affected();
            if added == 0 {
                let recorded: String =
                    sqlx::query_scalar("SELECT hash FROM audit_anchors WHERE key_id = $1 AND stream = $2 AND seq = $3")
                        .bind(&anchor.key_id)
                        .bind(&anchor.stream)
                        .bind(encode_u64(anchor.seq, "seq")?)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(StoreError::from_sqlx)?;
                if recorded != anchor.hash {
                    return Err(StoreError::Conflict(format!(
                        "audit stream {} already has another record {} anchored",
                        anchor.stream, anchor.seq
                    )));
                }
            }
            commit(tx).await
        })
        .await
    }

    async fn audit_streams(&self) -> Result<Vec<AuditStream>, StoreError> {
        self.bounded(async move {
            let rows = sqlx::query(
                "SELECT key_id, stream, service, first_seen_at, last_opened_at FROM audit_streams \
                 ORDER BY key_id, stream",
            )
            .fetch_all(&self.pool())
            .await
            .map_err(StoreError::from_sqlx)?;
            let mut streams = Vec::with_capacity(rows.len());
            for row in &rows {
                let get = StoreError::from_sqlx;
                let key_id: String = row.try_get("key_id").map_err(get)?;
                let stream: String = row.try_get("stream").map_err(get)?;
                let head = head(&self.pool(), &key_id, &stream).await?;
                streams.push(AuditStream {
                    service: row.try_get("service").map_err(get)?,
                    first_seen_at: row.try_get("first_seen_at").map_err(get)?,
                    last_opened_at: row.try_get("last_opened_at").map_err(get)?,
                    key_id,
                    stream,
                    head,
                });
            }
            Ok(streams)
        })
        .await
    }

    async fn audit_anchors(&self, key_id: &str, stream: &str) -> Result<Vec<AuditAnchor>, StoreError> {
        self.bounded(async move {
            let rows = sqlx::query(&format!(
                "SELECT {ANCHOR_COLUMNS} FROM audit_anchors WHERE key_id = $1 AND stream = $2 ORDER BY seq"
            ))
            .bind(key_id)
            .bind(stream)
            .fetch_all(&self.pool())
            .await
            .map_err(StoreError::from_sqlx)?;
            rows.iter().map(decode).collect()
        })
        .await
    }
}

/// The newest anchored head of a stream.
async fn head(pool: &Pool, key_id: &str, stream: &str) -> Result<Option<AuditAnchor>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ANCHOR_COLUMNS} FROM audit_anchors WHERE key_id = $1 AND stream = $2 ORDER BY seq DESC LIMIT 1"
    ))
    .bind(key_id)
    .bind(stream)
    .fetch_optional(pool)
    .await
    .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode).transpose()
}

fn decode(row: &DbRow) -> Result<AuditAnchor, StoreError> {
    let get = StoreError::from_sqlx;
    Ok(AuditAnchor {
        key_id: row.try_get("key_id").map_err(get)?,
        stream: row.try_get("stream").map_err(get)?,
        seq: decode_int(row.try_get("seq").map_err(get)?, "audit_anchors.seq")?,
        hash: row.try_get("hash").map_err(get)?,
        file: row.try_get("file").map_err(get)?,
        recorded_at: row.try_get("recorded_at").map_err(get)?,
    })
}
