//! The writer thread: takes commands off the queue in batches, seals events into the chain,
//! appends them, rotates and checkpoints. A failed write is cut back out of the file and the
//! chain rewinds to the last record on file, so the numbers never skip; dropped events are
//! counted and reported by the first record of the next write that works. Everyone waiting
//! for a write hears whether it happened. Each checkpoint, once synced, is published for
//! anchoring outside the files; a writer that opens behind (or beside) its anchored head
//! records a chain gap first and goes on after the anchored record.

use super::segment::{Segment, chain_end, create_private_dir, open_segment, repair_newest};
use super::{Ack, Command, FlushError, segment};
use crate::anchor::{self, AnchorHead};
use crate::config::AuditSettings;
use crate::{AuditError, keys};
use rampart_core::audit::{AuditEvent, ChainGap, GapKind, Metadata, RecordLoss, checkpoint};
use rampart_core::clock::Clock;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod files;
mod output;

/// Most commands taken off the queue for one write.
const BATCH: usize = 1024;
/// While a loss waits to be written, how often the writer tries again without new events.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How soon after opening the first checkpoint is due (at most; never later than the interval).
const FIRST_CHECKPOINT: Duration = Duration::from_secs(2);

/// Where the chain stands: the next record's number and its `prev_hash`.
#[derive(Debug, Clone)]
struct ChainState {
    next_seq: u64,
    prev_hash: String,
    /// Records since the last checkpoint.
    since_checkpoint: u64,
}

/// Records sealed but not yet written, and who waits for them.
#[derive(Debug, Default)]
struct Outgoing {
    bytes: Vec<u8>,
    /// Events among them (checkpoints and loss reports are not events).
    events: u64,
    /// Whether they start with the report of the pending loss.
    reports_loss: bool,
    acks: Vec<(Ack, AckKind)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckKind {
    /// Answers for one event.
    Event,
    /// Answers for everything since the previous flush.
    Flush,
}

/// Events dropped and not yet reported in the trail.
#[derive(Debug)]
struct PendingLoss {
    counts: RecordLoss,
    first_ms: i64,
    last_ms: i64,
}

/// A stream locked for this process, with its signing key: the first step of opening.
pub(super) struct Locked {
    /// Held for the writer's life (and the anchoring task's): one process per stream and folder.
    pub(super) lock: Arc<std::fs::File>,
    key: Ed25519KeyPair,
    /// The key's id, which names the stream outside the files.
    pub(super) key_id: String,
}

/// Where the writer publishes its checkpoint heads, and the newest one anchored before it opened.
pub(super) struct Anchoring {
    pub(super) head: Option<AnchorHead>,
    pub(super) heads: tokio::sync::watch::Sender<Option<AnchorHead>>,
}

/// Creates the folder, takes the stream's lock and loads (or creates) the signing key.
pub(super) fn lock(settings: &AuditSettings) -> Result<Locked, AuditError> {
    let dir = &settings.dir;
    create_private_dir(dir)?;
    let lock_path = dir.join(format!(".{}.lock", settings.stream));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| AuditError::io("cannot open", &lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(AuditError::InUse {
                stream: settings.stream.clone(),
                dir: dir.display().to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(AuditError::io("cannot lock", &lock_path, e)),
    }
    let key = keys::load_or_create(&settings.signing_key)?;
    let key_id = checkpoint::key_id(key.public_key().as_ref());
    Ok(Locked {
        lock: Arc::new(lock),
        key,
        key_id,
    })
}

pub(super) struct Writer {
    pub(super) dir: PathBuf,
    pub(super) stream: String,
    /// Stamps the records the writer adds itself.
    clock: Clock,
    key: Ed25519KeyPair,
    key_id: String,
    /// Where synced checkpoint heads go to be anchored; none when the stream is not anchored.
    heads: Option<tokio::sync::watch::Sender<Option<AnchorHead>>>,
    metadata: Metadata,
    max_file_bytes: u64,
    max_file_age: Duration,
    checkpoint_every: Duration,
    /// Held for the writer's life: one process per stream and folder.
    _lock: Arc<std::fs::File>,
    segment: Segment,
    file_opened: Instant,
    /// After every record sealed so far.
    chain: ChainState,
    /// After the last record in the file: where a failed write rewinds to.
    durable: ChainState,
    out: Outgoing,
    loss: Option<PendingLoss>,
    pub(super) queue_drops: Arc<AtomicU64>,
    /// Why a plain flush must fail: an event dropped since the previous flush was answered.
    dropped_since_flush: Option<FlushError>,
    /// A write failed and the file may hold bytes past `segment.len`.
    suspect: bool,
    failing: bool,
    next_checkpoint: Instant,
    /// A checkpoint was written in this run: until then one is due within [`FIRST_CHECKPOINT`]
    /// of the first records, so a new run's records are signed at once.
    signed_this_run: bool,
    /// No new file before then: the last one could not be opened.
    rotate_retry_at: Option<Instant>,
    last_queue_warning: Option<Instant>,
    /// Test seam: writes fail half-way, as on a full disk.
    #[cfg(test)]
    pub(super) fail_writes: Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
    /// Opens a stream that is not anchored outside its files.
    #[cfg(test)]
    pub(super) fn open(settings: &AuditSettings, version: &str) -> Result<Self, AuditError> {
        Self::open_locked(lock(settings)?, settings, version, None, Clock::system())
    }

    /// Opens the locked stream: cuts a torn end, finds where the chain ends and, when it is
    /// anchored, compares that with the anchored head — a gap is recorded before anything else
    /// and the chain goes on after the anchored record.
    pub(super) fn open_locked(
        locked: Locked,
        settings: &AuditSettings,
        version: &str,
        anchoring: Option<Anchoring>,
        clock: Clock,
    ) -> Result<Self, AuditError> {
        let dir = &settings.dir;
        // Under the lock: a crash mid-write may have left the newest file ending mid-record.
        repair_newest(dir, &settings.stream)?;
        let end = chain_end(dir, &settings.stream)?;
        let (mut next_seq, mut prev_hash) = (end.next_seq, end.hash);
        let (head, heads) = match anchoring {
            Some(Anchoring { head, heads }) => (head, Some(heads)),
            None => (None, None),
        };
        let gap = match &head {
            Some(head) => anchor::compare(dir, &settings.stream, next_seq, head)?,
            None => None,
        };
        if let (Some(gap), Some(head)) = (&gap, &head)
            && gap.gap == GapKind::Cut
        {
            // Numbered on from the anchored record, so the missing ones stay visible as missing.
            next_seq = head.seq + 1;
            prev_hash.clone_from(&head.hash);
        }
        let segment = open_segment(dir, &settings.stream, next_seq)?;
        tracing::info!(target: "rampart::audit", file = %segment.path.display(), seq = next_seq, "audit trail open");
        let chain = ChainState {
            next_seq,
            prev_hash,
            // An earlier run that stopped without a last checkpoint left records unsigned: the
            // first checkpoint of this run signs them.
            since_checkpoint: u64::from(end.unsigned_tail),
        };
        let mut writer = Self {
            dir: dir.clone(),
            stream: settings.stream.clone(),
            clock,
            key: locked.key,
            key_id: locked.key_id,
            heads,
            metadata: Metadata::rampart(&settings.service, version, &settings.stream),
            max_file_bytes: settings.max_file_bytes,
            max_file_age: settings.max_file_age,
            checkpoint_every: settings.checkpoint_every,
            _lock: locked.lock,
            segment,
            file_opened: Instant::now(),
            durable: chain.clone(),
            chain,
            out: Outgoing::default(),
            loss: None,
            queue_drops: Arc::default(),
            dropped_since_flush: None,
            suspect: false,
            failing: false,
            // The first checkpoint comes soon after start, so the records of start-up (and an
            // earlier run's unsigned tail) are signed at once rather than after a whole interval.
            next_checkpoint: Instant::now() + settings.checkpoint_every.min(FIRST_CHECKPOINT),
            signed_this_run: false,
            rotate_retry_at: None,
            last_queue_warning: None,
            #[cfg(test)]
            fail_writes: Arc::default(),
        };
        if let Some(gap) = gap {
            writer.record_gap(gap);
        }
        Ok(writer)
    }

    /// Says loudly, in the log and as the first record, that the files do not reach the
    /// anchored head, and checkpoints at once so the new head is anchored past the gap.
    fn record_gap(&mut self, gap: ChainGap) {
        tracing::error!(
            target: "rampart::audit", stream = %self.stream, gap = ?gap.gap, files_end_seq = ?gap.files_end_seq,
            anchored_seq = gap.anchored_seq, anchored_file = %gap.anchored_file, missing = gap.missing(),
            "AUDIT CHAIN GAP: this stream's files do not reach the checkpoint anchored in the store; \
             records were removed or replaced while the writer was stopped (recorded as chain_gap)"
        );
        let mut event = AuditEvent::chain_gap(self.clock.now_ms(), gap);
        event.metadata = self.metadata.clone();
        if self.seal_record(&event) {
            self.out.events += 1;
        }
        self.checkpoint();
    }

    /// Publishes the last record on file, a synced checkpoint, for anchoring.
    fn publish_head(&self) {
        let Some(heads) = &self.heads else {
            return;
        };
        let file = self
            .segment
            .path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        heads.send_replace(Some(AnchorHead {
            key_id: self.key_id.clone(),
            stream: self.stream.clone(),
            seq: self.durable.next_seq - 1,
            hash: self.durable.prev_hash.clone(),
            file,
        }));
    }

    pub(super) fn run(mut self, rx: &mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            match rx.recv_timeout(self.next_wake()) {
                Ok(command) => batch.push(command),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.idle();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.close();
                    return;
                }
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            self.collect_queue_drops();
            let mut closing = false;
            for command in batch.drain(..) {
                match command {
                    Command::Event(event) => self.take_event(event, None),
                    Command::EventFlushed(event, ack) => self.take_event(event, Some(ack)),
                    Command::Flush(ack) => self.out.acks.push((ack, AckKind::Flush)),
                    Command::Close => closing = true,
                }
            }
            self.write_out();
            if closing {
                self.close();
                return;
            }
            if self.file_opened.elapsed() >= self.max_file_age {
                self.rotate();
            } else if Instant::now() >= self.next_checkpoint {
                self.periodic();
            }
        }
    }

    /// How long to wait for commands: until the next checkpoint, or sooner while a loss waits
    /// to be written.
    fn next_wake(&self) -> Duration {
        let until_checkpoint = self.next_checkpoint.saturating_duration_since(Instant::now());
        if self.loss.is_some() || self.suspect || self.queue_drops.load(Ordering::Relaxed) > 0 {
            until_checkpoint.min(RETRY_EVERY)
        } else {
            until_checkpoint
        }
    }

    fn idle(&mut self) {
        self.collect_queue_drops();
        if self.suspect {
            // A failed write could not be cut back yet; try again before anything else.
            let _ = self.clean_end();
        }
        if Instant::now() >= self.next_checkpoint {
            self.periodic();
        } else {
            // Retries a pending loss report.
            self.write_out();
        }
    }

    fn take_event(&mut self, mut event: Box<AuditEvent>, ack: Option<Ack>) {
        event.metadata = self.metadata.clone();
        self.seal_loss_report();
        let sealed = self.seal_record(&*event);
        if sealed {
            self.out.events += 1;
        }
        if let Some(ack) = ack {
            if sealed {
                self.out.acks.push((ack, AckKind::Event));
            } else {
                let _ = ack.send(Err(FlushError::WriteFailed("the record cannot be serialised".into())));
            }
        }
        if self.segment.len + self.out.bytes.len() as u64 >= self.max_file_bytes {
            self.write_out();
            // Not when the write failed: a new file per failed batch would only scatter the trail.
            if self.segment.len >= self.max_file_bytes {
                self.rotate();
            }
        }
    }
}
