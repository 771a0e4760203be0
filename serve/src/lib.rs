//! Process plumbing shared by Rampart's services (the gateway's admin listener, the
//! provisioner, `rampart dev`): one way to serve an axum router over TLS and stop it
//! gracefully, one shutdown signal, one log set-up for the binaries.

pub mod https;
pub mod logging;
pub mod shutdown;

pub use https::{BindError, HttpsListener};
