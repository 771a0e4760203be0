//! In-process tests of the gateway's heart — login, resume, session end and forwarding —
//! against a real gateway on 127.0.0.1 whose wall clock is a manual one the test moves
//! (`harness::Lab`), with the real client, store, directory, flow log and audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod forward;
mod harness;
mod login;
mod resume;
mod session_end;
