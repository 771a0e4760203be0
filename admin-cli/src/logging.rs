//! The `rampart` process log: `--log-format` and the `tracing` set-up of `rampart_core::logging`
//! (standard error, filtered by `RUST_LOG`, every field escaped).

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber at `default_filter` unless `RUST_LOG` says otherwise; later
/// calls are ignored.
pub fn init_at(format: LogFormat, default_filter: &str) {
    let format = match format {
        LogFormat::Text => rampart_core::logging::Format::Text,
        LogFormat::Json => rampart_core::logging::Format::Json,
    };
    rampart_core::logging::init(format, default_filter);
}
