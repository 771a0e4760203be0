//! The provisioner's wire types: request and response bodies of the REST API, defined in
//! `rampart-api` (shared with the `rampart` CLI, which never links this crate for them) and
//! described in the OpenAPI document.

pub use rampart_api::provisioner::*;
