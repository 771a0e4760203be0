//! Process logging for the binaries: `tracing` to standard error, human-readable or JSON,
//! filtered by `RUST_LOG` (default `info`), with every field escaped by
//! `rampart_core::logging`. [`LogFormat`] is the `--log-format` value the command lines take.

use rampart_core::logging::Format;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormat> for Format {
    fn from(format: LogFormat) -> Self {
        match format {
            LogFormat::Text => Self::Text,
            LogFormat::Json => Self::Json,
        }
    }
}

/// Installs the global subscriber at `info` unless `RUST_LOG` says otherwise; later calls are
/// ignored.
pub fn init(format: LogFormat) {
    init_at(format, "info");
}

/// [`init`] with another default filter, e.g. `warn` for a command-line tool whose own output
/// is its answer.
pub fn init_at(format: LogFormat, default_filter: &str) {
    rampart_core::logging::init(format.into(), default_filter);
}
