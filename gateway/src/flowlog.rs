//! Flow log: one JSON line per forwarded connection, appended by a background writer through a
//! bounded queue, so a stream's end waits on the disk only when the writer is far behind. Its
//! `rampart::flow` process-log event is escaped, like every other, by the formatter
//! `rampart_core::logging` installs.

use rampart_core::flow::FlowRecord;
use rampart_core::text::escape_json_extras;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const QUEUE: usize = 4096;

/// Handle to the flow log writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct FlowLog {
    tx: mpsc::Sender<FlowRecord>,
}

/// The writer task; await it after every [`FlowLog`] handle is dropped to flush the file.
#[derive(Debug)]
pub struct FlowLogWriter(JoinHandle<()>);

impl FlowLog {
    /// Opens (creating or appending) the flow log at `path` and starts its writer.
    pub async fn open(path: &Path) -> std::io::Result<(Self, FlowLogWriter)> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_records(file, rx, path.to_owned()));
        Ok((Self { tx }, FlowLogWriter(task)))
    }

    /// Queues one record; waits only if the writer is far behind.
    pub async fn record(&self, record: FlowRecord) {
        tracing::info!(
            target: "rampart::flow",
            session = %record.session_id,
            user = %record.user,
            resource = %record.resource,
            target_addr = %record.target,
            decision = %record.decision,
            outcome = %record.outcome,
            bytes_to_target = record.bytes_to_target,
            bytes_from_target = record.bytes_from_target,
            "flow closed"
        );
        if self.tx.send(record).await.is_err() {
            tracing::error!(target: "rampart::flow", "flow log writer has stopped; record lost");
        }
    }
}

impl FlowLogWriter {
    /// Waits until every queued record is on disk.
    pub async fn finish(self) {
        let _ = self.0.await;
    }
}

async fn write_records(mut file: tokio::fs::File, mut rx: mpsc::Receiver<FlowRecord>, path: PathBuf) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut out = Vec::new();
        for record in batch.drain(..) {
            // serde_json escapes control characters, and the rest of what a reader could split
            // a line at is escaped on top, so one record is always one line.
            if let Ok(line) = serde_json::to_string(&record) {
                out.extend_from_slice(escape_json_extras(&line).as_bytes());
                out.push(b'\n');
            }
        }
        if let Err(e) = async {
            file.write_all(&out).await?;
            file.flush().await
        }
        .await
        {
            tracing::error!(target: "rampart::flow", path = %path.display(), error = %e, "cannot write flow log");
        }
    }
    let _ = file.sync_all().await;
}
