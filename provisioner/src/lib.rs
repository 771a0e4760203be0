//! Rampart provisioner: the service desk's REST API for TOTP tokens — issue (the seed shown
//! once), track, revoke, report lost, unlock, resync, enrol in bulk — with operators holding
//! role-bound API keys, seeds sealed under rotatable master keys, and an OpenAPI document; and VM
//! pools: inventory, per-person allocations, hooks, reclaim and capacity.

pub mod api;
pub mod auth;
pub mod config;
pub mod console_config;
mod http;
pub mod init;
pub mod preflight;
pub mod qr;
mod routes;
pub mod self_service;
pub mod server;
pub mod service;
pub mod vm_api;
mod web;

pub use config::{ProvisionerConfig, ProvisionerSettings};
pub use http::AppState;
pub use routes::{openapi, router};
pub use server::ProvisionerServer;
pub use service::{Provisioner, ServiceError};
