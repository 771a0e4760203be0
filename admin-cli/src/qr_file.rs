//! QR images of enrolment URIs saved to files (`--qr FILE`): PNG or SVG by the file's extension,
//! drawn by `rampart_core::qr`, written atomically with mode 0600. Errors never quote the encoded
//! data (it holds a TOTP seed).

use rampart_core::qr::{self, QrError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a QR image could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum QrFileError {
    /// The QR code could not be drawn.
    #[error(transparent)]
    Draw(#[from] QrError),
    /// The file name's extension picks no format.
    #[error("cannot choose a QR image format for {path}: the file name must end in .png or .svg")]
    UnsupportedExtension {
        /// The path as given.
        path: PathBuf,
    },
    /// Creating, writing, syncing or renaming the file failed.
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The destination path.
        path: PathBuf,
        /// The underlying error (in the message, not a separate source: said once).
        cause: io::Error,
    },
}

/// Writes `data` as a QR image to `path`, in the format its extension names (`.png` or `.svg`,
/// any case). The file is written to a temporary file in the same folder (mode 0600 on unix),
/// synced and renamed over `path`, so readers see either the old file or the complete new one.
pub fn write_file(path: &Path, data: &str) -> Result<(), QrFileError> {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let bytes = match extension.as_deref() {
        Some("png") => qr::png(data)?,
        Some("svg") => qr::svg(data)?.into_bytes(),
        _ => return Err(QrFileError::UnsupportedExtension { path: path.to_owned() }),
    };
    write_atomically(path, &bytes).map_err(|cause| QrFileError::Write {
        path: path.to_owned(),
        cause,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".qr-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the folder itself is synced.
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const URI: &str = "otpauth://totp/Rampart:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Rampart&algorithm=SHA1&digits=6&period=30";

    #[test]
    fn write_file_picks_format_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let png_path = dir.path().join("alice.PNG");
        write_file(&png_path, URI).unwrap();
        assert_eq!(std::fs::read(&png_path).unwrap(), qr::png(URI).unwrap());

        let svg_path = dir.path().join("alice.svg");
        write_file(&svg_path, URI).unwrap();
        assert!(std::fs::read_to_string(&svg_path).unwrap().contains("<svg"));

        // Overwriting replaces the file; no temporary files are left behind.
        write_file(&png_path, URI).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["alice.PNG", "alice.svg"]);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in [&png_path, &svg_path] {
                let mode = std::fs::metadata(path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", path.display());
            }
        }
    }

    #[test]
    fn write_file_rejects_other_extensions() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["alice.jpg", "alice", "alice.png.txt"] {
            let path = dir.path().join(name);
            let err = write_file(&path, URI).unwrap_err();
            assert!(matches!(err, QrFileError::UnsupportedExtension { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(".png") && message.contains(".svg"), "{message}");
            assert!(!message.contains("secret"));
            assert!(!path.exists());
        }
    }

    #[test]
    fn write_file_reports_a_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("alice.png");
        let err = write_file(&path, URI).unwrap_err();
        assert!(matches!(err, QrFileError::Write { .. }), "{err:?}");
        assert!(!err.to_string().contains("secret"));
    }
}
