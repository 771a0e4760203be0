//! Sealing and writing: records into the chain, the chain onto the file, a failed write cut
//! back out, and dropped events counted until a report of them is on file.

use super::{AckKind, PendingLoss, Writer, segment};
use crate::writer::FlushError;
use rampart_core::audit::{AuditEvent, RecordLoss, seal};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Least time between two warnings about a full queue.
const WARN_EVERY: Duration = Duration::from_secs(10);

impl Writer {
    /// Seals `body` as the next record into the outgoing bytes.
    pub(super) fn seal_record<B: serde::Serialize>(&mut self, body: &B) -> bool {
        match seal(self.chain.next_seq, &self.chain.prev_hash, body) {
            Ok(sealed) => {
                self.out.bytes.extend_from_slice(&sealed.line);
                self.chain.prev_hash = sealed.hash;
                self.chain.next_seq += 1;
                self.chain.since_checkpoint += 1;
                true
            }
            Err(e) => {
                tracing::error!(target: "rampart::audit", error = %e, "cannot serialise an audit record");
                false
            }
        }
    }

    /// Seals the report of the pending loss ahead of anything else in the outgoing bytes.
    /// The loss only grows while nothing is sealed (a failed write empties them; queue drops
    /// are collected between batches), so a written report covers all of it.
    pub(super) fn seal_loss_report(&mut self) {
        if self.out.reports_loss {
            return;
        }
        let Some(loss) = &self.loss else {
            return;
        };
        let mut report =
            AuditEvent::records_dropped(self.clock.now_ms(), loss.counts.clone(), loss.first_ms, loss.last_ms);
        report.metadata = self.metadata.clone();
        if self.seal_record(&report) {
            self.out.reports_loss = true;
        }
    }

    /// Appends what is sealed to the file and answers those waiting for it. When the write
    /// fails, the file is cut back to its last complete record, the chain rewinds to it, and
    /// the events are counted as dropped: the next write that works starts with their report.
    pub(super) fn write_out(&mut self) {
        self.seal_loss_report();
        let mut out = std::mem::take(&mut self.out);
        let written = if out.bytes.is_empty() {
            Ok(())
        } else {
            self.clean_end().and_then(|()| self.append(&out.bytes))
        };
        match &written {
            Ok(()) => {
                self.segment.len += out.bytes.len() as u64;
                self.durable = self.chain.clone();
                if out.reports_loss
                    && let Some(loss) = self.loss.take()
                {
                    tracing::warn!(
                        target: "rampart::audit", file = %self.segment.path.display(), dropped = loss.counts.total(),
                        "audit trail writable again; the dropped records are reported in it"
                    );
                }
                self.failing = false;
            }
            Err(error) => {
                if !self.failing {
                    tracing::error!(
                        target: "rampart::audit", file = %self.segment.path.display(), error = %error,
                        "cannot write the audit trail; records are dropped and counted until it works again"
                    );
                    self.failing = true;
                }
                self.chain = self.durable.clone();
                self.note_loss(out.events, 0, Some(error));
                self.dropped_since_flush = Some(FlushError::WriteFailed(error.clone()));
                self.suspect = true;
                // Now, not at the next write: on a full disk this gives the space back.
                let _ = self.clean_end();
            }
        }
        let written = written.map_err(FlushError::WriteFailed);
        let mut answered_flush = false;
        for (ack, kind) in out.acks.drain(..) {
            let answer = match kind {
                AckKind::Event => written.clone(),
                AckKind::Flush => {
                    answered_flush = true;
                    written
                        .clone()
                        .and(self.dropped_since_flush.clone().map_or(Ok(()), Err))
                }
            };
            let _ = ack.send(answer);
        }
        if answered_flush {
            self.dropped_since_flush = None;
        }
        // Keeps the buffer's capacity for the next batch.
        out.bytes.clear();
        self.out.bytes = out.bytes;
    }

    /// Makes sure the file ends where the last successful write did, so nothing is ever
    /// appended after a partial or abandoned record.
    pub(super) fn clean_end(&mut self) -> Result<(), String> {
        if !self.suspect {
            return Ok(());
        }
        let failed = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
        let len = self
            .segment
            .file
            .metadata()
            .map_err(|e| failed("cannot read the file's length", &e))?
            .len();
        if len > self.segment.len {
            self.segment
                .file
                .set_len(self.segment.len)
                .map_err(|e| failed("cannot cut back the failed write", &e))?;
        } else if len < self.segment.len {
            // Shorter than written: cut elsewhere. Keep it whole-lined; `verify` names the loss.
            tracing::error!(target: "rampart::audit", file = %self.segment.path.display(), "the audit file is shorter than what was written to it");
            self.segment.len = segment::cut_torn_end(&self.segment.file, &self.segment.path)
                .map_err(|e| failed("cannot repair the file", &e))?;
        }
        self.suspect = false;
        Ok(())
    }

    /// Appends `bytes`; the error says why not, as the operating system put it.
    pub(super) fn append(&mut self, bytes: &[u8]) -> Result<(), String> {
        #[cfg(test)]
        if self.fail_writes.load(Ordering::SeqCst) {
            // As on a disk filling up mid-write: part of the bytes land, then the error.
            let _ = self.segment.file.write_all(&bytes[..bytes.len() / 2]);
            return Err("No space left on device (injected)".into());
        }
        self.segment.file.write_all(bytes).map_err(|e| e.to_string())
    }

    pub(super) fn note_loss(&mut self, write_failed: u64, queue_full: u64, error: Option<&str>) {
        if write_failed == 0 && queue_full == 0 {
            return;
        }
        let now = self.clock.now_ms();
        let loss = self.loss.get_or_insert_with(|| PendingLoss {
            counts: RecordLoss::default(),
            first_ms: now,
            last_ms: now,
        });
        loss.counts.dropped_write_failed = loss.counts.dropped_write_failed.saturating_add(write_failed);
        loss.counts.dropped_queue_full = loss.counts.dropped_queue_full.saturating_add(queue_full);
        if loss.counts.write_error.is_none() {
            loss.counts.write_error = error.map(str::to_owned);
        }
        loss.last_ms = now;
    }

    /// Takes the producers' count of events refused by a full queue into the pending loss.
    pub(super) fn collect_queue_drops(&mut self) {
        let dropped = self.queue_drops.swap(0, Ordering::Relaxed);
        if dropped == 0 {
            return;
        }
        if self.last_queue_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            tracing::warn!(
                target: "rampart::audit", dropped,
                "the audit queue was full; records were dropped (counted, and reported in the trail)"
            );
            self.last_queue_warning = Some(Instant::now());
        }
        self.note_loss(0, dropped, None);
        self.dropped_since_flush.get_or_insert(FlushError::QueueFull);
    }
}
