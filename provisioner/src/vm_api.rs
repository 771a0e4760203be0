//! Wire types of the VM pool routes (pools, VMs, allocations, reclaim and the capacity report),
//! defined in `rampart-api`, and how the store's records become them.

pub use rampart_api::vms::*;
use rampart_store::{PoolCounts, PoolRecord, VmRecord};

/// One VM as operators see it.
pub fn vm_info(vm: VmRecord) -> VmInfo {
    VmInfo {
        id: vm.id,
        pool: vm.pool,
        address: vm.address,
        state: vm.state.as_str().into(),
        holder: vm.holder_name,
        allocated_at: vm.allocated_at,
        last_flow_at: vm.last_flow_at,
        error: vm.error,
        hook_output: vm.hook_output,
        updated_at: vm.updated_at,
    }
}

/// A pool with its counts (all zero without them).
pub fn pool_info(pool: &PoolRecord, counts: Option<&PoolCounts>) -> PoolInfo {
    let hooks = [
        ("provision", &pool.provision_hook),
        ("reset", &pool.reset_hook),
        ("destroy", &pool.destroy_hook),
    ]
    .into_iter()
    .filter(|(_, hook)| hook.is_some())
    .map(|(name, _)| name.to_owned())
    .collect();
    let n = |f: fn(&PoolCounts) -> u32| counts.map_or(0, f);
    PoolInfo {
        name: pool.name.clone(),
        description: pool.description.clone(),
        ports: pool.ports.clone(),
        capacity: pool.capacity,
        hooks,
        hook_timeout_secs: pool.hook_timeout_secs,
        provisioning: n(|c| c.provisioning),
        free: n(|c| c.free),
        allocated: n(|c| c.allocated),
        maintenance: n(|c| c.maintenance),
        retired: n(|c| c.retired),
    }
}
