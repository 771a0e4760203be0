//! Checkpoints and files: signing a checkpoint and publishing its head, rotating to a new
//! file, and closing the stream.

use super::{FIRST_CHECKPOINT, Writer};
use crate::writer::segment::open_segment;
use rampart_core::audit::{CheckpointRecord, checkpoint};
use std::time::{Duration, Instant};

/// After a new file could not be opened, how long the writer stays with the current one.
const ROTATE_RETRY: Duration = Duration::from_secs(10);

impl Writer {
    pub(super) fn checkpoint(&mut self) {
        self.seal_loss_report();
        if self.chain.next_seq == 0 {
            return;
        }
        let record = CheckpointRecord {
            time: self.clock.now_ms(),
            message: "audit checkpoint",
            metadata: self.metadata.clone(),
            checkpoint: checkpoint::sign(&self.key, &self.stream, self.chain.next_seq - 1, &self.chain.prev_hash),
        };
        let sealed = self.seal_record(&record);
        if sealed {
            // Rewound with the rest if the write fails, so the checkpoint is tried again.
            self.chain.since_checkpoint = 0;
            self.signed_this_run = true;
        }
        self.write_out();
        self.next_checkpoint = Instant::now() + self.checkpoint_every;
        // Anchored only once on disk: a head the files could lose to a power cut would later
        // look like a cut tail.
        let on_file = sealed && self.durable.since_checkpoint == 0 && self.durable.next_seq == self.chain.next_seq;
        if on_file {
            match self.segment.file.sync_data() {
                Ok(()) => self.publish_head(),
                Err(e) => {
                    tracing::error!(target: "rampart::audit", file = %self.segment.path.display(), error = %e, "cannot sync the audit trail");
                }
            }
        }
    }

    pub(super) fn periodic(&mut self) {
        self.write_out();
        if self.chain.since_checkpoint > 0 {
            self.checkpoint();
            let _ = self.segment.file.sync_data();
        }
        self.next_checkpoint = Instant::now()
            + if self.signed_this_run {
                self.checkpoint_every
            } else {
                self.checkpoint_every.min(FIRST_CHECKPOINT)
            };
        if self.segment.len > 0 && self.file_opened.elapsed() >= self.max_file_age {
            self.rotate();
        }
    }

    pub(super) fn rotate(&mut self) {
        if self.rotate_retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        if self.chain.since_checkpoint > 0 {
            self.checkpoint();
        }
        let _ = self.clean_end();
        let _ = self.segment.file.sync_all();
        self.start_segment();
    }

    pub(super) fn start_segment(&mut self) {
        match open_segment(&self.dir, &self.stream, self.chain.next_seq) {
            Ok(segment) => {
                self.segment = segment;
                self.suspect = false;
                self.file_opened = Instant::now();
                self.rotate_retry_at = None;
                tracing::info!(target: "rampart::audit", file = %self.segment.path.display(), seq = self.chain.next_seq, "audit file rotated");
            }
            Err(e) => {
                if self.rotate_retry_at.is_none() {
                    tracing::error!(target: "rampart::audit", error = %e, "cannot start a new audit file; staying with the current one");
                }
                self.rotate_retry_at = Some(Instant::now() + ROTATE_RETRY);
            }
        }
    }

    pub(super) fn close(&mut self) {
        self.collect_queue_drops();
        self.write_out();
        if self.chain.since_checkpoint > 0 {
            self.checkpoint();
        }
        if let Some(loss) = &self.loss {
            tracing::error!(
                target: "rampart::audit", file = %self.segment.path.display(), dropped = loss.counts.total(),
                "audit records were dropped and the loss could not be written to the trail"
            );
        }
        if let Err(e) = self.segment.file.sync_all() {
            tracing::error!(target: "rampart::audit", file = %self.segment.path.display(), error = %e, "cannot sync the audit trail");
        }
    }
}
