//! The store as the anchor book: streams and checkpoint heads in its `audit_streams` and
//! `audit_anchors` tables, shared by every node, and read back for `rampart audit verify`.

use super::{AnchorBook, AnchorHead};
use rampart_core::audit::Anchor;
use rampart_store::{AuditAnchor, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Anchors kept in the store.
#[derive(Debug, Clone)]
pub struct StoreBook {
    store: Arc<dyn Store>,
}

impl StoreBook {
    /// The book in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Every stream signed by the key `key_id` and the heads anchored for each, by stream.
    pub async fn anchors(&self, key_id: &str) -> Result<BTreeMap<String, Vec<Anchor>>, StoreError> {
        let mut by_stream = BTreeMap::new();
        for stream in self.store.audit_streams().await? {
            if stream.key_id != key_id {
                continue;
            }
            let anchors = self
                .store
                .audit_anchors(key_id, &stream.stream)
                .await?
                .into_iter()
                .map(|anchor| Anchor {
                    seq: anchor.seq,
                    hash: anchor.hash,
                    file: anchor.file,
                })
                .collect();
            by_stream.insert(stream.stream, anchors);
        }
        Ok(by_stream)
    }
}

#[async_trait::async_trait]
impl AnchorBook for StoreBook {
    async fn open_stream(
        &self,
        key_id: &str,
        stream: &str,
        service: &str,
        now: i64,
    ) -> Result<Option<AnchorHead>, String> {
        let head = self
            .store
            .open_audit_stream(key_id, stream, service, now)
            .await
            .map_err(|e| e.to_string())?;
        Ok(head.map(|anchor| AnchorHead {
            key_id: anchor.key_id,
            stream: anchor.stream,
            seq: anchor.seq,
            hash: anchor.hash,
            file: anchor.file,
        }))
    }

    async fn record(&self, head: &AnchorHead, now: i64) -> Result<(), String> {
        self.store
            .anchor_audit_head(&AuditAnchor {
                key_id: head.key_id.clone(),
                stream: head.stream.clone(),
                seq: head.seq,
                hash: head.hash.clone(),
                file: head.file.clone(),
                recorded_at: now,
            })
            .await
            .map_err(|e| e.to_string())
    }
}
