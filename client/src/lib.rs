//! `rampart-connect`, the employee's client: connect to a gateway over QUIC, log in with
//! password and code, keep the session in a private home folder, and forward local TCP ports
//! to the resources the person may use; enrol their own authenticator with a registration code.
//! Each command is a module with a `run` function (`setup`, `login`, `enrol`, `status`,
//! `forward`, `socks`, `doctor`, `rehearse`, `logout`); `main.rs` only parses and dispatches.

pub mod certificate;
pub mod credential;
pub mod doctor;
pub mod enrol;
pub mod error;
pub mod failover;
pub mod forward;
pub mod gateway;
pub mod home;
pub mod known;
pub mod login;
pub mod logout;
pub mod messages;
pub mod prompt;
pub mod rehearse;
pub mod resume;
pub mod setup;
pub mod show;
pub mod socks;
pub mod spread;
pub mod status;
pub mod tunnel;

pub use credential::{ClientKey, ResumeCredential};
pub use error::ClientError;
pub use gateway::GatewayClient;
pub use home::{Home, SavedSession};
