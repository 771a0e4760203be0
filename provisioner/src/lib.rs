//! The provisioner (tokens, bulk enrolment, VM pools, REST API) is built in a later issue; this crate holds its place in the workspace.
