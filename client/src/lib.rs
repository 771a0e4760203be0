//! `rampart-connect`, the employee's client: connect to a gateway over QUIC, log in with
//! password and code, keep the session in a private home folder, and forward local TCP ports
//! to the resources the person may use; enrol their own authenticator with a registration code.

pub mod credential;
pub mod doctor;
pub mod enrol;
pub mod error;
pub mod forward;
pub mod gateway;
pub mod home;
pub mod login;
pub mod messages;
pub mod resume;
pub mod socks;
pub mod spread;
pub mod tunnel;

pub use credential::{ClientKey, ResumeCredential};
pub use error::ClientError;
pub use gateway::GatewayClient;
pub use home::{Home, SavedSession};
