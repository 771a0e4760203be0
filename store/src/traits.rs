//! The store's concern traits, one per part of the data, each with the guarantees its
//! methods keep; every backend implements them all (`ops/`).

mod fleet;
mod people;
mod sessions;
mod tokens;

pub use fleet::{AuditAnchorStore, GatewayStore, KeyStore, ReadinessStore, StoreHealth, VmStore};
pub use people::{ApprovalStore, OperatorStore, PeopleStore, RegistrationStore, TempCodeStore};
pub use sessions::{SessionStore, WebSessionStore};
pub use tokens::TokenStore;
