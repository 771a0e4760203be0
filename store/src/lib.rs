//! Rampart persistence behind traits per concern ([`PeopleStore`], [`TokenStore`],
//! [`SessionStore`], [`TempCodeStore`], [`RegistrationStore`], [`ApprovalStore`], [`OperatorStore`], [`VmStore`], [`KeyStore`],
//! [`GatewayStore`], [`AuditAnchorStore`], [`WebSessionStore`], [`ReadinessStore`], [`StoreHealth`]; [`Store`] is all of them). [`SqliteStore`] (one WAL file in the state
//! directory) is the embedded default and [`PgStore`] the scale-out backend; both run the same
//! SQL and the same code (`ops/`), differing only where each backend's `dialect` says.
//!
//! Guarantees every backend keeps:
//! - [`Store::accept_step`] is one atomic conditional update: for a token and a time step, at
//!   most one call ever returns [`StepOutcome::Accepted`], across tasks and processes.
//! - A write has reached durable storage when its method returns `Ok` (on PostgreSQL with a
//!   synchronous standby, on the standby too).
//! - Every rule that must hold across processes and hosts (a step accepted once, failures
//!   counted, one VM per holder, temporary codes used once) is one conditional statement or one
//!   transaction that cannot interleave wrongly.
//! - The store never reads the clock: callers pass `now` (unix seconds).
//! - Seeds are stored only sealed ([`KeyRing`]); no error or `Debug` output contains a seed,
//!   sealed blob, password hash or ticket hash.

pub mod access;
pub mod approvals;
pub mod audit_anchors;
pub mod clock;
mod config;
pub mod copy;
mod error;
mod model;
mod postgres;
mod provisioning;
pub mod readiness;
pub mod registration;
pub mod schema;
pub mod seal;
mod sql;
mod sqlite;
pub use rampart_core::temp_code;
mod traits;
pub mod vms;
pub mod web_sessions;

pub use approvals::ResetRequest;
pub use audit_anchors::{AuditAnchor, AuditStream};
pub use config::{MASTER_KEY_FILE, MigrationReport, PASSWORD_ENV, StoreConfig, StoreTarget, URL_ENV, without_password};
pub use error::StoreError;
pub use model::{
    EndedBy, EndedSession, GatewayNode, Rotation, SessionRecord, StepOutcome, TicketMatch, TokenRecord, TokenState,
    UserRecord, WrappedSealKey,
};
pub use postgres::{PgSettings, PgStore, parse_hosts};
pub use provisioning::{
    IssueMode, IssueOutcome, OperatorRecord, OperatorRole, TempCodeRecord, TokenEvent, TokenIssue, TokenQuery,
    TokenView,
};
pub use seal::{KeyRing, SealError, SealedSeed};
pub use sqlite::{DB_FILE_NAME, SqliteStore};
pub use traits::{
    ApprovalStore, AuditAnchorStore, GatewayStore, KeyStore, OperatorStore, PeopleStore, ReadinessStore,
    RegistrationStore, SessionStore, StoreHealth, TempCodeStore, TokenStore, VmStore, WebSessionStore,
};
pub use vms::{AllocationRequest, PoolCounts, PoolRecord, VmChange, VmEvent, VmGuard, VmRecord, VmState};
pub use web_sessions::WebSession;

/// Every trait of the store, for `use rampart_store::prelude::*`: methods of a `dyn Store` come
/// from the concern traits, which must be in scope to call them.
pub mod prelude {
    pub use crate::{
        ApprovalStore, AuditAnchorStore, GatewayStore, KeyStore, OperatorStore, PeopleStore, ReadinessStore,
        RegistrationStore, SessionStore, Store, StoreHealth, TempCodeStore, TokenStore, VmStore, WebSessionStore,
    };
}

/// Everything a gateway or provisioner keeps: every concern trait on one database. Object safe:
/// share it as `Arc<dyn Store>`; a part that needs one concern takes that trait instead.
pub trait Store:
    PeopleStore
    + TokenStore
    + SessionStore
    + TempCodeStore
    + RegistrationStore
    + ApprovalStore
    + OperatorStore
    + VmStore
    + KeyStore
    + GatewayStore
    + AuditAnchorStore
    + WebSessionStore
    + ReadinessStore
    + StoreHealth
{
}

impl<T> Store for T where
    T: PeopleStore
        + TokenStore
        + SessionStore
        + TempCodeStore
        + RegistrationStore
        + ApprovalStore
        + OperatorStore
        + VmStore
        + KeyStore
        + GatewayStore
        + AuditAnchorStore
        + WebSessionStore
        + ReadinessStore
        + StoreHealth
{
}
