//! Rampart's sans-I/O core: the wire protocol and its frame codec, TOTP verification, the
//! access policy and its decisions, flow records, the audit chain and username normalisation.
//!
//! Nothing here opens a socket, reads the clock or draws randomness: `now` and random bytes
//! are arguments, so every rule can be tested with a fixed clock. The optional `clock` feature is
//! the one wall clock the services read and pass in (system, shifted for drills, manual in
//! tests); `io` adds async frame helpers over any tokio reader/writer for the gateway and client;
//! `logging` the process-log formatter that escapes outside text in every field; `qr` draws the
//! QR codes of enrolment URIs in memory.

pub mod access;
pub mod audit;
#[cfg(feature = "clock")]
pub mod clock;
pub mod code_check;
pub mod codec;
pub mod flow;
#[cfg(feature = "io")]
pub mod io;
#[cfg(feature = "logging")]
pub mod logging;
pub mod policy;
pub mod profile;
pub mod protocol;
#[cfg(feature = "qr")]
pub mod qr;
#[cfg(feature = "quic")]
pub mod quic_relay;
pub mod registration;
pub mod resume_proof;
pub mod secret;
pub mod temp_code;
pub mod text;
pub mod totp;
pub mod username;

pub use protocol::{ALPN, ErrorCode, PROTOCOL_VERSION};
