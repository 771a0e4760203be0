//! Process logging: `tracing` to standard error, human-readable or JSON, filtered by
//! `RUST_LOG` (default `info`); the one set-up of `rampart_serve::logging`, under the
//! gateway's name for its callers.

pub use rampart_serve::logging::{LogFormat, init, init_at};
