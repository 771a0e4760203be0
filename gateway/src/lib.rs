//! The Rampart gateway: a QUIC server where employees log in (directory password + TOTP),
//! then open named resources; each stream is one forwarded TCP connection, authorised by the
//! policy and recorded as one flow line. A separate admin listener serves sessions, policy
//! explanations, health and Prometheus metrics.

pub mod admin;
mod admission;
mod backend;
mod backoff;
pub mod clock;
mod clock_check;
pub mod config;
mod connection;
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
mod resume;
mod server;
mod session;
pub mod shutdown;
mod transport;

pub use clock::Clock;
pub use config::{DirectoryConfig, GatewayConfig, GatewaySettings};
pub use flowlog::FlowLog;
pub use rampart_directory::{OpenDirectoryError, open_directory};
pub use server::{Gateway, GatewayParts};
