//! VM pools, their machines and allocations: the records the provisioner manages and the one
//! lookup gateways make (which VM a person holds in a pool).

use serde::{Deserialize, Serialize};

/// A pool of alike machines (e.g. `desktops`: RDP on 3389).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRecord {
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Ports its machines serve.
    pub ports: Vec<u16>,
    /// How many machines it is meant to hold.
    pub capacity: u32,
    /// Command run to prepare a new VM (`sh -c`); None: VMs are free when added.
    pub provision_hook: Option<String>,
    /// Command run when a VM is released, before it is free again.
    pub reset_hook: Option<String>,
    /// Command run when a VM is retired.
    pub destroy_hook: Option<String>,
    /// Seconds a hook may run before it is killed.
    pub hook_timeout_secs: u32,
    /// Unix seconds.
    pub created_at: i64,
    /// Operator who created it.
    pub created_by: String,
}

/// Where a VM is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    /// Its provision hook is running.
    Provisioning,
    /// Ready for someone.
    Free,
    /// Held by one person.
    Allocated,
    /// Out of service (by an operator, or after a failed hook).
    Maintenance,
    /// Gone for good.
    Retired,
}

impl VmState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Free => "free",
            Self::Allocated => "allocated",
            Self::Maintenance => "maintenance",
            Self::Retired => "retired",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Provisioning,
            Self::Free,
            Self::Allocated,
            Self::Maintenance,
            Self::Retired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRecord {
    /// Unique id (the inventory's name for it).
    pub id: String,
    /// Its pool.
    pub pool: String,
    /// Host name or IP address.
    pub address: String,
    /// State.
    pub state: VmState,
    /// The holder's stable id, when allocated.
    pub holder_id: Option<String>,
    /// The holder's username, when allocated.
    pub holder_name: Option<String>,
    /// When it was allocated.
    pub allocated_at: Option<i64>,
    /// The holder's last forwarded connection to it.
    pub last_flow_at: Option<i64>,
    /// The last hook failure.
    pub error: Option<String>,
    /// The last hook's output (tail).
    pub hook_output: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// What to allocate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationRequest {
    /// The pool.
    pub pool: String,
    /// The person's stable id (must be a known user).
    pub user_id: String,
    /// The person's username.
    pub username: String,
    /// A named VM, or None for any free one.
    pub vm_id: Option<String>,
    /// Allow a second VM in the same pool for this person.
    pub allow_second: bool,
    /// Operator.
    pub actor: String,
}

/// One pool's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolCounts {
    /// Pool name.
    pub pool: String,
    /// Its capacity.
    pub capacity: u32,
    /// VMs by state.
    pub provisioning: u32,
    /// Free.
    pub free: u32,
    /// Allocated.
    pub allocated: u32,
    /// In maintenance.
    pub maintenance: u32,
    /// Retired.
    pub retired: u32,
}

/// A change to a VM, for history, reports and audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmEvent {
    /// Order.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// The VM.
    pub vm_id: String,
    /// Its pool.
    pub pool: String,
    /// Operator or service.
    pub actor: String,
    /// `added`, `allocated`, `released`, `reassigned`, `maintenance`, `retired`, `provisioned`,
    /// `hook_failed`…
    pub action: String,
    /// The person concerned.
    pub user_name: Option<String>,
    /// Free text.
    pub detail: String,
}

/// A state change of one VM, applied only from one of the `from` states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmChange {
    /// The VM.
    pub vm_id: String,
    /// States it may be in now.
    pub from: Vec<VmState>,
    /// The new state (leaving `allocated` drops the holder).
    pub to: VmState,
    /// Operator or service.
    pub actor: String,
    /// Event name.
    pub action: String,
    /// Event detail.
    pub detail: String,
    /// Error to show on the VM (None clears it).
    pub error: Option<String>,
    /// Hook output to keep (None keeps the previous).
    pub hook_output: Option<String>,
    /// Further conditions, checked in the same transaction as the change.
    pub only_if: VmGuard,
}

/// Conditions a [`VmChange`] needs besides the VM's state; each that is set must hold, or the
/// change is a [`crate::StoreError::Conflict`] that says which did not. The default has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmGuard {
    /// It is still held by this person (stable id).
    pub holder_id: Option<String>,
    /// Its holder last used it (or, never having used it, got it) before this time.
    pub idle_before: Option<i64>,
    /// It has not changed since it was read: its `updated_at` is still this.
    pub updated_at: Option<i64>,
}
