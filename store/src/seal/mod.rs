//! Sealed TOTP seeds: AES-256-GCM (ring) under versioned master keys, kept either in a 0600 key
//! file (one host) or in the store, each wrapped by a key-encryption key every node holds
//! ([`kek`], several hosts).
//! A sealed blob is bound to its token id and key id through the associated data, so a blob
//! copied into another token's row, or relabelled with another key id, fails to open.
//!
//! # Key file format
//!
//! UTF-8 text, one key per line: `v1 <key_id> <64 lowercase hex digits>`, where `key_id` is a
//! decimal `u32`. Blank lines and lines starting with `#` are ignored. The key with the highest
//! id is the current one (used to seal); the others only open. Rotation appends a line with a
//! higher id; retiring a key deletes its line once nothing is sealed under it.

pub mod kek;
mod key_file;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::{KeyStore, WrappedSealKey};
pub use kek::{KeyEncryptionKey, LocalKek};

/// Length of a master key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Length of the GCM authentication tag appended to the ciphertext.
const TAG_LEN: usize = 16;
/// Domain separator at the start of the associated data.
const AAD_PREFIX: &[u8] = b"rampart-seed-v1\0";

/// Why sealing or opening failed. No variant carries key material, plaintext or blob bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The blob names a key id that is not in the key ring (retired or from another install).
    #[error("sealing key {0} is not in the key ring")]
    UnknownKey(u32),
    /// The blob is too short or fails authentication: tampered, truncated, moved to another
    /// token or relabelled. Deliberately one variant with no detail.
    #[error("sealed data failed to open")]
    Corrupt,
    /// The key file cannot be read, written or parsed, or has unsafe permissions.
    #[error("key file: {0}")]
    Io(String),
    /// The system random generator failed.
    #[error("system random generator failed")]
    Random,
    /// The keys kept in the store cannot be read, written or opened.
    #[error("seal keys in the store: {0}")]
    Store(String),
    /// Another node stored a key with this id first (two rotations at once); it is the
    /// current key now.
    #[error("another node added seal key {0} at the same time; it is the current key")]
    KeyExists(u32),
}

/// A seed sealed under one master key: `blob` is a 12-byte random nonce, the ciphertext and
/// the 16-byte tag. Its `Debug` shows the key id and the blob length only.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSeed {
    /// Id of the master key that sealed the blob.
    pub key_id: u32,
    /// Nonce || ciphertext || tag.
    pub blob: Vec<u8>,
}

impl fmt::Debug for SealedSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSeed")
            .field("key_id", &self.key_id)
            .field("blob_len", &self.blob.len())
            .finish()
    }
}

/// The master keys that seal and open seeds. The current key (highest id) seals; every key in
/// the ring opens. A ring loaded from a file re-reads it when asked to open a seed sealed under
/// a key it does not know yet (another process rotated the keys), so gateways follow a
/// rotation without a restart.
pub struct KeyRing {
    keys: RwLock<Arc<Keys>>,
    source: Source,
    rng: SystemRandom,
}

/// Where a ring's keys come from, and where rotation and retirement write.
enum Source {
    /// Given once ([`KeyRing::from_keys`]).
    Fixed,
    /// A key file on this host.
    File(PathBuf),
    /// The store, wrapped by a key-encryption key.
    Store {
        store: Arc<dyn KeyStore>,
        kek: Arc<dyn KeyEncryptionKey>,
    },
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed => f.write_str("fixed"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Store { kek, .. } => write!(f, "store (key-encryption key {})", kek.id()),
        }
    }
}

/// One generation of the ring's keys.
struct Keys {
    by_id: BTreeMap<u32, MasterKey>,
    current: u32,
}

/// One AES-256-GCM master key and its id.
struct MasterKey {
    id: u32,
    key: LessSafeKey,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys();
        f.debug_struct("KeyRing")
            .field("key_ids", &keys.by_id.keys().collect::<Vec<_>>())
            .field("current", &keys.current)
            .field("source", &self.source)
            .finish()
    }
}

impl KeyRing {
    /// Loads the key file at `path`, or creates it with one fresh random key (id 1) when it
    /// does not exist. New files are created with mode 0600 (parent directories 0700) and
    /// published atomically, so two processes starting together end up with the same key.
    ///
    /// On unix a key file readable or writable by group or others is refused.
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        key_file::create_if_missing(path)?;
        Self::load(path)
    }

    /// Loads an existing key file (see the module documentation for its format).
    pub fn load(path: &Path) -> Result<Self, SealError> {
        Ok(Self {
            keys: RwLock::new(Arc::new(read_file(path)?)),
            source: Source::File(path.to_owned()),
            rng: SystemRandom::new(),
        })
    }

    /// Builds a key ring from raw keys (tests, or keys held by an external secret store).
    /// Fails with [`SealError::Io`] when the list is empty or repeats an id.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = (u32, &'a [u8; KEY_LEN])>) -> Result<Self, SealError> {
        Ok(Self {
            keys: RwLock::new(Arc::new(Keys::new(keys)?)),
            source: Source::Fixed,
            rng: SystemRandom::new(),
        })
    }

    /// Loads the seal keys kept in `store`, unwrapping each with `kek`. A store with no keys
    /// and no tokens gets its first key (made by `actor` at `now`); a store with tokens but no
    /// keys is refused, since its seeds are sealed under a key file that must be imported
    /// first ([`KeyRing::import_file`]). A key the key-encryption key cannot open means this
    /// node holds the wrong key-encryption key: refused, naming both fingerprints.
    pub async fn from_store(
        store: Arc<dyn KeyStore>,
        kek: Arc<dyn KeyEncryptionKey>,
        actor: &str,
        now: i64,
    ) -> Result<Self, SealError> {
        if store.seal_keys().await.map_err(store_error)?.is_empty() {
            if !store.sealed_seeds().await.map_err(store_error)?.is_empty() {
                return Err(SealError::Store(
                    "the store holds tokens but no seal keys: import this installation's master.key first \
                     (rampart-provisioner keys import --config provisioner.toml)"
                        .to_owned(),
                ));
            }
            match add_key(store.as_ref(), kek.as_ref(), 1, actor, now).await {
                Ok(()) | Err(SealError::KeyExists(_)) => {} // another node made key 1 at the same moment
                Err(other) => return Err(other),
            }
        }
        let keys = load_store(store.as_ref(), kek.as_ref()).await?;
        Ok(Self {
            keys: RwLock::new(Arc::new(keys)),
            source: Source::Store { store, kek },
            rng: SystemRandom::new(),
        })
    }

    /// Wraps every key of the key file at `path` with `kek` and stores it under its own id, so
    /// seeds sealed under the file's keys open from the store: how a one-host installation
    /// moves to shared keys without re-enrolling anyone. Keys already in the store with the
    /// same bytes are skipped; a different key under the same id is refused. Returns the ids
    /// added.
    pub async fn import_file(
        store: &dyn KeyStore,
        kek: &dyn KeyEncryptionKey,
        path: &Path,
        actor: &str,
        now: i64,
    ) -> Result<Vec<u32>, SealError> {
        let existing = store.seal_keys().await.map_err(store_error)?;
        let mut added = Vec::new();
        for (id, bytes) in key_file::read_keys(path)? {
            if let Some(stored) = existing.iter().find(|key| key.id == id) {
                let same = kek.unwrap(id, &stored.wrapped).is_ok_and(|key| *key == *bytes);
                if !same {
                    return Err(SealError::Store(format!(
                        "the store already holds a different key {id}; nothing more imported"
                    )));
                }
                continue;
            }
            let wrapped = kek.wrap(id, &bytes)?;
            store
                .add_seal_key(&WrappedSealKey {
                    id,
                    wrapped,
                    kek_id: kek.id().to_owned(),
                    created_at: now,
                    created_by: actor.to_owned(),
                })
                .await
                .map_err(store_error)?;
            added.push(id);
        }
        Ok(added)
    }

    /// Re-reads the ring's keys from their source (no-op for [`KeyRing::from_keys`]).
    pub async fn refresh(&self) -> Result<(), SealError> {
        let fresh = match &self.source {
            Source::Fixed => return Ok(()),
            Source::File(path) => read_file(path)?,
            Source::Store { store, kek } => load_store(store.as_ref(), kek.as_ref()).await?,
        };
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(fresh);
        Ok(())
    }

    /// Re-reads the key file this ring was loaded from (no-op for other sources).
    pub fn reload(&self) -> Result<(), SealError> {
        let Source::File(path) = &self.source else {
            return Ok(());
        };
        let fresh = Arc::new(read_file(path)?);
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// Adds a new random key to the ring's source; it becomes the current key. Returns its id.
    /// Seeds sealed under older keys still open; re-seal them, then [`KeyRing::retire`] the old
    /// key. In the store, of two nodes rotating at once one adds the key and the other is told
    /// so ([`SealError::KeyExists`]); either way there is one current key.
    pub async fn rotate(&self, actor: &str, now: i64) -> Result<u32, SealError> {
        let id = match &self.source {
            Source::Fixed => return Err(SealError::Io("this key ring has no key file".to_owned())),
            Source::File(path) => key_file::append_key(path)?,
            Source::Store { store, kek } => {
                self.refresh().await?;
                let id = self
                    .current_key_id()
                    .checked_add(1)
                    .ok_or_else(|| SealError::Store("key ids exhausted".to_owned()))?;
                let added = add_key(store.as_ref(), kek.as_ref(), id, actor, now).await;
                self.refresh().await?;
                added?;
                id
            }
        };
        self.refresh().await?;
        Ok(id)
    }

    /// Removes key `id` from the ring's source. The current key cannot be retired. The caller
    /// must first make sure nothing is sealed under it (the store checks again itself).
    pub async fn retire(&self, id: u32) -> Result<(), SealError> {
        if id == self.current_key_id() {
            return Err(SealError::Io(format!(
                "key {id} is the current key and cannot be retired"
            )));
        }
        match &self.source {
            Source::Fixed => return Err(SealError::Io("this key ring has no key file".to_owned())),
            Source::File(path) => key_file::remove_key(path, id)?,
            Source::Store { store, .. } => store.retire_seal_key(id).await.map_err(store_error)?,
        }
        self.refresh().await
    }

    /// Like [`KeyRing::open`], but when the seed names a key this ring does not know yet
    /// (another node rotated), re-reads the keys from their source first.
    pub async fn open_fresh(&self, token_id: &str, sealed: &SealedSeed) -> Result<Zeroizing<Vec<u8>>, SealError> {
        match self.keys().open(token_id, sealed) {
            Err(SealError::UnknownKey(_)) => {
                self.refresh().await?;
                self.keys().open(token_id, sealed)
            }
            other => other,
        }
    }

    fn keys(&self) -> Arc<Keys> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Id of the key that [`KeyRing::seal`] uses.
    pub fn current_key_id(&self) -> u32 {
        self.keys().current
    }

    /// Ids of all keys in the ring, ascending.
    pub fn key_ids(&self) -> Vec<u32> {
        self.keys().by_id.keys().copied().collect()
    }

    /// True when `sealed` was made under an older key and should be re-sealed.
    pub fn needs_reseal(&self, sealed: &SealedSeed) -> bool {
        sealed.key_id != self.current_key_id()
    }

    /// Seals `plaintext` for the token `token_id` under the current key.
    pub fn seal(&self, token_id: &str, plaintext: &[u8]) -> Result<SealedSeed, SealError> {
        let keys = self.keys();
        let master = keys
            .by_id
            .get(&keys.current)
            .ok_or(SealError::UnknownKey(keys.current))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        // Reserve room for the tag up front so the buffer never reallocates and leaves a
        // plaintext copy behind in freed memory.
        let mut in_out = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
        in_out.extend_from_slice(plaintext);
        master
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(master.id, token_id)),
                &mut *in_out,
            )
            .map_err(|_| SealError::Corrupt)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + in_out.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&in_out);
        Ok(SealedSeed {
            key_id: master.id,
            blob,
        })
    }

    /// Opens a seed sealed for `token_id`. Any mismatch (other token, other key id, changed
    /// byte, short blob) is [`SealError::Corrupt`]; a key id not in the ring (even after
    /// re-reading the key file) is [`SealError::UnknownKey`].
    pub fn open(&self, token_id: &str, sealed: &SealedSeed) -> Result<Zeroizing<Vec<u8>>, SealError> {
        match self.keys().open(token_id, sealed) {
            Err(SealError::UnknownKey(_)) if matches!(self.source, Source::File(_)) => {
                self.reload()?;
                self.keys().open(token_id, sealed)
            }
            other => other,
        }
    }
}

impl Keys {
    fn new<'a>(keys: impl IntoIterator<Item = (u32, &'a [u8; KEY_LEN])>) -> Result<Self, SealError> {
        let mut by_id = BTreeMap::new();
        for (id, bytes) in keys {
            let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::Io("unusable key".to_owned()))?;
            let key = MasterKey {
                id,
                key: LessSafeKey::new(unbound),
            };
            if by_id.insert(id, key).is_some() {
                return Err(SealError::Io(format!("key id {id} appears twice")));
            }
        }
        let current = *by_id
            .keys()
            .next_back()
            .ok_or_else(|| SealError::Io("no keys".to_owned()))?;
        Ok(Self { by_id, current })
    }

    fn open(&self, token_id: &str, sealed: &SealedSeed) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let master = self
            .by_id
            .get(&sealed.key_id)
            .ok_or(SealError::UnknownKey(sealed.key_id))?;
        if sealed.blob.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = sealed.blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Corrupt)?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plain_len = master
            .key
            .open_in_place(nonce, Aad::from(associated_data(master.id, token_id)), &mut buffer)
            .map_err(|_| SealError::Corrupt)?
            .len();
        buffer.truncate(plain_len);
        Ok(buffer)
    }
}

/// Wraps a fresh random key under `id` and stores it.
async fn add_key(
    store: &dyn KeyStore,
    kek: &dyn KeyEncryptionKey,
    id: u32,
    actor: &str,
    now: i64,
) -> Result<(), SealError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    SystemRandom::new().fill(&mut *key).map_err(|_| SealError::Random)?;
    let wrapped = kek.wrap(id, &key)?;
    store
        .add_seal_key(&WrappedSealKey {
            id,
            wrapped,
            kek_id: kek.id().to_owned(),
            created_at: now,
            created_by: actor.to_owned(),
        })
        .await
        .map_err(|err| match err {
            crate::StoreError::Conflict(_) => SealError::KeyExists(id),
            other => store_error(other),
        })
}

/// Every key in the store, unwrapped.
async fn load_store(store: &dyn KeyStore, kek: &dyn KeyEncryptionKey) -> Result<Keys, SealError> {
    let wrapped = store.seal_keys().await.map_err(store_error)?;
    let mut raw = Vec::with_capacity(wrapped.len());
    for key in &wrapped {
        let bytes = kek.unwrap(key.id, &key.wrapped).map_err(|_| {
            SealError::Store(format!(
                "this node's key-encryption key ({}) does not open seal key {} (wrapped by key-encryption key {}): \
                 give this node the key-encryption key the other nodes use",
                kek.id(),
                key.id,
                key.kek_id
            ))
        })?;
        raw.push((key.id, bytes));
    }
    Keys::new(raw.iter().map(|(id, bytes)| (*id, &**bytes)))
}

fn store_error(err: crate::StoreError) -> SealError {
    SealError::Store(err.to_string())
}

fn read_file(path: &Path) -> Result<Keys, SealError> {
    let keys = key_file::read_keys(path)?;
    Keys::new(keys.iter().map(|(id, bytes)| (*id, &**bytes))).map_err(|err| match err {
        SealError::Io(msg) => SealError::Io(format!("{}: {msg}", path.display())),
        other => other,
    })
}

/// `"rampart-seed-v1\0" || key_id (big-endian) || token_id`.
fn associated_data(key_id: u32, token_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + 4 + token_id.len());
    aad.extend_from_slice(AAD_PREFIX);
    aad.extend_from_slice(&key_id.to_be_bytes());
    aad.extend_from_slice(token_id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn ring() -> KeyRing {
        KeyRing::from_keys([(1, &[7u8; KEY_LEN]), (2, &[9u8; KEY_LEN])]).unwrap()
    }

    #[test]
    fn round_trip_uses_current_key() {
        let ring = ring();
        let sealed = ring.seal("tok-1", b"0123456789abcdefghij").unwrap();
        assert_eq!(sealed.key_id, 2);
        assert_eq!(sealed.blob.len(), NONCE_LEN + 20 + TAG_LEN);
        assert_eq!(&**ring.open("tok-1", &sealed).unwrap(), b"0123456789abcdefghij");
    }

    #[test]
    fn nonces_differ() {
        let ring = ring();
        let a = ring.seal("tok-1", b"seed").unwrap();
        let b = ring.seal("tok-1", b"seed").unwrap();
        assert_ne!(a.blob, b.blob);
    }

    #[test]
    fn blob_moved_to_other_token_fails() {
        let ring = ring();
        let sealed = ring.seal("tok-1", b"seed-seed-seed-seed!").unwrap();
        assert_eq!(ring.open("tok-2", &sealed), Err(SealError::Corrupt));
    }

    #[test]
    fn wrong_key_id_fails() {
        let ring = ring();
        let mut sealed = ring.seal("tok-1", b"seed-seed-seed-seed!").unwrap();
        sealed.key_id = 1;
        assert_eq!(ring.open("tok-1", &sealed), Err(SealError::Corrupt));
        sealed.key_id = 3;
        assert_eq!(ring.open("tok-1", &sealed), Err(SealError::UnknownKey(3)));
    }

    #[test]
    fn tampered_or_short_blob_fails() {
        let ring = ring();
        let sealed = ring.seal("tok-1", b"seed-seed-seed-seed!").unwrap();
        for index in 0..sealed.blob.len() {
            let mut bad = sealed.clone();
            bad.blob[index] ^= 0x01;
            assert_eq!(ring.open("tok-1", &bad), Err(SealError::Corrupt), "byte {index}");
        }
        let short = SealedSeed {
            key_id: 2,
            blob: sealed.blob[..NONCE_LEN + TAG_LEN - 1].to_vec(),
        };
        assert_eq!(ring.open("tok-1", &short), Err(SealError::Corrupt));
    }

    #[test]
    fn debug_hides_blob() {
        let sealed = SealedSeed {
            key_id: 4,
            blob: vec![0xAB; 40],
        };
        let text = format!("{sealed:?}");
        assert!(text.contains("blob_len: 40"));
        assert!(!text.contains("171"));
        assert!(!format!("{:?}", ring()).contains("LessSafeKey"));
    }
}
