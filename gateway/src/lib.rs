//! The Rampart gateway: a QUIC server where employees log in (directory password + TOTP),
//! then open named resources; each stream is one forwarded TCP connection, authorised by the
//! policy and recorded as one flow line. A separate admin listener serves sessions, policy
//! explanations, health and Prometheus metrics.

pub mod admin;
mod admission;
mod attachment;
mod backend;
mod backoff;
mod clock_check;
pub mod config;
mod connection;
mod control;
pub mod flowlog;
mod forward;
pub mod logging;
mod login;
mod maintenance;
mod metrics;
mod node;
pub mod preflight;
mod refusal;
mod registry;
mod reload;
mod reply;
mod resume;
mod server;
mod session;
pub mod shutdown;
mod state;
mod transport;

pub use config::{DirectoryConfig, GatewayConfig, GatewaySettings};
pub use flowlog::FlowLog;
pub use rampart_core::clock::{Clock, ClockHand};
pub use rampart_directory::{OpenDirectoryError, open_directory};
pub use server::{Gateway, GatewayParts};
