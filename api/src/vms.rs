//! The provisioner's VM pool routes: pools, VMs, allocations, reclaim and the capacity report.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A new pool.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolRequest {
    /// Unique name: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Ports its machines serve, e.g. `[3389]`.
    pub ports: Vec<u16>,
    /// How many machines it is meant to hold.
    pub capacity: u32,
    /// Command run (`sh -c`) to prepare each new VM.
    #[serde(default)]
    pub provision_hook: Option<String>,
    /// Command run when a VM is released, before it is free again.
    #[serde(default)]
    pub reset_hook: Option<String>,
    /// Command run when a VM is retired.
    #[serde(default)]
    pub destroy_hook: Option<String>,
    /// Seconds a hook may run (default 300).
    #[serde(default)]
    pub hook_timeout_secs: Option<u32>,
}

/// A pool and its numbers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolInfo {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Ports.
    pub ports: Vec<u16>,
    /// Capacity.
    pub capacity: u32,
    /// Hooks set.
    pub hooks: Vec<String>,
    /// Hook time limit.
    pub hook_timeout_secs: u32,
    /// VMs being provisioned.
    pub provisioning: u32,
    /// Free VMs.
    pub free: u32,
    /// Allocated VMs.
    pub allocated: u32,
    /// VMs in maintenance.
    pub maintenance: u32,
    /// Retired VMs.
    pub retired: u32,
}

/// One VM as operators see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VmInfo {
    /// Id.
    pub id: String,
    /// Pool.
    pub pool: String,
    /// Address.
    pub address: String,
    /// `provisioning`, `free`, `allocated`, `maintenance`, `retired`.
    pub state: String,
    /// Holder's username.
    pub holder: Option<String>,
    /// When allocated (unix seconds).
    pub allocated_at: Option<i64>,
    /// The holder's last connection to it (unix seconds).
    pub last_flow_at: Option<i64>,
    /// The last hook failure.
    pub error: Option<String>,
    /// The last hook's output (tail).
    pub hook_output: Option<String>,
    /// Last change (unix seconds).
    pub updated_at: i64,
}

/// A pool, its numbers and its VMs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolDetail {
    /// The pool.
    pub pool: PoolInfo,
    /// Its VMs.
    pub vms: Vec<VmInfo>,
}

/// One inventory line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVm {
    /// Unique id.
    pub id: String,
    /// Host name or IP address.
    pub address: String,
}

/// VMs to add to a pool (at most 1000 at once; all or none).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddVms {
    /// The machines.
    pub vms: Vec<NewVm>,
}

/// What adding did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddVmsResponse {
    /// How many were added.
    pub added: usize,
    /// How many wait for their provision hook.
    pub provisioning: usize,
}

/// Give a VM of the pool to a person.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocateRequest {
    /// The person's username in the directory.
    pub username: String,
    /// A named VM (default: any free one).
    #[serde(default)]
    pub vm: Option<String>,
    /// Allow a second VM in this pool for this person.
    #[serde(default)]
    pub allow_second: bool,
}

/// Give an allocated VM to someone else.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignRequest {
    /// The new holder.
    pub username: String,
}

/// Why (kept in the VM's history).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VmReason {
    /// Free text.
    #[serde(default)]
    pub reason: String,
}

/// Which VMs to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct VmQuery {
    /// Only this pool.
    pub pool: Option<String>,
    /// Only this state.
    pub state: Option<String>,
    /// Only VMs this username holds.
    pub user: Option<String>,
}

/// Which idle VMs to reclaim.
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReclaimQuery {
    /// Days without a connection from the holder (at least 1).
    pub days: u32,
    /// Only this pool.
    #[serde(default)]
    pub pool: Option<String>,
}

/// What a reclaim run did. Each VM is released only if, at that moment, the same person still
/// holds it and it is still idle past the cutoff; the others are listed with the reason.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReclaimReport {
    /// The VMs taken back (now `provisioning` for their pool's reset hook, or `free`).
    pub released: Vec<VmInfo>,
    /// The idle VMs left alone, each with why.
    pub skipped: Vec<ReclaimSkipped>,
}

/// An idle VM a reclaim run did not release.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReclaimSkipped {
    /// VM id.
    pub vm: String,
    /// Its holder when it was found idle.
    pub holder: Option<String>,
    /// Why it was not released (used since, changed hands, released meanwhile…).
    pub reason: String,
}

/// One pool in the capacity report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolCapacity {
    /// The pool and its numbers.
    pub pool: PoolInfo,
    /// Allocations per day over the last 14 days (`YYYY-MM-DD`, count), oldest first.
    pub allocations_per_day: Vec<(String, u32)>,
    /// Mean allocations per day over the last 7 days.
    pub rate_per_day: f64,
    /// Days until no VM is free at that rate (None: not running out).
    pub days_until_full: Option<f64>,
}

/// The capacity report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CapacityReport {
    /// When (unix seconds).
    pub generated_at: i64,
    /// Each pool.
    pub pools: Vec<PoolCapacity>,
}
