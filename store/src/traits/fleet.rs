//! The store traits for the fleet and the database itself: VMs, seal keys, gateways, the
//! audit trail's anchors, readiness, health.

use crate::{
    AllocationRequest, AuditAnchor, AuditStream, GatewayNode, PoolCounts, PoolRecord, SealedSeed, StoreError, VmChange,
    VmEvent, VmRecord, VmState, WrappedSealKey, readiness,
};

/// VM pools, their machines, allocations and VM history.
#[async_trait::async_trait]
pub trait VmStore: Send + Sync + std::fmt::Debug {
    /// Creates a VM pool; an existing name is [`StoreError::Conflict`].
    async fn create_pool(&self, pool: &PoolRecord) -> Result<(), StoreError>;

    /// Every pool by name, or the one named.
    async fn pools(&self, name: Option<&str>) -> Result<Vec<PoolRecord>, StoreError>;

    /// Adds VMs in one transaction, each with an `added` event: a duplicate id is
    /// [`StoreError::Conflict`] and an unknown pool [`StoreError::NotFound`], and then nothing
    /// is added.
    async fn add_vms(&self, vms: &[VmRecord], actor: &str, now: i64) -> Result<(), StoreError>;

    /// VMs, optionally of one pool, in one state, held by one username.
    async fn vms(
        &self,
        pool: Option<&str>,
        state: Option<VmState>,
        holder: Option<&str>,
    ) -> Result<Vec<VmRecord>, StoreError>;

    /// One VM.
    async fn vm(&self, id: &str) -> Result<Option<VmRecord>, StoreError>;

    /// Gives a free VM (the named one, or any) to a person in one atomic conditional update:
    /// a VM never gets two holders, and a person who already holds one in the pool gets
    /// [`StoreError::Conflict`] unless `allow_second`. No free VM is a conflict too.
    async fn allocate_vm(&self, request: &AllocationRequest, now: i64) -> Result<VmRecord, StoreError>;

    /// Applies a state change if the VM is in one of `change.from` and meets `change.only_if`,
    /// with its event; otherwise [`StoreError::Conflict`] naming what did not hold.
    async fn change_vm(&self, change: &VmChange, now: i64) -> Result<VmRecord, StoreError>;

    /// Gives an allocated VM to another person (who must hold none in the pool).
    async fn reassign_vm(
        &self,
        vm_id: &str,
        user_id: &str,
        username: &str,
        actor: &str,
        now: i64,
    ) -> Result<VmRecord, StoreError>;

    /// The VM `user_id` holds in `pool` (the earliest, if asked to hold several).
    async fn vm_held(&self, user_id: &str, pool: &str) -> Result<Option<VmRecord>, StoreError>;

    /// Notes that the holder used the VM at `now` (a forwarded connection ended).
    async fn touch_vm_flow(&self, vm_id: &str, now: i64) -> Result<(), StoreError>;

    /// Each pool's capacity and VMs by state.
    async fn pool_counts(&self) -> Result<Vec<PoolCounts>, StoreError>;

    /// VM events from `since` on, optionally of one pool, oldest first.
    async fn vm_events(&self, pool: Option<&str>, since: i64) -> Result<Vec<VmEvent>, StoreError>;
}

/// Seed-sealing keys held in the store (wrapped by a key-encryption key), and sealed seeds for
/// re-sealing under a new key.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// Every token's id and sealed seed, for re-sealing under a new key.
    async fn sealed_seeds(&self) -> Result<Vec<(String, SealedSeed)>, StoreError>;

    /// Replaces a token's sealed seed if it still equals `old` (compare and swap); returns
    /// whether it did.
    async fn reseal(&self, token_id: &str, old: &SealedSeed, new: &SealedSeed) -> Result<bool, StoreError>;

    /// Every seed-sealing key kept in the store, by id.
    async fn seal_keys(&self) -> Result<Vec<WrappedSealKey>, StoreError>;

    /// Stores a new seal key. An existing id is [`StoreError::Conflict`]: of two nodes adding
    /// the next key at once, one wins and the other learns it lost.
    async fn add_seal_key(&self, key: &WrappedSealKey) -> Result<(), StoreError>;

    /// Deletes seal key `id`, in one transaction with the checks that it is not the current
    /// (highest) key and that no token is sealed under it ([`StoreError::Conflict`]
    /// otherwise); an unknown id is [`StoreError::NotFound`].
    async fn retire_seal_key(&self, id: u32) -> Result<(), StoreError>;
}

/// Gateways sharing the store: each registers itself and beats, so any node can list them.
#[async_trait::async_trait]
pub trait GatewayStore: Send + Sync + std::fmt::Debug {
    /// Registers (or re-registers after a restart) a gateway: its record replaces any older
    /// one with the same id.
    async fn register_gateway(&self, node: &GatewayNode) -> Result<(), StoreError>;

    /// A gateway's heartbeat: when, and how busy it is.
    async fn gateway_heartbeat(&self, id: &str, now: i64, sessions: u64, flows: u64) -> Result<(), StoreError>;

    /// A gateway stopped cleanly.
    async fn gateway_stopped(&self, id: &str, now: i64) -> Result<(), StoreError>;

    /// Every gateway that ever registered, by id.
    async fn gateway_nodes(&self) -> Result<Vec<GatewayNode>, StoreError>;
}

/// The audit trail anchored outside its files: the streams writers opened and every signed
/// checkpoint's head, so records cut off a stream's end, or a stream deleted whole, are told
/// from a trail that simply ended. A stream is named by its checkpoint key's id and its name.
#[async_trait::async_trait]
pub trait AuditAnchorStore: Send + Sync + std::fmt::Debug {
    /// Registers a stream as its writer opens it (or notes that it opened again) and returns
    /// the newest head anchored for it, for the writer to compare its files with.
    async fn open_audit_stream(
        &self,
        key_id: &str,
        stream: &str,
        service: &str,
        now: i64,
    ) -> Result<Option<AuditAnchor>, StoreError>;

    /// Records a checkpoint's head. Recording the same head again changes nothing; another
    /// hash under a number already anchored is [`StoreError::Conflict`].
    async fn anchor_audit_head(&self, anchor: &AuditAnchor) -> Result<(), StoreError>;

    /// Every stream ever opened, with its newest head, by key id and name.
    async fn audit_streams(&self) -> Result<Vec<AuditStream>, StoreError>;

    /// Every head anchored for one stream, lowest number first.
    async fn audit_anchors(&self, key_id: &str, stream: &str) -> Result<Vec<AuditAnchor>, StoreError>;
}

/// Rehearsals reported by `rampart-connect doctor --rehearse`, and each person's steps towards
/// their first real connection (the readiness funnel, [`readiness::funnel`]).
#[async_trait::async_trait]
pub trait ReadinessStore: Send + Sync + std::fmt::Debug {
    /// Stores a rehearsal: an unknown person is [`StoreError::NotFound`], an existing id
    /// [`StoreError::Conflict`].
    async fn record_rehearsal(&self, rehearsal: &readiness::Rehearsal) -> Result<(), StoreError>;

    /// The person's newest rehearsal, passed or not.
    async fn latest_rehearsal(&self, user_id: &str) -> Result<Option<readiness::Rehearsal>, StoreError>;

    /// Every person the store knows (only members of `group` when given), sorted by username,
    /// with the first time of each step at or before `now`, read from one snapshot.
    async fn readiness(&self, group: Option<&str>, now: i64) -> Result<Vec<readiness::ReadinessRow>, StoreError>;
}

/// The database itself: whether it answers, and its clock.
#[async_trait::async_trait]
pub trait StoreHealth: Send + Sync + std::fmt::Debug {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The database's clock, in unix milliseconds, read in one round trip. Nodes compare their
    /// own clock with it; on SQLite it is this host's clock.
    async fn database_time_ms(&self) -> Result<i64, StoreError>;

    /// Which backend and where, for logs and health pages (never a password).
    fn describe(&self) -> String;
}
