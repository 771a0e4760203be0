//! `rampart audit`: the security team's view of the audit trail on disk — verify that nothing
//! was edited, removed, moved or cut; query records by user, resource, decision, source and
//! time; follow new records as they are written. Works on folders or files, local or copied.

use crate::client::{CliError, exit};
use crate::policy::parse_time;
use crate::view::{Output, Table};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rampart_audit::files::{collect, read_new_lines};
use rampart_audit::keys::read_public_key;
use rampart_audit::query::{Filter, query, row};
use rampart_audit::verify::{StreamReport, VerifyOptions, verify_paths};
use rampart_core::audit::{Class, Problem};
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
    },
    /// Records matching every filter given, oldest first (a table, or JSON lines with -o json).
    Query(FilterArgs),
    /// The last matching records, then new ones as they are written, until interrupted.
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
    /// Only one kind of record.
    #[arg(long, value_parser = ["auth", "decision", "flow", "account", "api"])]
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
        } => verify(output, &paths_or_env(paths)?, public_key, allow_missing_start),
        AuditCommand::Query(args) => {
            let (paths, filter) = args.resolve()?;
            let (records, unreadable) = query(&paths, &filter).map_err(|e| CliError::failure(e.to_string()))?;
            print_records(output, &records)?;
            if unreadable > 0 {
                eprintln!("note: {unreadable} lines were not JSON and were skipped (run `rampart audit verify`)");
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
            code: 2,
        }),
    }
}

fn verify(
    output: Output,
    paths: &[PathBuf],
    public_key: Option<PathBuf>,
    allow_missing_start: bool,
) -> Result<(), CliError> {
    let public_key = public_key
        .map(|path| read_public_key(&path))
        .transpose()
        .map_err(|e| CliError::failure(e.to_string()))?;
    let checked_signatures = public_key.is_some();
    let options = VerifyOptions {
        public_key,
        allow_missing_start,
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
            for report in &reports {
                println!("{}", report_line(report, checked_signatures));
            }
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

fn report_line(report: &StreamReport, checked_signatures: bool) -> String {
    let s = &report.summary;
    match &report.finding {
        Some(finding) => format!("{}: BROKEN at {finding}", report.stream),
        None => {
            let range = match (s.first_seq, s.last_seq) {
                (Some(a), Some(b)) => format!(" ({a} to {b})"),
                _ => String::new(),
            };
            let signatures = if checked_signatures {
                format!("{} signed checkpoints verified", s.checkpoints_verified)
            } else {
                format!(
                    "{} checkpoints not checked (give --public-key to check signatures)",
                    s.checkpoints_unchecked
                )
            };
            format!(
                "{}: intact: {} files, {} records{range}, {signatures}",
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
            Problem::BadSignature(_) => "bad_signature",
        };
        json!({
            "file": f.place.file, "line": f.place.line, "seq": f.seq,
            "kind": kind, "message": f.problem.to_string(),
        })
    });
    json!({
        "stream": report.stream,
        "intact": report.finding.is_none(),
        "files": report.files,
        "records": s.records,
        "first_seq": s.first_seq,
        "last_seq": s.last_seq,
        "checkpoints_verified": s.checkpoints_verified,
        "checkpoints_unchecked": s.checkpoints_unchecked,
        "problem": problem,
    })
}

fn print_records(output: Output, records: &[Value]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let written = match output {
        Output::Json => records.iter().try_for_each(|r| writeln!(out, "{r}")),
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
            fresh.extend(
                lines
                    .iter()
                    .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
                    .filter(|r| filter.matches(r)),
            );
        }
        fresh.sort_by_key(|r| r["time"].as_i64().unwrap_or(0));
        if first {
            let skip = fresh.len().saturating_sub(lines);
            fresh.drain(..skip);
            first = false;
            if output == Output::Table {
                println!("{}", COLUMNS.join("  "));
            }
        }
        match output {
            Output::Json => print_records(output, &fresh)?,
            Output::Table => {
                let mut out = std::io::stdout().lock();
                for record in &fresh {
                    let _ = writeln!(out, "{}", row(record).join("  "));
                }
                let _ = out.flush();
            }
        }
        tokio::time::sleep(TAIL_POLL).await;
    }
}
