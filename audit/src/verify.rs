//! Verifying audit files and folders: every stream is read in order through the core
//! verifier, which names the first record that breaks the chain. Checkpoints must name the
//! stream their files are named after. Given the heads anchored in the store, a stream whose
//! files end before its newest anchored checkpoint is cut, a stream the store knows with no
//! file left is deleted, and a record under an anchored number that is not the anchored one
//! was replaced.

use crate::AuditError;
use crate::files::{StreamFile, collect, for_each_line, parse_name};
use rampart_core::audit::{Anchor, Finding, Place, Problem, StreamVerifier, Summary};
use std::collections::BTreeMap;
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
    /// How the stream stands against the store's anchors.
    pub anchoring: Anchoring,
}

/// Whether a stream was compared with the checkpoint heads anchored in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchoring {
    /// No anchors were given (no store, or no public key to name the streams by).
    NotChecked,
    /// The store knows no stream of this name for the key: never anchored there.
    Unknown,
    /// Compared with this many anchored heads.
    Checked {
        /// Heads anchored for the stream.
        anchors: usize,
    },
}

/// Options for [`verify_paths`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Ed25519 public key (32 bytes) to check checkpoints with.
    pub public_key: Option<Vec<u8>>,
    /// Accept streams whose oldest files were removed.
    pub allow_missing_start: bool,
    /// Fail a stream whose last records follow no checkpoint.
    pub require_signed_tail: bool,
    /// The heads anchored in the store for every stream of the public key, by stream. Streams
    /// listed here with no file among the paths are reported deleted.
    pub anchors: Option<BTreeMap<String, Vec<Anchor>>>,
}

/// Verifies every stream found in `paths` (folders and files), and, with anchors, every
/// anchored stream of which no file was found.
pub fn verify_paths(paths: &[PathBuf], options: &VerifyOptions) -> Result<Vec<StreamReport>, AuditError> {
    let mut reports = Vec::new();
    let found = collect(paths)?;
    for (stream, files) in &found {
        reports.push(verify_stream(stream, files, options)?);
    }
    for (stream, anchors) in options.anchors.iter().flatten() {
        if found.contains_key(stream) {
            continue;
        }
        // Every writer creates its stream's first file as it registers the stream.
        let problem = match anchors.iter().max_by_key(|anchor| anchor.seq) {
            Some(newest) => Problem::Deleted {
                anchored: newest.seq,
                file: newest.file.clone(),
            },
            None => Problem::DeletedUnanchored,
        };
        let finding = Some(Finding {
            place: None,
            seq: None,
            problem,
        });
        reports.push(StreamReport {
            stream: stream.clone(),
            files: 0,
            summary: Summary::default(),
            finding,
            anchoring: Anchoring::Checked { anchors: anchors.len() },
        });
    }
    reports.sort_by(|a, b| a.stream.cmp(&b.stream));
    Ok(reports)
}

fn verify_stream(stream: &str, files: &[StreamFile], options: &VerifyOptions) -> Result<StreamReport, AuditError> {
    let mut verifier = StreamVerifier::new(options.public_key.clone(), options.allow_missing_start)
        .require_signed_tail(options.require_signed_tail);
    let anchoring = match &options.anchors {
        None => Anchoring::NotChecked,
        Some(by_stream) => match by_stream.get(stream) {
            None => Anchoring::Unknown,
            Some(anchors) => {
                verifier = verifier.with_anchors(anchors.clone());
                Anchoring::Checked { anchors: anchors.len() }
            }
        },
    };
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
        verifier = verifier.for_stream(stream);
    }
    for file in files {
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
    Ok(StreamReport {
        stream: stream.to_owned(),
        files: files.len(),
        summary,
        finding,
        anchoring,
    })
}
