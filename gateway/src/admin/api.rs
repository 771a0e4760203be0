//! Wire types of the gateway's admin API (JSON), defined in `rampart-api` and shared with the
//! `rampart` CLI.

pub use rampart_api::gateway::*;
