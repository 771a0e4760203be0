//! Verifying one audit stream: lines are fed in file order and the verifier reports the first
//! record that breaks the chain — edited, missing, reordered, truncated, or a checkpoint whose
//! signature does not hold or that was signed for another stream — with its place. Given the
//! checkpoint heads recorded outside the files ([`Anchor`]s, from the store), it also reports
//! records cut off the end and records replaced under an anchored number; asked to, it fails
//! a stream whose last records follow no checkpoint.
//!
//! Memory stays constant however long the stream: sequence numbers must rise by exactly one, so
//! until the first jump every earlier number has been seen once and a repeat or step back is
//! caught on the spot; after a jump the only question left is whether the skipped number still
//! turns up (moved) or never does (missing), which one flag answers.

use super::chain::{GENESIS, LineError, check_line};
use super::checkpoint::{self, Checkpoint};
use std::fmt;

/// Where a line is: the file as the caller names it and its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// File name or path.
    pub file: String,
    /// Line number, from 1.
    pub line: u64,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.file, self.line)
    }
}

/// A checkpoint's head as recorded outside the stream's files (in the store): the record's
/// number and hash, and the file it was written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The checkpoint record's sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// The file it was in (its name).
    pub file: String,
}

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The last line of a file stops mid-record.
    Truncated,
    /// The line is not an audit record.
    Malformed(&'static str),
    /// The content does not match its hash.
    Edited,
    /// The record does not link to the one before it although its number fits.
    Unlinked,
    /// Records `from..=to` are absent.
    Missing {
        /// First missing sequence number.
        from: u64,
        /// Last missing sequence number.
        to: u64,
    },
    /// The record is out of order (or repeated).
    Reordered {
        /// The sequence number expected here.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// A checkpoint does not sign the record before it.
    CheckpointMismatch,
    /// A checkpoint's signature does not hold.
    BadSignature(String),
    /// A checkpoint names another stream than the one verified: it was copied or the files
    /// were swapped for another stream's.
    OtherStream {
        /// The stream being verified.
        expected: String,
        /// The stream the checkpoint names.
        found: String,
    },
    /// The files end before a record the store anchored: their last records were cut off.
    CutTail {
        /// The last record on file (none: the files hold no record).
        last: Option<u64>,
        /// The newest anchored record.
        anchored: u64,
        /// The file the anchored record was in.
        file: String,
    },
    /// The stream has no file at all, but the store anchored its records: it was deleted.
    Deleted {
        /// The newest anchored record.
        anchored: u64,
        /// The file it was in.
        file: String,
    },
    /// The stream has no file at all and no anchored checkpoint, but the store knows it: a
    /// writer opened it (and created its first file) before it was deleted.
    DeletedUnanchored,
    /// The record under an anchored number is not the one anchored: the files were rewritten.
    NotAnchored {
        /// The file the anchored record was in.
        file: String,
    },
    /// Records after the last checkpoint (reported only when a signed tail is required).
    UnsignedTail {
        /// The first record after the last checkpoint.
        from: u64,
        /// The last record.
        to: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated: the file ends in the middle of a record"),
            Self::Malformed(what) => write!(f, "malformed: not an audit record ({what})"),
            Self::Edited => f.write_str("edited: its content does not match its hash"),
            Self::Unlinked => f.write_str("edited: it does not link to the record before it"),
            Self::Missing { from, to } if from == to => write!(f, "missing: record {from} is not there"),
            Self::Missing { from, to } => write!(f, "missing: records {from} to {to} are not there"),
            Self::Reordered { expected, found } => {
                write!(f, "reordered: record {found} stands where record {expected} belongs")
            }
            Self::CheckpointMismatch => f.write_str("edited: the checkpoint does not cover the record before it"),
            Self::BadSignature(why) => write!(f, "bad signature: {why}"),
            Self::OtherStream { expected, found } => write!(
                f,
                "bad signature: checkpoint for another stream (it names {found:?}, this is {expected:?})"
            ),
            Self::CutTail {
                last: Some(last),
                anchored,
                file,
            } => write!(
                f,
                "cut: the files end at record {last} but the store anchored record {anchored} (in {file}); records {} to {anchored} are missing",
                last.saturating_add(1)
            ),
            Self::CutTail {
                last: None,
                anchored,
                file,
            } => write!(
                f,
                "cut: the files hold no record but the store anchored record {anchored} (in {file}); records 0 to {anchored} are missing"
            ),
            Self::Deleted { anchored, file } => write!(
                f,
                "deleted: no file of this stream is left but the store anchored its record {anchored} (in {file})"
            ),
            Self::DeletedUnanchored => f.write_str(
                "deleted: no file of this stream is left; the store knows the stream but had no checkpoint of it anchored yet",
            ),
            Self::NotAnchored { file } => write!(
                f,
                "replaced: it is not the record the store anchored under this number (in {file})"
            ),
            Self::UnsignedTail { from, to } if from == to => {
                write!(f, "unsigned: record {from} comes after the last checkpoint")
            }
            Self::UnsignedTail { from, to } => {
                write!(f, "unsigned: records {from} to {to} come after the last checkpoint")
            }
        }
    }
}

/// The first problem of a stream, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where (none for a stream with no line to point at).
    pub place: Option<Place>,
    /// The record's sequence number, when readable.
    pub seq: Option<u64>,
    /// What.
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.place, self.seq) {
            (Some(place), Some(seq)) => write!(f, "{place} (record {seq}): {}", self.problem),
            (Some(place), None) => write!(f, "{place}: {}", self.problem),
            (None, _) => write!(f, "{}", self.problem),
        }
    }
}

/// What a verified stream holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records read (checkpoints included).
    pub records: u64,
    /// Lowest and highest sequence numbers.
    pub first_seq: Option<u64>,
    /// Highest sequence number.
    pub last_seq: Option<u64>,
    /// Checkpoints whose signature was checked.
    pub checkpoints_verified: u64,
    /// Checkpoints not checked for want of a public key.
    pub checkpoints_unchecked: u64,
    /// Records after the last checkpoint (all of them when there is none): not yet covered
    /// by a signature.
    pub unsigned_tail: u64,
    /// Anchored records found in the files with the anchored hash.
    pub anchors_matched: u64,
}

/// Feeds one stream's lines in order; stops judging at the first problem.
#[derive(Debug)]
pub struct StreamVerifier {
    public_key: Option<Vec<u8>>,
    allow_missing_start: bool,
    /// The stream every checkpoint must name; unknown until the first checkpoint when the
    /// files' names do not tell.
    stream: Option<String>,
    next: Option<(u64, String)>,
    /// A jump forward waits for the end to tell a missing record from a moved one.
    gap: Option<Gap>,
    finding: Option<Finding>,
    summary: Summary,
    /// Anchored heads not yet met, lowest first.
    anchors: std::collections::VecDeque<Anchor>,
    require_signed_tail: bool,
    /// The last line read.
    last_place: Option<Place>,
}

/// A jump forward in sequence numbers, judged at the end.
#[derive(Debug)]
struct Gap {
    place: Place,
    /// The number that should have come.
    expected: u64,
    /// The number that came instead.
    found: u64,
    /// Whether `expected` turned up later (moved, not missing).
    expected_seen: bool,
}

impl StreamVerifier {
    /// A verifier; with `public_key` (Ed25519, 32 bytes) checkpoints' signatures are checked.
    /// `allow_missing_start` accepts a stream whose oldest files were removed on purpose.
    pub fn new(public_key: Option<Vec<u8>>, allow_missing_start: bool) -> Self {
        Self {
            public_key,
            allow_missing_start,
            stream: None,
            next: None,
            gap: None,
            finding: None,
            summary: Summary::default(),
            anchors: std::collections::VecDeque::new(),
            require_signed_tail: false,
            last_place: None,
        }
    }

    /// Checks the records against the checkpoint heads recorded outside the files: each must
    /// be in the files with its hash, and the files must not end before the newest.
    #[must_use]
    pub fn with_anchors(mut self, mut anchors: Vec<Anchor>) -> Self {
        anchors.sort_by_key(|anchor| anchor.seq);
        self.anchors = anchors.into();
        self
    }

    /// Fails a stream whose last records follow no checkpoint.
    #[must_use]
    pub fn require_signed_tail(mut self, required: bool) -> Self {
        self.require_signed_tail = required;
        self
    }

    /// Requires every checkpoint to name `stream`. Without it the first checkpoint's stream is
    /// taken and every later one must name the same.
    #[must_use]
    pub fn for_stream(mut self, stream: &str) -> Self {
        self.stream = Some(stream.to_owned());
        self
    }

    /// Feeds one line without its `\n`; `terminated` is false for a last line with no `\n`.
    pub fn line(&mut self, place: Place, bytes: &[u8], terminated: bool) {
        if self.finding.is_some() {
            return;
        }
        self.last_place = Some(place.clone());
        if !terminated {
            self.found(place, None, Problem::Truncated);
            return;
        }
        let link = match check_line(bytes) {
            Ok(link) => link,
            Err(LineError::HashMismatch) => {
                let seq = serde_json::from_slice::<serde_json::Value>(bytes)
                    .ok()
                    .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64));
                self.found(place, seq, Problem::Edited);
                return;
            }
            Err(LineError::Malformed(what)) => {
                self.found(place, None, Problem::Malformed(what));
                return;
            }
        };
        self.summary.records += 1;
        self.summary.first_seq = Some(self.summary.first_seq.map_or(link.seq, |s| s.min(link.seq)));
        self.summary.last_seq = Some(self.summary.last_seq.map_or(link.seq, |s| s.max(link.seq)));
        if let Some(gap) = &mut self.gap {
            // Past a jump only the skipped number matters: does it turn up later?
            gap.expected_seen |= link.seq == gap.expected;
            return;
        }
        match &self.next {
            None => {
                let from_start = link.seq == 0 && link.prev_hash == GENESIS;
                if !from_start && !self.allow_missing_start {
                    let problem = if link.seq == 0 {
                        Problem::Unlinked
                    } else {
                        Problem::Missing {
                            from: 0,
                            to: link.seq - 1,
                        }
                    };
                    self.found(place, Some(link.seq), problem);
                    return;
                }
            }
            Some((seq, prev)) => {
                if link.seq > *seq {
                    self.gap = Some(Gap {
                        place,
                        expected: *seq,
                        found: link.seq,
                        expected_seen: false,
                    });
                    return;
                }
                // Until here numbers rose by one from the first record, so every number below
                // `seq` was seen exactly once: a smaller one is a repeat or a step back.
                if link.seq < *seq {
                    let expected = *seq;
                    self.found(
                        place,
                        Some(link.seq),
                        Problem::Reordered {
                            expected,
                            found: link.seq,
                        },
                    );
                    return;
                }
                if link.prev_hash != *prev {
                    self.found(place, Some(link.seq), Problem::Unlinked);
                    return;
                }
            }
        }
        let checkpoint = link.record.get("checkpoint");
        if let Some(cp) = checkpoint
            && let Some(problem) = self.check_checkpoint(cp, &link.prev_hash, link.seq)
        {
            self.found(place, Some(link.seq), problem);
            return;
        }
        if let Some(problem) = self.check_anchor(link.seq, &link.hash) {
            self.found(place, Some(link.seq), problem);
            return;
        }
        self.summary.unsigned_tail = if checkpoint.is_some() {
            0
        } else {
            self.summary.unsigned_tail + 1
        };
        self.next = Some((link.seq + 1, link.hash));
    }

    /// Compares a record with the anchor of its number, if there is one.
    fn check_anchor(&mut self, seq: u64, hash: &str) -> Option<Problem> {
        // Anchors below the first record read were removed with the oldest files.
        while self.anchors.front().is_some_and(|anchor| anchor.seq < seq) {
            self.anchors.pop_front();
        }
        let anchor = self.anchors.front().filter(|anchor| anchor.seq == seq)?;
        if anchor.hash != hash {
            return Some(Problem::NotAnchored {
                file: anchor.file.clone(),
            });
        }
        self.anchors.pop_front();
        self.summary.anchors_matched += 1;
        None
    }

    /// Ends the stream: the first problem, if any, and what was read.
    pub fn finish(mut self) -> (Option<Finding>, Summary) {
        if self.finding.is_none()
            && let Some(gap) = self.gap.take()
        {
            let Gap {
                place,
                expected,
                found,
                expected_seen,
            } = gap;
            let problem = if expected_seen {
                Problem::Reordered { expected, found }
            } else {
                Problem::Missing {
                    from: expected,
                    to: found - 1,
                }
            };
            self.finding = Some(Finding {
                place: Some(place),
                seq: Some(found),
                problem,
            });
        }
        if self.finding.is_none()
            && let Some(newest) = self.anchors.back()
        {
            // Every anchor at or below the last record was met, so these lie beyond the end.
            let last = self.next.as_ref().map(|(next, _)| next - 1);
            self.finding = Some(Finding {
                place: self.last_place.take(),
                seq: last,
                problem: Problem::CutTail {
                    last,
                    anchored: newest.seq,
                    file: newest.file.clone(),
                },
            });
        }
        if self.finding.is_none()
            && self.require_signed_tail
            && self.summary.unsigned_tail > 0
            && let Some((next, _)) = &self.next
        {
            let to = next - 1;
            self.finding = Some(Finding {
                place: self.last_place.take(),
                seq: Some(to),
                problem: Problem::UnsignedTail {
                    from: (to + 1).saturating_sub(self.summary.unsigned_tail),
                    to,
                },
            });
        }
        (self.finding, self.summary)
    }

    fn found(&mut self, place: Place, seq: Option<u64>, problem: Problem) {
        self.finding = Some(Finding {
            place: Some(place),
            seq,
            problem,
        });
    }

    fn check_checkpoint(&mut self, value: &serde_json::Value, prev_hash: &str, seq: u64) -> Option<Problem> {
        let Ok(cp) = serde_json::from_value::<Checkpoint>(value.clone()) else {
            return Some(Problem::Malformed("checkpoint fields"));
        };
        if seq == 0 || cp.covers_seq != seq - 1 || cp.covers_hash != prev_hash {
            return Some(Problem::CheckpointMismatch);
        }
        // The stream is inside the signed statement, so a checkpoint copied from another stream
        // still verifies: the name is what tells.
        match &self.stream {
            Some(expected) if *expected != cp.stream => {
                return Some(Problem::OtherStream {
                    expected: expected.clone(),
                    found: cp.stream,
                });
            }
            Some(_) => {}
            None => self.stream = Some(cp.stream.clone()),
        }
        match &self.public_key {
            None => {
                self.summary.checkpoints_unchecked += 1;
                None
            }
            Some(key) => match checkpoint::verify(key, &cp) {
                Ok(()) => {
                    self.summary.checkpoints_verified += 1;
                    None
                }
                Err(e) => Some(Problem::BadSignature(e.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::chain::{SealedLine, seal};
    use crate::audit::checkpoint::{CheckpointRecord, sign};
    use crate::audit::event::Metadata;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use serde_json::json;

    fn key() -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[3u8; 32]).unwrap()
    }

    /// `n` records with a checkpoint as record 5.
    fn stream(n: u64) -> Vec<Vec<u8>> {
        stream_with_checkpoints(n, &[(5, "gw")])
    }

    /// `n` records with checkpoints at the given places naming the given streams.
    fn stream_with_checkpoints(n: u64, checkpoints: &[(u64, &str)]) -> Vec<Vec<u8>> {
        let key = key();
        let mut prev = GENESIS.to_owned();
        let mut lines = Vec::new();
        for seq in 0..n {
            let checkpoint = checkpoints.iter().find(|(at, _)| *at == seq);
            let sealed: SealedLine = if let Some((_, name)) = checkpoint {
                let record = CheckpointRecord {
                    time: 0,
                    message: "audit checkpoint",
                    metadata: Metadata::default(),
                    checkpoint: sign(&key, name, seq - 1, &prev),
                };
                seal(seq, &prev, &record).unwrap()
            } else {
                seal(seq, &prev, &json!({"message": format!("event {seq}")})).unwrap()
            };
            prev.clone_from(&sealed.hash);
            let mut line = sealed.line;
            line.pop();
            lines.push(line);
        }
        lines
    }

    fn run(lines: &[Vec<u8>], key: Option<Vec<u8>>) -> (Option<Finding>, Summary) {
        feed(StreamVerifier::new(key, false), lines)
    }

    fn feed(mut v: StreamVerifier, lines: &[Vec<u8>]) -> (Option<Finding>, Summary) {
        for (i, line) in lines.iter().enumerate() {
            let place = Place {
                file: "f".into(),
                line: i as u64 + 1,
            };
            v.line(place, line, true);
        }
        v.finish()
    }

    #[test]
    fn an_intact_stream_verifies_with_its_checkpoint() {
        let public = key().public_key().as_ref().to_vec();
        let (finding, summary) = run(&stream(10), Some(public));
        assert_eq!(finding, None);
        assert_eq!(summary.records, 10);
        assert_eq!(summary.checkpoints_verified, 1);
        let (_, unchecked) = run(&stream(10), None);
        assert_eq!(unchecked.checkpoints_unchecked, 1);
    }

    #[test]
    fn a_deleted_record_is_missing() {
        let mut lines = stream(10);
        lines.remove(3);
        let (finding, _) = run(&lines, None);
        let finding = finding.unwrap();
        assert_eq!(finding.problem, Problem::Missing { from: 3, to: 3 });
        assert_eq!(finding.place.as_ref().unwrap().line, 4);
        assert_eq!(finding.seq, Some(4));
    }

    #[test]
    fn swapped_records_are_reordered() {
        let mut lines = stream(10);
        lines.swap(6, 7);
        let (finding, _) = run(&lines, None);
        let finding = finding.unwrap();
        assert_eq!(finding.problem, Problem::Reordered { expected: 6, found: 7 });
        assert_eq!(finding.place.as_ref().unwrap().line, 7);
    }

    #[test]
    fn an_edited_byte_is_named() {
        let mut lines = stream(10);
        let at = lines[2].iter().position(|b| *b == b'2').unwrap();
        lines[2][at] = b'3';
        let (finding, _) = run(&lines, None);
        let finding = finding.unwrap();
        assert_eq!(finding.problem, Problem::Edited);
        assert_eq!(finding.place.as_ref().unwrap().line, 3);
    }

    #[test]
    fn a_replaced_record_does_not_link() {
        let mut lines = stream(10);
        let forged = seal(4, GENESIS, &json!({"message": "forged"})).unwrap();
        lines[4] = forged.line[..forged.line.len() - 1].to_vec();
        let (finding, _) = run(&lines, None);
        assert_eq!(finding.unwrap().problem, Problem::Unlinked);
    }

    #[test]
    fn a_missing_start_is_named_unless_allowed() {
        let lines = stream(10);
        let (finding, _) = run(&lines[3..], None);
        assert_eq!(finding.unwrap().problem, Problem::Missing { from: 0, to: 2 });
        let mut v = StreamVerifier::new(None, true);
        for (i, line) in lines[3..].iter().enumerate() {
            v.line(
                Place {
                    file: "f".into(),
                    line: i as u64 + 1,
                },
                line,
                true,
            );
        }
        assert_eq!(v.finish().0, None);
    }

    #[test]
    fn a_truncated_last_line_is_named() {
        let lines = stream(4);
        let mut v = StreamVerifier::new(None, false);
        for (i, line) in lines.iter().enumerate() {
            let last = i == lines.len() - 1;
            let bytes = if last { &line[..line.len() / 2] } else { &line[..] };
            v.line(
                Place {
                    file: "f".into(),
                    line: i as u64 + 1,
                },
                bytes,
                !last,
            );
        }
        let finding = v.finish().0.unwrap();
        assert_eq!(finding.problem, Problem::Truncated);
        assert_eq!(finding.place.as_ref().unwrap().line, 4);
    }

    #[test]
    fn a_resigned_checkpoint_from_another_key_fails() {
        let mut lines = stream(10);
        // Rewrite from the checkpoint on with a key the verifier does not trust.
        let other = Ed25519KeyPair::from_seed_unchecked(&[9u8; 32]).unwrap();
        let prev = check_line(&lines[4]).unwrap().hash;
        let record = CheckpointRecord {
            time: 0,
            message: "audit checkpoint",
            metadata: Metadata::default(),
            checkpoint: sign(&other, "gw", 4, &prev),
        };
        let sealed = seal(5, &prev, &record).unwrap();
        lines[5] = sealed.line[..sealed.line.len() - 1].to_vec();
        let mut prev = sealed.hash;
        for (seq, line) in lines.iter_mut().enumerate().skip(6) {
            let s = seal(seq as u64, &prev, &json!({"message": "rewritten"})).unwrap();
            prev.clone_from(&s.hash);
            *line = s.line[..s.line.len() - 1].to_vec();
        }
        let public = key().public_key().as_ref().to_vec();
        let (finding, _) = run(&lines, Some(public));
        let finding = finding.unwrap();
        assert!(matches!(finding.problem, Problem::BadSignature(_)), "{finding}");
        assert_eq!(finding.seq, Some(5));
        // Without the key the rewrite is a consistent chain: that is what the key is for.
        assert_eq!(run(&lines, None).0, None);
    }

    #[test]
    fn a_checkpoint_for_another_stream_is_named() {
        let public = key().public_key().as_ref().to_vec();
        let lines = stream(10);
        // The signature holds: the stream name is what gives the copy away.
        let verifier = StreamVerifier::new(Some(public.clone()), false).for_stream("gw");
        assert_eq!(feed(verifier, &lines).0, None);
        let verifier = StreamVerifier::new(Some(public), false).for_stream("provisioner");
        let finding = feed(verifier, &lines).0.unwrap();
        assert_eq!(
            finding.problem,
            Problem::OtherStream {
                expected: "provisioner".into(),
                found: "gw".into()
            }
        );
        assert_eq!((finding.place.as_ref().unwrap().line, finding.seq), (6, Some(5)));
        assert!(
            finding
                .to_string()
                .contains("bad signature: checkpoint for another stream")
        );
        // Without a name from the files, the first checkpoint sets it and the others must agree,
        // with or without the key.
        let mixed = stream_with_checkpoints(12, &[(5, "gw"), (9, "other")]);
        let finding = run(&mixed, None).0.unwrap();
        assert!(matches!(finding.problem, Problem::OtherStream { .. }), "{finding}");
        assert_eq!(finding.seq, Some(9));
        let same = stream_with_checkpoints(12, &[(5, "gw"), (9, "gw")]);
        assert_eq!(run(&same, None).0, None);
    }

    #[test]
    fn a_repeated_record_is_reordered_and_a_late_one_is_moved() {
        let mut lines = stream(10);
        let again = lines[3].clone();
        lines.insert(4, again);
        let finding = run(&lines, None).0.unwrap();
        assert_eq!(finding.problem, Problem::Reordered { expected: 4, found: 3 });
        assert_eq!(finding.place.as_ref().unwrap().line, 5);
        // Record 2 moved to the end: a jump at line 3, and 2 turns up later.
        let mut lines = stream(10);
        let moved = lines.remove(2);
        lines.push(moved);
        let finding = run(&lines, None).0.unwrap();
        assert_eq!(finding.problem, Problem::Reordered { expected: 2, found: 3 });
        assert_eq!(finding.place.as_ref().unwrap().line, 3);
    }
    fn anchor_of(lines: &[Vec<u8>], seq: usize) -> Anchor {
        Anchor {
            seq: seq as u64,
            hash: check_line(&lines[seq]).unwrap().hash,
            file: "gw-0000000000000000.jsonl".into(),
        }
    }

    #[test]
    fn anchored_records_are_found_and_a_cut_tail_is_named() {
        let lines = stream_with_checkpoints(12, &[(5, "gw"), (11, "gw")]);
        let anchors = vec![anchor_of(&lines, 11), anchor_of(&lines, 5)];
        let verifier = StreamVerifier::new(None, false).with_anchors(anchors.clone());
        let (finding, summary) = feed(verifier, &lines);
        assert_eq!(finding, None);
        assert_eq!(summary.anchors_matched, 2);
        assert_eq!(summary.unsigned_tail, 0);
        // The last four records cut off at a line's end: the chain alone cannot tell.
        assert_eq!(run(&lines[..8], None).0, None);
        let verifier = StreamVerifier::new(None, false).with_anchors(anchors.clone());
        let finding = feed(verifier, &lines[..8]).0.unwrap();
        assert_eq!(
            finding.problem,
            Problem::CutTail {
                last: Some(7),
                anchored: 11,
                file: "gw-0000000000000000.jsonl".into()
            }
        );
        assert_eq!(finding.place.as_ref().unwrap().line, 8);
        assert!(finding.to_string().contains("records 8 to 11 are missing"), "{finding}");
        // Nothing left at all.
        let verifier = StreamVerifier::new(None, false).with_anchors(anchors);
        let finding = feed(verifier, &[]).0.unwrap();
        assert!(
            matches!(finding.problem, Problem::CutTail { last: None, .. }),
            "{finding}"
        );
        assert_eq!(finding.place, None);
    }

    #[test]
    fn a_rewrite_without_checkpoints_misses_the_anchor() {
        let lines = stream(10);
        let anchors = vec![anchor_of(&lines, 5)];
        // The same number of records, hashed anew, with no checkpoint to give it away.
        let mut prev = GENESIS.to_owned();
        let rewritten: Vec<Vec<u8>> = (0..10)
            .map(|seq| {
                let s = seal(seq, &prev, &json!({"message": format!("rewritten {seq}")})).unwrap();
                prev.clone_from(&s.hash);
                s.line[..s.line.len() - 1].to_vec()
            })
            .collect();
        let public = key().public_key().as_ref().to_vec();
        assert_eq!(
            run(&rewritten, Some(public.clone())).0,
            None,
            "no checkpoint, nothing to check"
        );
        let verifier = StreamVerifier::new(Some(public.clone()), false).with_anchors(anchors);
        let finding = feed(verifier, &rewritten).0.unwrap();
        assert!(matches!(finding.problem, Problem::NotAnchored { .. }), "{finding}");
        assert_eq!(finding.seq, Some(5));
        // Without the store, requiring a signed tail catches it too.
        let verifier = StreamVerifier::new(Some(public), false).require_signed_tail(true);
        let finding = feed(verifier, &rewritten).0.unwrap();
        assert_eq!(finding.problem, Problem::UnsignedTail { from: 0, to: 9 });
    }

    #[test]
    fn records_after_the_last_checkpoint_are_counted_and_can_fail() {
        let lines = stream(10);
        let (finding, summary) = run(&lines, None);
        assert_eq!(finding, None);
        assert_eq!(summary.unsigned_tail, 4, "records 6 to 9");
        let verifier = StreamVerifier::new(None, false).require_signed_tail(true);
        let finding = feed(verifier, &lines).0.unwrap();
        assert_eq!(finding.problem, Problem::UnsignedTail { from: 6, to: 9 });
        assert_eq!(finding.place.as_ref().unwrap().line, 10);
        let signed = stream_with_checkpoints(10, &[(9, "gw")]);
        let verifier = StreamVerifier::new(None, false).require_signed_tail(true);
        assert_eq!(feed(verifier, &signed).0, None);
    }
}
