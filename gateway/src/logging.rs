//! Process logging: `tracing` to standard error, human-readable or JSON, filtered by
//! `RUST_LOG` (default `info`), with every field escaped by `rampart_core::logging`.

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber at `info` unless `RUST_LOG` says otherwise; later calls are
/// ignored.
pub fn init(format: LogFormat) {
    init_at(format, "info");
}

/// [`init`] with another default filter, e.g. `warn` for a command-line tool whose own output
/// is its answer.
pub fn init_at(format: LogFormat, default_filter: &str) {
    let format = match format {
        LogFormat::Text => rampart_core::logging::Format::Text,
        LogFormat::Json => rampart_core::logging::Format::Json,
    };
    rampart_core::logging::init(format, default_filter);
}
