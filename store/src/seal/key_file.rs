//! The seed-sealing key file: parse `v1 <key_id> <hex>` lines, create a new file with one
//! random key atomically and privately (0600 in a 0700 directory), and refuse files that
//! group or others can access. Rotation and retirement read, change and replace the file
//! under an exclusive lock on `.FILE.lock` beside it, so concurrent ones (threads of one
//! provisioner, or processes on one host) follow each other instead of overwriting each
//! other's keys. Key bytes are zeroized after use and never appear in errors.

use std::io::Write;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::{KEY_LEN, SealError};

/// A key id and its key bytes, wiped on drop.
pub(super) type RawKey = (u32, Zeroizing<[u8; KEY_LEN]>);

/// Reads every key in the file at `path` after checking its permissions.
pub(super) fn read_keys(path: &Path) -> Result<Vec<RawKey>, SealError> {
    check_permissions(path)?;
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|err| io_error("cannot read", path, &err))?);
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = parse_key_line(line).ok_or_else(|| {
            SealError::Io(format!(
                "{}: line {} is not `v1 <key_id> <64 hex digits>`",
                path.display(),
                index + 1
            ))
        })?;
        keys.push(key);
    }
    Ok(keys)
}

/// Creates the key file with one fresh key (id 1) unless it already exists.
pub(super) fn create_if_missing(path: &Path) -> Result<(), SealError> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => create_key_file(path),
        Err(err) => Err(io_error("cannot inspect", path, &err)),
    }
}

/// Appends a fresh random key with the next id, rewriting the file atomically (private
/// temporary file, synced, renamed over the old one). Returns the new id.
pub(super) fn append_key(path: &Path) -> Result<u32, SealError> {
    let _lock = lock(path)?;
    let mut keys = read_keys(path)?;
    let id = keys
        .iter()
        .map(|(id, _)| *id)
        .max()
        .unwrap_or(0)
        .checked_add(1)
        .ok_or_else(|| SealError::Io("key ids exhausted".to_owned()))?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    SystemRandom::new().fill(&mut *key).map_err(|_| SealError::Random)?;
    keys.push((id, key));
    replace_key_file(path, &keys)?;
    tracing::info!(target: "rampart::store", path = %path.display(), key_id = id, "added seed-sealing key");
    Ok(id)
}

/// Removes key `id` from the file, rewriting it atomically. Unknown ids and removing the last
/// key are errors.
pub(super) fn remove_key(path: &Path, id: u32) -> Result<(), SealError> {
    let _lock = lock(path)?;
    let mut keys = read_keys(path)?;
    let before = keys.len();
    keys.retain(|(key_id, _)| *key_id != id);
    if keys.len() == before {
        return Err(SealError::UnknownKey(id));
    }
    if keys.is_empty() {
        return Err(SealError::Io("cannot remove the only key".to_owned()));
    }
    replace_key_file(path, &keys)?;
    tracing::info!(target: "rampart::store", path = %path.display(), key_id = id, "removed seed-sealing key");
    Ok(())
}

/// Takes the exclusive lock that serialises changes to the key file at `path`, waiting for
/// another holder; released when the returned file is dropped. The lock is on a file of its
/// own (`.FILE.lock`, 0600), since the key file itself is replaced by a rename.
fn lock(path: &Path) -> Result<std::fs::File, SealError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let lock_path = dir.join(format!(".{file_name}.lock"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&lock_path)
        .map_err(|err| io_error("cannot open", &lock_path, &err))?;
    // Held for a read, a write and a sync at most.
    file.lock().map_err(|err| io_error("cannot lock", &lock_path, &err))?;
    Ok(file)
}

fn replace_key_file(path: &Path, keys: &[RawKey]) -> Result<(), SealError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut contents = Zeroizing::new(String::from(HEADER));
    for (id, key) in keys {
        contents.push_str(&key_line(*id, key));
    }
    let temp = temp_path(dir, path)?;
    let result = write_private(&temp, contents.as_bytes()).and_then(|()| {
        std::fs::rename(&temp, path).map_err(|err| io_error("cannot replace", path, &err))?;
        // Make the rename itself durable.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|err| io_error("cannot sync", dir, &err))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn temp_path(dir: &Path, path: &Path) -> Result<std::path::PathBuf, SealError> {
    let mut suffix = [0u8; 8];
    SystemRandom::new().fill(&mut suffix).map_err(|_| SealError::Random)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    Ok(dir.join(format!(".{file_name}.{:016x}.tmp", u64::from_be_bytes(suffix))))
}

const HEADER: &str = "# Rampart seed-sealing keys. Keep secret and back up: without it sealed seeds are lost.\n";

fn parse_key_line(line: &str) -> Option<RawKey> {
    let mut fields = line.split_ascii_whitespace();
    let (Some("v1"), Some(id), Some(hex), None) = (fields.next(), fields.next(), fields.next(), fields.next()) else {
        return None;
    };
    let id: u32 = id.parse().ok()?;
    let hex = hex.as_bytes();
    if hex.len() != KEY_LEN * 2 {
        return None;
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    for (byte, pair) in key.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some((id, key))
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn key_line(id: u32, key: &[u8; KEY_LEN]) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut line = Zeroizing::new(String::with_capacity(16 + KEY_LEN * 2));
    line.push_str(&format!("v1 {id} "));
    for byte in key {
        line.push(char::from(DIGITS[usize::from(byte >> 4)]));
        line.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    line.push('\n');
    line
}

/// Writes a new key file: a private temporary file in the same directory, synced, then
/// hard-linked into place, which fails instead of overwriting if another process won the race.
fn create_key_file(path: &Path) -> Result<(), SealError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    create_private_dir(dir)?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    SystemRandom::new().fill(&mut *key).map_err(|_| SealError::Random)?;
    let contents = Zeroizing::new(format!("{HEADER}{}", &*key_line(1, &key)));
    let temp = temp_path(dir, path)?;
    let result = write_private(&temp, contents.as_bytes()).and_then(|()| {
        match std::fs::hard_link(&temp, path) {
            Ok(()) => Ok(()),
            // Another process created the file first: use theirs.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(err) => Err(io_error("cannot create", path, &err)),
        }
    });
    let _ = std::fs::remove_file(&temp);
    result?;
    tracing::info!(target: "rampart::store", path = %path.display(), "created seed-sealing key file");
    Ok(())
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), SealError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|err| io_error("cannot create", path, &err))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|err| io_error("cannot write", path, &err))
}

fn create_private_dir(dir: &Path) -> Result<(), SealError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|err| io_error("cannot create directory", dir, &err))
}

#[cfg(unix)]
pub(super) fn check_permissions(path: &Path) -> Result<(), SealError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|err| io_error("cannot inspect", path, &err))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::error!(
            target: "rampart::store",
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "key file is accessible to group or others; refusing to use it"
        );
        return Err(SealError::Io(format!(
            "{} has mode {:o}; it must be readable by its owner only (chmod 600)",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn check_permissions(_path: &Path) -> Result<(), SealError> {
    Ok(())
}

fn io_error(what: &str, path: &Path, err: &std::io::Error) -> SealError {
    SealError::Io(format!("{what} {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::KeyRing;
    use super::*;

    #[test]
    fn key_file_is_created_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/keys/seal.keys");
        let first = KeyRing::load_or_create(&path).unwrap();
        assert_eq!(first.key_ids(), vec![1]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = first.seal("tok-1", b"seed-seed-seed-seed!").unwrap();
        let second = KeyRing::load_or_create(&path).unwrap();
        assert_eq!(&**second.open("tok-1", &sealed).unwrap(), b"seed-seed-seed-seed!");
        // No temporary files are left behind.
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1);
    }

    #[test]
    fn rotation_appends_a_key_that_becomes_current() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.keys");
        let old = KeyRing::load_or_create(&path).unwrap();
        let sealed = old.seal("tok-1", b"seed-seed-seed-seed!").unwrap();
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(key_line(2, &[5u8; KEY_LEN]).as_bytes()).unwrap();
        let new = KeyRing::load(&path).unwrap();
        assert_eq!(new.current_key_id(), 2);
        assert!(new.needs_reseal(&sealed));
        assert_eq!(&**new.open("tok-1", &sealed).unwrap(), b"seed-seed-seed-seed!");
    }

    #[tokio::test]
    async fn rotate_and_retire_rewrite_the_file_and_other_rings_follow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.keys");
        let provisioner = KeyRing::load_or_create(&path).unwrap();
        let gateway = KeyRing::load(&path).unwrap();
        let old = provisioner.seal("tok-1", b"seed-seed-seed-seed!").unwrap();
        assert_eq!(provisioner.rotate("desk", 0).await.unwrap(), 2);
        assert_eq!(provisioner.current_key_id(), 2);
        let new = provisioner.seal("tok-1", b"seed-seed-seed-seed!").unwrap();
        assert_eq!(new.key_id, 2);
        // The other process learns key 2 when it first meets it.
        assert_eq!(&**gateway.open("tok-1", &new).unwrap(), b"seed-seed-seed-seed!");
        assert!(provisioner.retire(2).await.is_err(), "the current key stays");
        provisioner.retire(1).await.unwrap();
        assert_eq!(provisioner.key_ids(), vec![2]);
        assert_eq!(provisioner.open("tok-1", &old), Err(SealError::UnknownKey(1)));
        assert_eq!(KeyRing::load(&path).unwrap().key_ids(), vec![2]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != ".seal.keys.lock")
            .collect();
        assert_eq!(left, ["seal.keys"], "no temporary files left");
    }

    /// Before the lock, rotations at once each read the file, appended "their" next id and
    /// renamed their copy over the file: several reported the same new key, only the last
    /// rename's bytes survived, and seeds sealed under the others' key could never be opened.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn rotations_at_once_each_add_a_key_and_none_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.keys");
        KeyRing::load_or_create(&path).unwrap();
        let rotations: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                tokio::spawn(async move {
                    // Each as a provisioner of its own on this host.
                    let ring = KeyRing::load(&path).unwrap();
                    let id = ring.rotate("desk", 0).await.unwrap();
                    let token = format!("tok-{i}");
                    (id, token.clone(), ring.seal(&token, b"seed-seed-seed-seed!").unwrap())
                })
            })
            .collect();
        let mut ids = Vec::new();
        let mut sealed = Vec::new();
        for rotation in rotations {
            let (id, token, seed) = rotation.await.unwrap();
            ids.push(id);
            sealed.push((token, seed));
        }
        ids.sort_unstable();
        assert_eq!(
            ids,
            (2..=9).collect::<Vec<u32>>(),
            "every rotation added a key of its own"
        );
        let after = KeyRing::load(&path).unwrap();
        assert_eq!(after.key_ids(), (1..=9).collect::<Vec<u32>>());
        assert_eq!(after.current_key_id(), 9);
        for (token, seed) in &sealed {
            assert_eq!(&**after.open(token, seed).unwrap(), b"seed-seed-seed-seed!", "{token}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.keys");
        KeyRing::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(KeyRing::load(&path), Err(SealError::Io(_))));
    }

    #[test]
    fn malformed_key_file_names_the_line_not_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.keys");
        write_private(&path, b"# comment\nv1 1 abcd\n").unwrap();
        let err = KeyRing::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("abcd"), "{err}");
    }
}
