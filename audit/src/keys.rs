//! The checkpoint signing key: an Ed25519 PKCS#8 document created on first use (0600), its
//! public half written beside it (`.pub`, one line `ed25519 <hex>`) for `rampart audit verify`.

use crate::AuditError;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The public key file beside a signing key.
pub fn public_key_path(signing_key: &Path) -> PathBuf {
    signing_key.with_extension("pub")
}

/// Loads the signing key at `path`, creating it (and its `.pub`) when missing.
pub fn load_or_create(path: &Path) -> Result<Ed25519KeyPair, AuditError> {
    let pkcs8 = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path)?,
        Err(e) => return Err(AuditError::io("cannot read the audit signing key", path, e)),
    };
    let key = Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| AuditError::Key(format!("{}: not an Ed25519 PKCS#8 signing key", path.display())))?;
    let public = public_key_path(path);
    if !public.exists() {
        write_public(&public, key.public_key().as_ref())?;
    }
    Ok(key)
}

/// Reads a public key written by [`load_or_create`] (or 64 hex digits alone).
pub fn read_public_key(path: &Path) -> Result<Vec<u8>, AuditError> {
    let text = std::fs::read_to_string(path).map_err(|e| AuditError::io("cannot read", path, e))?;
    let hex_part = text.trim().strip_prefix("ed25519").unwrap_or(text.trim()).trim();
    match hex::decode(hex_part) {
        Ok(bytes) if bytes.len() == 32 => Ok(bytes),
        _ => Err(AuditError::Key(format!(
            "{}: not an Ed25519 public key (`ed25519 <64 hex digits>`)",
            path.display()
        ))),
    }
}

fn create(path: &Path) -> Result<Vec<u8>, AuditError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| AuditError::io("cannot create", parent, e))?;
    }
    let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| AuditError::Key("the system random generator failed".into()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| AuditError::io("cannot create the audit signing key", path, e))?;
    file.write_all(document.as_ref())
        .and_then(|()| file.sync_all())
        .map_err(|e| AuditError::io("cannot write the audit signing key", path, e))?;
    Ok(document.as_ref().to_vec())
}

fn write_public(path: &Path, public: &[u8]) -> Result<(), AuditError> {
    std::fs::write(path, format!("ed25519 {}\n", hex::encode(public)))
        .map_err(|e| AuditError::io("cannot write", path, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_key_is_created_once_and_its_public_half_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/audit-signing.key");
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.public_key().as_ref(), again.public_key().as_ref());
        let public = read_public_key(&public_key_path(&path)).unwrap();
        assert_eq!(public, first.public_key().as_ref());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn broken_key_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "not a key").unwrap();
        let err = load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("not an Ed25519 PKCS#8"), "{err}");
        std::fs::write(&path, "ed25519 abcd").unwrap();
        assert!(read_public_key(&path).is_err());
    }
}
