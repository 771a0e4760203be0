//! The audit writer: producers hand events to a bounded queue and go on — never waiting for the
//! disk; one dedicated thread seals them into the chain, appends them in batches, rotates files
//! by size and age, and writes a signed checkpoint periodically, before each rotation and at
//! close. A producer that must not go on before its record is in the file (a login) waits for
//! it, at most [`FLUSH_TIMEOUT`], and learns whether it got there.
//!
//! The chain never skips a number: a failed write is cut back out of the file and the chain
//! rewinds to the last record on file. What could not be kept — records whose write failed, or
//! that found the queue full — is counted, and the first write that works again starts with one
//! sealed `records_dropped` record (OCSF Event Log Activity) saying how many were lost and why.
//! A loss is on the record instead of looking like a deletion.
//!
//! An anchored writer ([`AuditLog::open_anchored`]) also hands every synced checkpoint's head to
//! an [`AnchorBook`] (the store) through a task of its own, and on opening compares its files
//! with the newest anchored head: a cut or replaced tail is recorded as a chain gap.

mod segment;
#[cfg(test)]
mod tests;
mod worker;

use crate::AuditError;
use crate::anchor::{self, AnchorBook};
use crate::config::AuditSettings;
use rampart_core::audit::AuditEvent;
use rampart_core::clock::Clock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, TrySendError};
use std::time::Duration;
use tokio::sync::oneshot;
use worker::Writer;

/// Events the queue holds before new ones are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 65_536;
/// How long a flush waits for the writer before it reports failure.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long closing waits for the last checkpoint's head to be anchored.
pub const ANCHOR_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a record is not known to be in the file. Each one means the caller must not claim it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    /// The file could not be written (disk full, I/O error). The records were dropped, the chain
    /// stays whole, and the loss is written as a `records_dropped` record once writing works.
    #[error("the audit trail cannot be written: {0}")]
    WriteFailed(String),
    /// The writer's queue was full, so the record was dropped (and counted, as above).
    #[error("the audit queue is full; the record was dropped")]
    QueueFull,
    /// The writer did not answer in time; the record may still reach the file later.
    #[error("the audit writer did not confirm the write within {0:?}")]
    TimedOut(Duration),
    /// The writer has stopped.
    #[error("the audit writer has stopped")]
    Stopped,
}

type Ack = oneshot::Sender<Result<(), FlushError>>;

enum Command {
    Event(Box<AuditEvent>),
    /// An event whose producer waits to learn whether it reached the file.
    EventFlushed(Box<AuditEvent>, Ack),
    Flush(Ack),
    Close,
}

/// Handle for recording audit events; cheap to clone. A disabled log drops everything.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    inner: Option<Handle>,
}

#[derive(Debug, Clone)]
struct Handle {
    tx: mpsc::SyncSender<Command>,
    /// Events refused because the queue was full, not yet reported by the writer.
    queue_drops: Arc<AtomicU64>,
    flush_timeout: Duration,
    /// The process's clock, which stamps what the writer itself records.
    clock: Clock,
}

/// The writer thread; [`finish`](AuditWriter::finish) writes what is queued, a last
/// checkpoint, and syncs the file.
#[derive(Debug)]
pub struct AuditWriter {
    tx: mpsc::SyncSender<Command>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The task carrying checkpoint heads to the anchor book, if anchored.
    anchoring: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Event(_) => "Event",
            Self::EventFlushed(..) => "EventFlushed",
            Self::Flush(_) => "Flush",
            Self::Close => "Close",
        })
    }
}

impl AuditLog {
    /// A log that records nothing (audit turned off).
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Opens this process's stream in `settings.dir` — continuing its chain from the newest
    /// file there, after cutting a torn last line a crash may have left — and starts the writer
    /// thread. `version` is the program's version; `clock` the process's clock, which stamps
    /// the records the writer adds itself (checkpoints, gaps, losses).
    pub fn open(settings: &AuditSettings, version: &str, clock: Clock) -> Result<(Self, AuditWriter), AuditError> {
        let writer = Writer::open_locked(worker::lock(settings)?, settings, version, None, clock.clone())?;
        let (handle, rx) = queue(QUEUE_CAPACITY, FLUSH_TIMEOUT, clock);
        start(writer, handle, rx)
    }

    /// [`open`](AuditLog::open), anchored in `book`: the stream is registered there (named by
    /// its signing key's id and its name), its files are compared with the newest head the
    /// book holds — a cut or replaced tail is recorded as a `chain_gap` record (and an error
    /// in the log) before anything else — and every checkpoint's head is recorded there once
    /// it is on disk. Fails when the book cannot be read: a writer that cannot compare would
    /// carry on silently over a gap.
    pub async fn open_anchored(
        settings: &AuditSettings,
        version: &str,
        book: Arc<dyn AnchorBook>,
        clock: Clock,
    ) -> Result<(Self, AuditWriter), AuditError> {
        // Read under the lock, so a predecessor's last head is in the book (it holds the lock
        // until then).
        let locked = worker::lock(settings)?;
        let head = book
            .open_stream(&locked.key_id, &settings.stream, &settings.service, clock.now())
            .await
            .map_err(AuditError::Anchor)?;
        let lock = Arc::clone(&locked.lock);
        let (heads, published) = tokio::sync::watch::channel(None);
        let anchoring = worker::Anchoring { head, heads };
        let writer = Writer::open_locked(locked, settings, version, Some(anchoring), clock.clone())?;
        let (handle, rx) = queue(QUEUE_CAPACITY, FLUSH_TIMEOUT, clock.clone());
        let (log, mut running) = start(writer, handle, rx)?;
        running.anchoring = Some(tokio::spawn(anchor::forward(published, book, lock, clock)));
        Ok((log, running))
    }

    /// Whether records are kept.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Unix milliseconds now on the clock this log was opened with (the system clock for a
    /// disabled log, whose records go nowhere).
    pub fn now_ms(&self) -> i64 {
        self.inner
            .as_ref()
            .map_or_else(|| Clock::system().now_ms(), |handle| handle.clock.now_ms())
    }

    /// Queues one event; never waits. When the queue is full the event is dropped and counted.
    pub fn record(&self, event: AuditEvent) {
        if let Some(handle) = &self.inner {
            let _ = handle.send(Command::Event(Box::new(event)));
        }
    }

    /// Queues one event and waits until it is in the file (at most [`FLUSH_TIMEOUT`]): `Ok`
    /// once it is, an error when it was dropped or the writer did not answer in time. A
    /// disabled log answers `Ok` at once.
    pub async fn try_record_flushed(&self, event: AuditEvent) -> Result<(), FlushError> {
        let Some(handle) = &self.inner else {
            return Ok(());
        };
        let (ack, done) = oneshot::channel();
        handle.send(Command::EventFlushed(Box::new(event), ack))?;
        handle.wait(done).await
    }

    /// Queues one event and waits until it is in the file, as [`try_record_flushed`], without
    /// saying whether it got there (the writer logs failures). Prefer `try_record_flushed`.
    ///
    /// [`try_record_flushed`]: AuditLog::try_record_flushed
    pub async fn record_flushed(&self, event: AuditEvent) {
        let _ = self.try_record_flushed(event).await;
    }

    /// Waits until everything queued so far is written (at most [`FLUSH_TIMEOUT`]). `Ok` when
    /// no event was dropped since the previous flush; otherwise why.
    pub async fn try_flush(&self) -> Result<(), FlushError> {
        let Some(handle) = &self.inner else {
            return Ok(());
        };
        let (ack, done) = oneshot::channel();
        handle.send(Command::Flush(ack))?;
        handle.wait(done).await
    }

    /// Waits until everything queued so far is written, as [`try_flush`](AuditLog::try_flush),
    /// without saying whether it was.
    pub async fn flush(&self) {
        let _ = self.try_flush().await;
    }
}

impl Handle {
    fn send(&self, command: Command) -> Result<(), FlushError> {
        let is_event = matches!(command, Command::Event(_) | Command::EventFlushed(..));
        match self.tx.try_send(command) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                if is_event {
                    // Reported by the writer, in the trail and in its log.
                    self.queue_drops.fetch_add(1, Ordering::Relaxed);
                }
                Err(FlushError::QueueFull)
            }
            Err(TrySendError::Disconnected(_)) => {
                if is_event {
                    tracing::error!(target: "rampart::audit", "the audit writer has stopped; record lost");
                }
                Err(FlushError::Stopped)
            }
        }
    }

    async fn wait(&self, done: oneshot::Receiver<Result<(), FlushError>>) -> Result<(), FlushError> {
        match tokio::time::timeout(self.flush_timeout, done).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(FlushError::Stopped),
            Err(_) => Err(FlushError::TimedOut(self.flush_timeout)),
        }
    }
}

impl AuditWriter {
    /// Writes everything queued, a last checkpoint, syncs, and stops the thread.
    /// When anchored, then waits (at most [`ANCHOR_TIMEOUT`]) for the last checkpoint's head
    /// to be recorded.
    pub async fn finish(mut self) {
        let tx = self.tx.clone();
        let thread = self.thread.take();
        let _ = tokio::task::spawn_blocking(move || {
            // Waits only while the queue is full, which the writer is draining.
            let _ = tx.send(Command::Close);
            if let Some(thread) = thread {
                let _ = thread.join();
            }
        })
        .await;
        if let Some(anchoring) = self.anchoring.take() {
            let abort = anchoring.abort_handle();
            if tokio::time::timeout(ANCHOR_TIMEOUT, anchoring).await.is_err() {
                abort.abort();
                tracing::error!(
                    target: "rampart::audit",
                    "the last audit checkpoint could not be anchored in the store; the next start compares the files with the head before it"
                );
            }
        }
    }
}

/// The queue between producers and the writer.
fn queue(capacity: usize, flush_timeout: Duration, clock: Clock) -> (Handle, mpsc::Receiver<Command>) {
    let (tx, rx) = mpsc::sync_channel(capacity);
    let handle = Handle {
        tx,
        queue_drops: Arc::default(),
        flush_timeout,
        clock,
    };
    (handle, rx)
}

/// Starts `writer` on its own thread, taking commands from `rx`.
fn start(
    mut writer: Writer,
    handle: Handle,
    rx: mpsc::Receiver<Command>,
) -> Result<(AuditLog, AuditWriter), AuditError> {
    writer.queue_drops = Arc::clone(&handle.queue_drops);
    let dir = writer.dir.clone();
    let tx = handle.tx.clone();
    let thread = std::thread::Builder::new()
        .name(format!("audit-{}", writer.stream))
        .spawn(move || writer.run(&rx))
        .map_err(|e| AuditError::io("cannot start the writer for", &dir, e))?;
    Ok((
        AuditLog { inner: Some(handle) },
        AuditWriter {
            tx,
            thread: Some(thread),
            anchoring: None,
        },
    ))
}
