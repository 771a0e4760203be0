//! Seed-sealing keys: list them with the number of tokens each seals, rotate (a new current
//! key, then every seed re-sealed under it), and retire a key that seals nothing any more.

use super::{Provisioner, ServiceError};
use crate::api::{KeyInfo, KeysInfo, RotateResponse};
use std::collections::BTreeMap;

impl Provisioner {
    /// Re-reads the seal keys before sealing: another provisioner may have rotated (and even
    /// retired the old key) since this one last looked, and a seed sealed under a retired key
    /// could never be opened again.
    pub(super) async fn fresh_keys(&self) -> Result<(), ServiceError> {
        self.keys
            .refresh()
            .await
            .map_err(|e| ServiceError::Unavailable(format!("cannot read the seal keys: {e}")))
    }

    /// The keys and how many tokens each seals.
    pub async fn keys_info(&self) -> Result<KeysInfo, ServiceError> {
        self.fresh_keys().await?;
        let counts = self.seal_counts().await?;
        let current = self.keys.current_key_id();
        Ok(KeysInfo {
            keys: self
                .keys
                .key_ids()
                .into_iter()
                .map(|id| KeyInfo {
                    id,
                    current: id == current,
                    tokens: counts.get(&id).copied().unwrap_or(0),
                })
                .collect(),
        })
    }

    async fn seal_counts(&self) -> Result<BTreeMap<u32, u64>, ServiceError> {
        let mut counts = BTreeMap::new();
        for (_, sealed) in self.store.sealed_seeds().await? {
            *counts.entry(sealed.key_id).or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// Adds a new key and re-seals every seed under it. Each seed is opened, re-sealed and
    /// swapped in only if its row did not change meanwhile; the plaintext is wiped at once.
    pub async fn rotate_keys(&self, actor: &str) -> Result<RotateResponse, ServiceError> {
        let new_key = self.keys.rotate(actor, self.now()).await.map_err(|e| match e {
            err @ rampart_store::SealError::KeyExists(_) => ServiceError::Conflict(err.to_string()),
            other => ServiceError::Unavailable(other.to_string()),
        })?;
        tracing::info!(target: "rampart::provisioner", operator = actor, key = new_key, "seed-sealing key rotated");
        let resealed = self.reseal_all().await?;
        let counts = self.seal_counts().await?;
        let retirable = self
            .keys
            .key_ids()
            .into_iter()
            .filter(|id| *id != new_key && !counts.contains_key(id))
            .collect();
        Ok(RotateResponse {
            new_key,
            resealed: resealed.0,
            failed: resealed.1,
            retirable,
        })
    }

    /// Re-seals every seed not under the current key; returns the count and the ids that
    /// could not be opened.
    pub async fn reseal_all(&self) -> Result<(u64, Vec<String>), ServiceError> {
        let mut resealed = 0;
        let mut failed = Vec::new();
        for (token_id, sealed) in self.store.sealed_seeds().await? {
            if !self.keys.needs_reseal(&sealed) {
                continue;
            }
            let fresh = match self.keys.open_fresh(&token_id, &sealed).await {
                Ok(seed) => self.keys.seal(&token_id, &seed),
                Err(err) => Err(err),
            };
            match fresh {
                Ok(fresh) => {
                    if self.store.reseal(&token_id, &sealed, &fresh).await? {
                        resealed += 1;
                    }
                }
                Err(err) => {
                    tracing::error!(target: "rampart::provisioner", token = %token_id, error = %err, "cannot re-seal token");
                    failed.push(token_id);
                }
            }
        }
        Ok((resealed, failed))
    }

    /// Removes key `id` from the key file; refused while any token is sealed under it.
    pub async fn retire_key(&self, actor: &str, id: u32) -> Result<(), ServiceError> {
        self.fresh_keys().await?;
        if !self.keys.key_ids().contains(&id) {
            return Err(ServiceError::NotFound(format!("no key {id}")));
        }
        let in_use = self.seal_counts().await?.get(&id).copied().unwrap_or(0);
        if in_use > 0 {
            return Err(ServiceError::Conflict(format!(
                "key {id} still seals {in_use} token(s); run a rotation first"
            )));
        }
        self.keys
            .retire(id)
            .await
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        tracing::info!(target: "rampart::provisioner", operator = actor, key = id, "seed-sealing key retired");
        Ok(())
    }
}
