//! The audit writer: producers hand events to a channel and go on; one dedicated thread seals
//! them into the chain, appends them in batches, rotates files by size and age, and writes a
//! signed checkpoint periodically, before each rotation and at close. A producer that must not
//! go on before its record is in the file (a login) waits for a flush.

use crate::config::AuditSettings;
use crate::files::{file_name, for_each_line, list_dir};
use crate::{AuditError, keys};
use rampart_core::audit::{AuditEvent, CheckpointRecord, GENESIS, Metadata, check_line, checkpoint, seal};
use ring::signature::Ed25519KeyPair;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Most commands taken off the channel for one write.
const BATCH: usize = 1024;

enum Command {
    Event(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// Handle for recording audit events; cheap to clone. A disabled log drops everything.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    tx: Option<mpsc::Sender<Command>>,
}

/// The writer thread; [`finish`](AuditWriter::finish) writes what is queued, a last
/// checkpoint, and syncs the file.
#[derive(Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<Command>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Event(_) => "Event",
            Self::Flush(_) => "Flush",
            Self::Close(_) => "Close",
        })
    }
}

impl AuditLog {
    /// A log that records nothing (audit turned off).
    pub fn disabled() -> Self {
        Self { tx: None }
    }

    /// Opens this process's stream in `settings.dir` — continuing its chain from the newest
    /// file there — and starts the writer thread. `version` is the program's version.
    pub fn open(settings: &AuditSettings, version: &str) -> Result<(Self, AuditWriter), AuditError> {
        let writer = Writer::open(settings, version)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("audit-{}", settings.stream))
            .spawn(move || writer.run(&rx))
            .map_err(|e| AuditError::io("cannot start the writer for", &settings.dir, e))?;
        Ok((
            Self { tx: Some(tx.clone()) },
            AuditWriter {
                tx,
                thread: Some(thread),
            },
        ))
    }

    /// Whether records are kept.
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues one event; never waits.
    pub fn record(&self, event: AuditEvent) {
        if let Some(tx) = &self.tx
            && tx.send(Command::Event(Box::new(event))).is_err()
        {
            tracing::error!(target: "rampart::audit", "the audit writer has stopped; record lost");
        }
    }

    /// Queues one event and waits until it is written to the file.
    pub async fn record_flushed(&self, event: AuditEvent) {
        self.record(event);
        self.flush().await;
    }

    /// Waits until everything queued so far is written to the file.
    pub async fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (ack, done) = oneshot::channel();
            if tx.send(Command::Flush(ack)).is_ok() {
                let _ = done.await;
            }
        }
    }
}

impl AuditWriter {
    /// Writes everything queued, a last checkpoint, syncs, and stops the thread.
    pub async fn finish(mut self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Command::Close(ack)).is_ok() {
            let _ = done.await;
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

struct Writer {
    dir: PathBuf,
    stream: String,
    key: Ed25519KeyPair,
    metadata: Metadata,
    max_file_bytes: u64,
    max_file_age: Duration,
    checkpoint_every: Duration,
    /// Held for the writer's life: one process per stream and folder.
    _lock: std::fs::File,
    file: std::fs::File,
    path: PathBuf,
    file_bytes: u64,
    file_opened: Instant,
    next_seq: u64,
    prev_hash: String,
    since_checkpoint: u64,
    next_checkpoint: Instant,
    failing: bool,
}

impl Writer {
    fn open(settings: &AuditSettings, version: &str) -> Result<Self, AuditError> {
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
        let (next_seq, prev_hash) = chain_end(dir, &settings.stream)?;
        let (file, path, file_bytes) = open_segment(dir, &settings.stream, next_seq)?;
        tracing::info!(target: "rampart::audit", file = %path.display(), seq = next_seq, "audit trail open");
        Ok(Self {
            dir: dir.clone(),
            stream: settings.stream.clone(),
            key,
            metadata: Metadata::rampart(&settings.service, version, &settings.stream),
            max_file_bytes: settings.max_file_bytes,
            max_file_age: settings.max_file_age,
            checkpoint_every: settings.checkpoint_every,
            _lock: lock,
            file,
            path,
            file_bytes,
            file_opened: Instant::now(),
            next_seq,
            prev_hash,
            since_checkpoint: 0,
            next_checkpoint: Instant::now() + settings.checkpoint_every,
            failing: false,
        })
    }

    fn run(mut self, rx: &mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let wait = self.next_checkpoint.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(command) => batch.push(command),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.periodic();
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
            let mut out = Vec::new();
            let mut acks = Vec::new();
            let mut closing = None;
            for command in batch.drain(..) {
                match command {
                    Command::Event(mut event) => {
                        event.metadata = self.metadata.clone();
                        self.append(&mut out, &*event);
                        if self.file_bytes + out.len() as u64 >= self.max_file_bytes {
                            self.write(&out);
                            out.clear();
                            self.rotate();
                        }
                    }
                    Command::Flush(ack) => acks.push(ack),
                    Command::Close(ack) => closing = Some(ack),
                }
            }
            self.write(&out);
            for ack in acks {
                let _ = ack.send(());
            }
            if let Some(ack) = closing {
                self.close();
                let _ = ack.send(());
                return;
            }
            if self.file_opened.elapsed() >= self.max_file_age {
                self.rotate();
            } else if Instant::now() >= self.next_checkpoint {
                self.periodic();
            }
        }
    }

    /// Seals `body` as the next record into `out`.
    fn append<B: serde::Serialize>(&mut self, out: &mut Vec<u8>, body: &B) {
        match seal(self.next_seq, &self.prev_hash, body) {
            Ok(sealed) => {
                out.extend_from_slice(&sealed.line);
                self.prev_hash = sealed.hash;
                self.next_seq += 1;
                self.since_checkpoint += 1;
            }
            Err(e) => tracing::error!(target: "rampart::audit", error = %e, "cannot serialise an audit record"),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.failing {
            // After a failed write the file may end mid-line: continue in a new file so the
            // damage stays visible to `verify` and later records stay readable.
            self.start_segment();
        }
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.file_bytes += bytes.len() as u64;
                if self.failing {
                    tracing::info!(target: "rampart::audit", file = %self.path.display(), "audit trail writable again");
                }
                self.failing = false;
            }
            Err(e) => {
                if !self.failing {
                    tracing::error!(target: "rampart::audit", file = %self.path.display(), error = %e, "cannot write the audit trail");
                }
                self.failing = true;
            }
        }
    }

    fn checkpoint(&mut self) {
        if self.next_seq == 0 {
            return;
        }
        let record = CheckpointRecord {
            time: now_ms(),
            message: "audit checkpoint",
            metadata: self.metadata.clone(),
            checkpoint: checkpoint::sign(&self.key, &self.stream, self.next_seq - 1, &self.prev_hash),
        };
        let mut out = Vec::new();
        self.append(&mut out, &record);
        self.write(&out);
        self.since_checkpoint = 0;
        self.next_checkpoint = Instant::now() + self.checkpoint_every;
    }

    fn periodic(&mut self) {
        if self.since_checkpoint > 0 {
            self.checkpoint();
            let _ = self.file.sync_data();
        }
        self.next_checkpoint = Instant::now() + self.checkpoint_every;
        if self.file_bytes > 0 && self.file_opened.elapsed() >= self.max_file_age {
            self.rotate();
        }
    }

    fn rotate(&mut self) {
        if self.since_checkpoint > 0 {
            self.checkpoint();
        }
        let _ = self.file.sync_all();
        self.start_segment();
        tracing::info!(target: "rampart::audit", file = %self.path.display(), seq = self.next_seq, "audit file rotated");
    }

    fn start_segment(&mut self) {
        match open_segment(&self.dir, &self.stream, self.next_seq) {
            Ok((file, path, bytes)) => {
                self.file = file;
                self.path = path;
                self.file_bytes = bytes;
                self.file_opened = Instant::now();
            }
            Err(e) => tracing::error!(target: "rampart::audit", error = %e, "cannot start a new audit file"),
        }
    }

    fn close(&mut self) {
        if self.since_checkpoint > 0 {
            self.checkpoint();
        }
        if let Err(e) = self.file.sync_all() {
            tracing::error!(target: "rampart::audit", file = %self.path.display(), error = %e, "cannot sync the audit trail");
        }
    }
}

/// Where the stream's chain ends: the next sequence number and the last record's hash.
fn chain_end(dir: &Path, stream: &str) -> Result<(u64, String), AuditError> {
    let streams = list_dir(dir)?;
    let Some(files) = streams.get(stream) else {
        return Ok((0, GENESIS.to_owned()));
    };
    for file in files.iter().rev() {
        let mut last = None;
        for_each_line(&file.path, |_, bytes, terminated| {
            if terminated && let Ok(link) = check_line(bytes) {
                last = Some((link.seq + 1, link.hash));
            }
        })?;
        if let Some(end) = last {
            return Ok(end);
        }
    }
    Ok((0, GENESIS.to_owned()))
}

fn open_segment(dir: &Path, stream: &str, seq: u64) -> Result<(std::fs::File, PathBuf, u64), AuditError> {
    let path = dir.join(file_name(stream, seq));
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    let file = options
        .open(&path)
        .map_err(|e| AuditError::io("cannot open", &path, e))?;
    let bytes = file
        .metadata()
        .map_err(|e| AuditError::io("cannot read", &path, e))?
        .len();
    Ok((file, path, bytes))
}

fn create_private_dir(dir: &Path) -> Result<(), AuditError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o750);
    builder
        .create(dir)
        .map_err(|e| AuditError::io("cannot create the audit folder", dir, e))
}

/// Milliseconds since the epoch, from the system clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
