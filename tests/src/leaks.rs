//! The suite-wide secret scan's side of the kit: when `RAMPART_TEST_ARTIFACTS` names a folder
//! (scripts/test sets it), the services' folders are kept there instead of deleted, and every
//! password, code and seed a test uses is remembered, so `tests/leak_scan.rs` can search every
//! log and audit file of the whole run for them afterwards.

use std::io::Write;
use std::path::PathBuf;

/// Environment variable naming the artifacts folder.
pub const ARTIFACTS_ENV: &str = "RAMPART_TEST_ARTIFACTS";
/// File (in the artifacts folder) of remembered secrets, one `kind<TAB>value` per line.
pub const SECRETS_FILE: &str = "secrets.tsv";

/// The artifacts folder, when the suite keeps its logs for the scan.
pub fn artifacts() -> Option<PathBuf> {
    std::env::var_os(ARTIFACTS_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// A temporary folder for a service's config, state and logs: inside the artifacts folder and
/// kept when the suite scans for leaks, deleted after the test otherwise.
pub fn service_dir() -> tempfile::TempDir {
    match artifacts() {
        Some(root) => {
            std::fs::create_dir_all(&root).unwrap();
            tempfile::Builder::new()
                .prefix("svc-")
                .disable_cleanup(true)
                .tempdir_in(root)
                .unwrap()
        }
        None => tempfile::tempdir().unwrap(),
    }
}

/// Remembers `value` (a password, code or seed the test used) for the leak scan.
pub fn remember(kind: &str, value: &str) {
    let Some(root) = artifacts() else {
        return;
    };
    if value.is_empty() || value.contains(['\n', '\t']) {
        return;
    }
    std::fs::create_dir_all(&root).unwrap();
    // One short write per line with O_APPEND: lines from parallel tests never interleave.
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(SECRETS_FILE))
        .unwrap();
    file.write_all(format!("{kind}\t{value}\n").as_bytes()).unwrap();
}
