//! Wire types of Rampart's HTTP APIs: the JSON request and response bodies of the provisioner's
//! REST API ([`provisioner`], [`vms`]) and of the gateway's admin API ([`gateway`]).
//!
//! The services serve them and the `rampart` CLI sends and reads them, so a client links these
//! types and never the servers. Only shapes and plain formatting live here: no HTTP framework,
//! no store, no I/O. Every type's serde shape is the wire contract; changing a field name, a
//! rename or a skip rule changes the API.

pub mod gateway;
pub mod provisioner;
pub mod vms;

#[cfg(test)]
mod tests;
