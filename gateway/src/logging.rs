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

/// Installs the global subscriber; later calls are ignored.
pub fn init(format: LogFormat) {
    let format = match format {
        LogFormat::Text => rampart_core::logging::Format::Text,
        LogFormat::Json => rampart_core::logging::Format::Json,
    };
    rampart_core::logging::init(format, "info");
}
