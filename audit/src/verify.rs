//! Verifying audit files and folders: every stream is read in order through the core
//! verifier, which names the first record that breaks the chain. Checkpoints must name the
//! stream their files are named after.

use crate::AuditError;
use crate::files::{collect, for_each_line, parse_name};
use rampart_core::audit::{Finding, Place, StreamVerifier, Summary};
use std::path::PathBuf;

/// The outcome for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    /// The stream.
    pub stream: String,
    /// Files read.
    pub files: usize,
    /// What was read.
    pub summary: Summary,
    /// The first problem, if any.
    pub finding: Option<Finding>,
}

/// Options for [`verify_paths`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Ed25519 public key (32 bytes) to check checkpoints with.
    pub public_key: Option<Vec<u8>>,
    /// Accept streams whose oldest files were removed.
    pub allow_missing_start: bool,
}

/// Verifies every stream found in `paths` (folders and files).
pub fn verify_paths(paths: &[PathBuf], options: &VerifyOptions) -> Result<Vec<StreamReport>, AuditError> {
    let mut reports = Vec::new();
    for (stream, files) in collect(paths)? {
        let mut verifier = StreamVerifier::new(options.public_key.clone(), options.allow_missing_start);
        // A file given by a name that is not `STREAM-SEQ.jsonl` is its own stream named after
        // the file: then the first checkpoint says which stream it is.
        let named = files.first().is_some_and(|file| {
            file.path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_name)
                .is_some()
        });
        if named {
            verifier = verifier.for_stream(&stream);
        }
        for file in &files {
            let shown = file.path.display().to_string();
            for_each_line(&file.path, |line, bytes, terminated| {
                let place = Place {
                    file: shown.clone(),
                    line,
                };
                verifier.line(place, bytes, terminated);
            })?;
        }
        let (finding, summary) = verifier.finish();
        reports.push(StreamReport {
            stream,
            files: files.len(),
            summary,
            finding,
        });
    }
    Ok(reports)
}
