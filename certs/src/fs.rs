//! Writing certificate and key files: atomically (temporary file, fsync, rename) so a crash
//! never leaves half a key behind, and with private keys readable by their owner only (0600
//! on unix, also when an existing file with looser permissions is replaced).

use crate::CertError;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Largest certificate or key file we agree to read; real ones are a few kilobytes.
pub(crate) const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// Who may read a file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Certificates: world-readable (0644).
    Public,
    /// Private keys: owner only (0600).
    Private,
}

/// Writes `contents` to `path` via a temporary file in the same directory and a rename.
pub(crate) fn write_file(path: &Path, contents: &[u8], access: Access) -> Result<(), CertError> {
    let tmp = temp_path(path);
    let result =
        write_temp(&tmp, contents, access).and_then(|()| fs::rename(&tmp, path).map_err(|e| CertError::io(path, e)));
    if result.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a whole PEM file, refusing files larger than [`MAX_PEM_FILE_BYTES`].
pub(crate) fn read_pem_file(path: &Path) -> Result<String, CertError> {
    let file = File::open(path).map_err(|e| CertError::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CertError::io(path, e))?;
    if bytes.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err(CertError::Parse {
            what: format!("PEM file {}", path.display()),
            reason: format!("larger than {MAX_PEM_FILE_BYTES} bytes"),
        });
    }
    String::from_utf8(bytes).map_err(|_| CertError::Parse {
        what: format!("PEM file {}", path.display()),
        reason: "not valid UTF-8 text".to_owned(),
    })
}

fn write_temp(tmp: &Path, contents: &[u8], access: Access) -> Result<(), CertError> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode(access));
    }
    let mut file = options.open(tmp).map_err(|e| CertError::io(tmp, e))?;
    // `mode` only applies when the file is created; a stale temporary file left by a crash
    // keeps its old permissions, so set them explicitly before any secret is written.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode(access)))
            .map_err(|e| CertError::io(tmp, e))?;
    }
    #[cfg(not(unix))]
    let _ = access;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| CertError::io(tmp, e))
}

#[cfg(unix)]
fn mode(access: Access) -> u32 {
    match access {
        Access::Public => 0o644,
        Access::Private => 0o600,
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}
