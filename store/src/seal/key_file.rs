//! The seed-sealing key file: parse `v1 <key_id> <hex>` lines, create a new file with one
//! random key atomically and privately (0600 in a 0700 directory), and refuse files that
//! group or others can access. Key bytes are zeroized after use and never appear in errors.

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
    let contents = Zeroizing::new(format!(
        "# Rampart seed-sealing keys. Keep secret and back up: without it sealed seeds are lost.\n{}",
        &*key_line(1, &key)
    ));
    let mut suffix = [0u8; 8];
    SystemRandom::new().fill(&mut suffix).map_err(|_| SealError::Random)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.{:016x}.tmp", u64::from_be_bytes(suffix)));
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
fn check_permissions(path: &Path) -> Result<(), SealError> {
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
fn check_permissions(_path: &Path) -> Result<(), SealError> {
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
