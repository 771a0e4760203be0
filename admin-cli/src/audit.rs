//! `rampart audit`: the security team's view of the audit trail on disk — verify that nothing
//! was edited, removed, moved or cut (against the checkpoint heads anchored in the store, when
//! given the store); query records by user, resource, decision, source and time; follow new
//! records as they are written. Works on folders or files, local or copied.
//! `query` and `tail` show only lines whose own hash holds and say how many they skipped;
//! `tail` ends (status 0) as soon as nobody reads its output any more.

use crate::client::{CliError, exit};
use crate::policy::parse_time;
use crate::view::{Output, Table};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rampart_audit::anchor::StoreBook;
use rampart_audit::files::{collect, read_new_lines};
use rampart_audit::keys::read_public_key;
use rampart_audit::query::{Filter, checked_record, query, row};
use rampart_audit::verify::{Anchoring, StreamReport, VerifyOptions, verify_paths};
use rampart_core::audit::checkpoint::key_id;
use rampart_core::audit::{Class, Problem};
use rampart_store::{DB_FILE_NAME, StoreConfig, StoreTarget};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// How often `tail` looks for new records.
const TAIL_POLL: Duration = Duration::from_millis(300);
const COLUMNS: [&str; 8] = [
    "TIME", "CLASS", "ACTIVITY", "USER", "SOURCE", "RESOURCE", "STATUS", "DETAIL",
];

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that audit files were not altered. Exit 0 when every stream is intact; exit 8
    /// naming the first bad record of each broken stream and why.
    Verify {
        /// Audit folders or files (default: $RAMPART_AUDIT_DIR).
        paths: Vec<PathBuf>,
        /// The checkpoint key's public half (`audit-signing.pub`): checks signed checkpoints,
        /// so a log rewritten from start to end is caught too.
        #[arg(long, env = "RAMPART_AUDIT_PUBLIC_KEY")]
        public_key: Option<PathBuf>,
        /// Accept streams whose oldest files were removed on purpose (retention).
        #[arg(long)]
        allow_missing_start: bool,
        /// The store the services anchor their checkpoints in (`sqlite:STATE_DIR`,
        /// `sqlite:FILE.db` or `postgres://…`): also finds records cut off a stream's end,
        /// streams deleted whole and files rewritten under anchored records. Needs --public-key,
        /// whose key names the streams.
        #[arg(long, value_name = "URL", env = rampart_store::URL_ENV, hide_env_values = true)]
        store_url: Option<String>,
        /// A file holding the database password (its first line); or RAMPART_STORE_PASSWORD.
        #[arg(long, value_name = "FILE", requires = "store_url")]
        store_password_file: Option<PathBuf>,
        /// Fail a stream whose last records follow no checkpoint (stop the service first: a
        /// running one signs its newest records at its next checkpoint).
        #[arg(long)]
        require_signed_tail: bool,
    },
    /// Records matching every filter given, oldest first (a table, or JSON lines with -o json).
    Query(FilterArgs),
    /// The last matching records, then new ones as they are written, until interrupted or
    /// until nobody reads the output (`| head`).
    Tail {
        #[command(flatten)]
        filter: FilterArgs,
        /// How many existing records to show first.
        #[arg(long, short = 'n', default_value_t = 10)]
        lines: usize,
    },
}

/// Filters shared by `query` and `tail`.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Audit folders or files (default: $RAMPART_AUDIT_DIR).
    paths: Vec<PathBuf>,
    /// The person or operator (case-insensitive).
    #[arg(long)]
    user: Option<String>,
    /// The resource name.
    #[arg(long)]
    resource: Option<String>,
    /// Only allowed or only refused access.
    #[arg(long, value_parser = ["allow", "deny"])]
    decision: Option<String>,
    /// The client's IP address.
    #[arg(long)]
    source: Option<String>,
    /// Only one kind of record (`log`: the trail's own reports of dropped records).
    #[arg(long, value_parser = ["auth", "decision", "flow", "account", "api", "log"])]
    class: Option<String>,
    /// From this time on (local date and time, RFC 3339, unix seconds, or now).
    #[arg(long)]
    since: Option<String>,
    /// Before this time.
    #[arg(long)]
    until: Option<String>,
}

/// Runs an audit subcommand.
pub async fn run(output: Output, command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::Verify {
            paths,
            public_key,
            allow_missing_start,
            store_url,
            store_password_file,
            require_signed_tail,
        } => {
            let store = store_url.map(|url| StoreConfig {
                url: Some(url),
                password_file: store_password_file,
                ..StoreConfig::default()
            });
            let checks = VerifyChecks {
                allow_missing_start,
                require_signed_tail,
            };
            verify(output, &paths_or_env(paths)?, public_key, store, checks).await
        }
        AuditCommand::Query(args) => {
            let (paths, filter) = args.resolve()?;
            let (records, rejected) = query(&paths, &filter).map_err(|e| CliError::failure(e.to_string()))?;
            print_records(output, &records)?;
            if rejected > 0 {
                note(&format!(
                    "{rejected} lines are not whole records or fail their hash check and were not shown (run `rampart audit verify`)"
                ));
            }
            Ok(())
        }
        AuditCommand::Tail { filter, lines } => tail(output, filter, lines).await,
    }
}

impl FilterArgs {
    fn resolve(self) -> Result<(Vec<PathBuf>, Filter), CliError> {
        let tz = TimeZone::system();
        let now = Timestamp::now();
        let time = |flag: &str, text: Option<String>| {
            text.map(|t| parse_time(flag, &t, &tz, now).map(|secs| secs.saturating_mul(1000)))
                .transpose()
        };
        let filter = Filter {
            user: self.user,
            resource: self.resource,
            allowed: self.decision.map(|d| d == "allow"),
            source: self.source,
            class: self
                .class
                .and_then(|name| Class::ALL.into_iter().find(|c| c.short_name() == name)),
            since_ms: time("--since", self.since)?,
            until_ms: time("--until", self.until)?,
        };
        Ok((paths_or_env(self.paths)?, filter))
    }
}

fn paths_or_env(paths: Vec<PathBuf>) -> Result<Vec<PathBuf>, CliError> {
    if !paths.is_empty() {
        return Ok(paths);
    }
    match std::env::var_os("RAMPART_AUDIT_DIR") {
        Some(dir) if !dir.is_empty() => Ok(vec![PathBuf::from(dir)]),
        _ => Err(CliError {
            message: "name an audit folder or file (or set RAMPART_AUDIT_DIR)".into(),
            code: exit::USAGE,
        }),
    }
}

/// What `verify` holds against the files beyond the chain itself.
#[derive(Debug, Clone, Copy)]
struct VerifyChecks {
    allow_missing_start: bool,
    require_signed_tail: bool,
}

async fn verify(
    output: Output,
    paths: &[PathBuf],
    public_key: Option<PathBuf>,
    store: Option<StoreConfig>,
    checks: VerifyChecks,
) -> Result<(), CliError> {
    let public_key = public_key
        .map(|path| read_public_key(&path))
        .transpose()
        .map_err(|e| CliError::failure(e.to_string()))?;
    let checked_signatures = public_key.is_some();
    let anchors = match (&store, &public_key) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(CliError {
                message: "--store-url needs --public-key: the checkpoint key names the streams anchored in the store"
                    .into(),
                code: exit::USAGE,
            });
        }
        (Some(store), Some(key)) => Some(anchors(store, &key_id(key)).await?),
    };
    let anchors_checked = anchors.is_some();
    let options = VerifyOptions {
        public_key,
        allow_missing_start: checks.allow_missing_start,
        require_signed_tail: checks.require_signed_tail,
        anchors,
    };
    let reports = verify_paths(paths, &options).map_err(|e| CliError::failure(e.to_string()))?;
    if reports.is_empty() {
        return Err(CliError::failure(format!(
            "no audit files (STREAM-SEQ.jsonl) in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    match output {
        Output::Json => {
            let list: Vec<Value> = reports.iter().map(report_json).collect();
            crate::view::json(&list)?;
        }
        Output::Table => {
            let mut text: String = reports
                .iter()
                .map(|report| format!("{}\n", report_line(report, checked_signatures)))
                .collect();
            if !anchors_checked {
                text.push_str(
                    "anchors not checked (give --store-url and --public-key): records cut off the end of a stream, \
                     or a stream deleted whole, cannot be told from a trail that ended there\n",
                );
            }
            // The exit code tells the verdict even when nobody reads the lines.
            write_out(&mut std::io::stdout().lock(), &text)?;
        }
    }
    let broken = reports.iter().filter(|r| r.finding.is_some()).count();
    if broken > 0 {
        return Err(CliError {
            message: format!(
                "the audit trail does not verify: {broken} of {} streams broken",
                reports.len()
            ),
            code: exit::TAMPERED,
        });
    }
    Ok(())
}

/// Every stream the store knows for the checkpoint key `key_id`, with its anchored heads.
async fn anchors(
    config: &StoreConfig,
    key_id: &str,
) -> Result<std::collections::BTreeMap<String, Vec<rampart_core::audit::Anchor>>, CliError> {
    let unavailable = |e: &dyn std::fmt::Display| CliError {
        message: format!("cannot read the audit anchors from the store: {e}"),
        code: exit::UNAVAILABLE,
    };
    // Opening a SQLite store creates it when missing; an empty one would vouch for nothing.
    if let StoreTarget::Sqlite(path) = config.target(std::path::Path::new(".")).map_err(|e| unavailable(&e))? {
        let file = if path.extension().is_some_and(|ext| ext == "db") {
            path
        } else {
            path.join(DB_FILE_NAME)
        };
        if !file.is_file() {
            return Err(CliError::failure(format!("no store at {}", file.display())));
        }
    }
    let store = config
        .open(std::path::Path::new("."))
        .await
        .map_err(|e| unavailable(&e))?;
    StoreBook::new(store).anchors(key_id).await.map_err(|e| unavailable(&e))
}

fn report_line(report: &StreamReport, checked_signatures: bool) -> String {
    let s = &report.summary;
    match &report.finding {
        Some(finding) if report.files == 0 => format!("{}: BROKEN: {finding}", report.stream),
        Some(finding) => format!("{}: BROKEN at {finding}", report.stream),
        None => {
            let range = match (s.first_seq, s.last_seq) {
                (Some(a), Some(b)) => format!(" ({a} to {b})"),
                _ => String::new(),
            };
            let signatures = if checked_signatures {
                match (s.records, s.checkpoints_verified) {
                    (0, _) => "nothing to sign yet".to_owned(),
                    (_, 0) => "no signed checkpoint yet".to_owned(),
                    (_, n) => format!("{n} signed checkpoints verified"),
                }
            } else {
                format!(
                    "{} checkpoints not checked (give --public-key to check signatures)",
                    s.checkpoints_unchecked
                )
            };
            let unsigned = match s.unsigned_tail {
                0 => String::new(),
                n => format!(
                    "; the last {n} records are NOT YET SIGNED: a running service signs them at its next checkpoint \
                     (within its checkpoint_secs, or at a clean stop), a stopped one soon after it starts again"
                ),
            };
            let anchoring = match report.anchoring {
                Anchoring::NotChecked => String::new(),
                Anchoring::Unknown => ", not anchored in the store".to_owned(),
                Anchoring::Checked { anchors } => format!(", {anchors} checkpoints anchored in the store"),
            };
            format!(
                "{}: intact: {} files, {} records{range}, {signatures}{unsigned}{anchoring}",
                report.stream, report.files, s.records
            )
        }
    }
}

fn report_json(report: &StreamReport) -> Value {
    let s = &report.summary;
    let problem = report.finding.as_ref().map(|f| {
        let kind = match f.problem {
            Problem::Truncated => "truncated",
            Problem::Malformed(_) => "malformed",
            Problem::Edited | Problem::Unlinked | Problem::CheckpointMismatch => "edited",
            Problem::Missing { .. } => "missing",
            Problem::Reordered { .. } => "reordered",
            Problem::BadSignature(_) | Problem::OtherStream { .. } => "bad_signature",
            Problem::CutTail { .. } => "cut",
            Problem::Deleted { .. } | Problem::DeletedUnanchored => "deleted",
            Problem::NotAnchored { .. } => "replaced",
            Problem::UnsignedTail { .. } => "unsigned",
        };
        json!({
            "file": f.place.as_ref().map(|p| &p.file), "line": f.place.as_ref().map(|p| p.line), "seq": f.seq,
            "kind": kind, "message": f.problem.to_string(),
        })
    });
    let anchoring = match report.anchoring {
        Anchoring::NotChecked => json!("not_checked"),
        Anchoring::Unknown => json!("unknown"),
        Anchoring::Checked { anchors } => json!({ "anchors": anchors, "matched": s.anchors_matched }),
    };
    json!({
        "stream": report.stream,
        "intact": report.finding.is_none(),
        "files": report.files,
        "records": s.records,
        "first_seq": s.first_seq,
        "last_seq": s.last_seq,
        "checkpoints_verified": s.checkpoints_verified,
        "checkpoints_unchecked": s.checkpoints_unchecked,
        "unsigned_tail": s.unsigned_tail,
        "anchoring": anchoring,
        "problem": problem,
    })
}

fn print_records(output: Output, records: &[Value]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let written = match output {
        Output::Json => records.iter().try_for_each(|r| writeln!(out, "{r}")),
        Output::Table if records.is_empty() => writeln!(out, "No audit records match."),
        Output::Table => {
            let mut table = Table::new(&COLUMNS);
            for record in records {
                table.row(row(record).to_vec());
            }
            write!(out, "{}", table.render())
        }
    };
    // A reader that stops early (`| head`) is not an error.
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::failure(e.to_string())),
        _ => Ok(()),
    }
}

async fn tail(output: Output, args: FilterArgs, lines: usize) -> Result<(), CliError> {
    let (paths, filter) = args.resolve()?;
    let reader = ReaderWatch::stdout();
    let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
    let mut first = true;
    loop {
        let mut fresh = Vec::new();
        let streams = collect(&paths).map_err(|e| CliError::failure(e.to_string()))?;
        for file in streams.values().flatten() {
            let offset = offsets.get(&file.path).copied().unwrap_or(0);
            let Ok((lines, next)) = read_new_lines(&file.path, offset) else {
                continue;
            };
            offsets.insert(file.path.clone(), next);
            let mut rejected = 0;
            for line in &lines {
                match checked_record(line) {
                    Ok(record) if filter.matches(&record) => fresh.push(record),
                    Ok(_) => {}
                    Err(_) => rejected += 1,
                }
            }
            if rejected > 0 {
                note(&format!(
                    "{rejected} new lines of {} fail their hash check and were not shown (run `rampart audit verify`)",
                    file.path.display()
                ));
            }
        }
        fresh.sort_by_key(|r| r["time"].as_i64().unwrap_or(0));
        let mut text = String::new();
        if first {
            let skip = fresh.len().saturating_sub(lines);
            fresh.drain(..skip);
            first = false;
            if output == Output::Table {
                text.push_str(&COLUMNS.join("  "));
                text.push('\n');
            }
        }
        for record in &fresh {
            let shown = match output {
                Output::Json => record.to_string(),
                Output::Table => row(record).join("  "),
            };
            text.push_str(&shown);
            text.push('\n');
        }
        if !text.is_empty() && write_out(&mut std::io::stdout().lock(), &text)? == Reader::Gone {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(TAIL_POLL) => {}
            () = reader.gone() => return Ok(()),
        }
    }
}

/// Whether anyone still reads what is written.
#[derive(Debug, PartialEq, Eq)]
enum Reader {
    Reading,
    Gone,
}

/// Writes `text` and flushes; a reader that stopped (`| head`) is not an error.
fn write_out(out: &mut impl Write, text: &str) -> Result<Reader, CliError> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(Reader::Reading),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Reader::Gone),
        Err(e) => Err(CliError::failure(e.to_string())),
    }
}

/// A note on standard error; a closed standard error is no reason to stop.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "note: {text}");
}

/// Tells when the reader of standard output has gone (the other end of a pipe closed), so
/// `rampart audit tail | head -1` ends at once instead of when a later record fails to write.
#[derive(Debug)]
struct ReaderWatch {
    #[cfg(unix)]
    pipe: Option<tokio::net::unix::pipe::Sender>,
}

impl ReaderWatch {
    /// Watches standard output when it is a pipe; anything else is never reported gone.
    fn stdout() -> Self {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            let copy = std::io::stdout().as_fd().try_clone_to_owned().ok();
            Self::watch(copy.map(std::fs::File::from))
        }
        #[cfg(not(unix))]
        Self {}
    }

    #[cfg(unix)]
    fn watch(file: Option<std::fs::File>) -> Self {
        use std::os::unix::fs::FileTypeExt;
        let pipe = file
            .filter(|f| f.metadata().is_ok_and(|m| m.file_type().is_fifo()))
            // Unchecked: only its readiness is watched, nothing is written through it, and it
            // stays blocking — the flag is shared with standard output itself.
            .and_then(|f| tokio::net::unix::pipe::Sender::from_file_unchecked(f).ok());
        Self { pipe }
    }

    /// Resolves once the reader has gone; never, when that cannot be told.
    async fn gone(&self) {
        #[cfg(unix)]
        if let Some(pipe) = &self.pipe {
            loop {
                match pipe.ready(tokio::io::Interest::WRITABLE).await {
                    Ok(ready) if ready.is_write_closed() => return,
                    // Merely writable: forget it and wait for the next change.
                    Ok(_) => {
                        let _ = pipe.try_io(|| Err::<(), _>(std::io::ErrorKind::WouldBlock.into()));
                    }
                    Err(_) => break,
                }
            }
        }
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_the_output_and_other_errors_do_not_pass() {
        assert_eq!(write_out(&mut Vec::new(), "x\n").unwrap(), Reader::Reading);
        assert_eq!(write_out(&mut ClosedPipe, "x\n").unwrap(), Reader::Gone);
        let mut full = std::io::Cursor::new([0u8; 1]);
        assert!(write_out(&mut full, "too long\n").is_err());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_watch_sees_the_reader_go_without_a_write() {
        let (reader, writer) = std::io::pipe().unwrap();
        let watch = ReaderWatch::watch(Some(std::fs::File::from(std::os::fd::OwnedFd::from(writer))));
        assert!(watch.pipe.is_some());
        let still_there = tokio::time::timeout(Duration::from_millis(100), watch.gone()).await;
        assert!(still_there.is_err(), "the reader is still there");
        drop(reader);
        tokio::time::timeout(Duration::from_secs(5), watch.gone())
            .await
            .expect("the reader's exit is seen");
        // Not a pipe: never gone.
        let file = tempfile::tempfile().unwrap();
        assert!(ReaderWatch::watch(Some(file)).pipe.is_none());
    }
}
