//! VM pools and allocations. Every change runs in one write transaction with its event row,
//! so an allocation is a single conditional update: a VM goes from `free` to one holder at most
//! once, and a person gets a second VM in a pool only when asked. A change reads its VM with the
//! row locked ([`dialect::LOCK_ROW`]), and the check that a person holds no VM in the pool runs
//! under a lock on that person and pool ([`dialect::serialize`]), so these hold across hosts.

use super::dialect::{self, Db, DbRow, Pool};
use sqlx::{Row, Transaction};

use super::decode_int;
use crate::vms::{AllocationRequest, PoolCounts, PoolRecord, VmEvent, VmRecord, VmState};
use crate::{StoreError, VmChange};

const POOL_COLUMNS: &str = "name, description, ports, capacity, provision_hook, reset_hook, destroy_hook, \
                            hook_timeout_secs, created_at, created_by";
const VM_COLUMNS: &str = "id, pool, address, state, holder_id, holder_name, allocated_at, last_flow_at, error, \
                          hook_output, created_at, updated_at";

pub(super) async fn create_pool(tx: &mut Transaction<'static, Db>, pool: &PoolRecord) -> Result<(), StoreError> {
    let ports = serde_json::to_string(&pool.ports).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(&format!(
        "INSERT INTO vm_pools ({POOL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(&pool.name)
    .bind(&pool.description)
    .bind(ports)
    .bind(i64::from(pool.capacity))
    .bind(&pool.provision_hook)
    .bind(&pool.reset_hook)
    .bind(&pool.destroy_hook)
    .bind(i64::from(pool.hook_timeout_secs))
    .bind(pool.created_at)
    .bind(&pool.created_by)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(|e| match StoreError::from_sqlx(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("pool {:?} exists", pool.name)),
        other => other,
    })
}

pub(super) async fn pools(pool: &Pool, name: Option<&str>) -> Result<Vec<PoolRecord>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {POOL_COLUMNS} FROM vm_pools WHERE ($1 IS NULL OR name = $1) ORDER BY name"
    ))
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(StoreError::from_sqlx)?;
    rows.iter().map(decode_pool).collect()
}

pub(super) async fn add_vms(
    tx: &mut Transaction<'static, Db>,
    vms: &[VmRecord],
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    for vm in vms {
        sqlx::query(&format!(
            "INSERT INTO vms ({VM_COLUMNS}) VALUES ($1, $2, $3, $4, NULL, NULL, NULL, NULL, NULL, NULL, $5, $6)"
        ))
        .bind(&vm.id)
        .bind(&vm.pool)
        .bind(&vm.address)
        .bind(vm.state.as_str())
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| match StoreError::from_sqlx(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("VM {:?} exists", vm.id)),
            StoreError::NotFound => StoreError::NotFound,
            other => other,
        })?;
        event(tx, now, vm, actor, "added", None, &vm.address).await?;
    }
    Ok(())
}

pub(super) async fn vms(
    pool: &Pool,
    pool_name: Option<&str>,
    state: Option<VmState>,
    holder: Option<&str>,
) -> Result<Vec<VmRecord>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {VM_COLUMNS} FROM vms WHERE ($1 IS NULL OR pool = $1) AND ($2 IS NULL OR state = $2) \
         AND ($3 IS NULL OR holder_name = $3) ORDER BY pool, id"
    ))
    .bind(pool_name)
    .bind(state.map(VmState::as_str))
    .bind(holder)
    .fetch_all(pool)
    .await
    .map_err(StoreError::from_sqlx)?;
    rows.iter().map(decode_vm).collect()
}

pub(super) async fn vm(executor: &Pool, id: &str) -> Result<Option<VmRecord>, StoreError> {
    let row = sqlx::query(&format!("SELECT {VM_COLUMNS} FROM vms WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode_vm).transpose()
}

/// The VM, locked against other writers until the transaction ends.
async fn vm_in(tx: &mut Transaction<'static, Db>, id: &str) -> Result<Option<VmRecord>, StoreError> {
    let lock = dialect::LOCK_ROW;
    let row = sqlx::query(&format!("SELECT {VM_COLUMNS} FROM vms WHERE id = $1{lock}"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode_vm).transpose()
}

pub(super) async fn allocate(
    tx: &mut Transaction<'static, Db>,
    request: &AllocationRequest,
    now: i64,
) -> Result<VmRecord, StoreError> {
    dialect::serialize(tx, &format!("vm-holder:{}:{}", request.pool, request.user_id)).await?;
    if !request.allow_second {
        let held: Option<String> = sqlx::query_scalar("SELECT id FROM vms WHERE pool = $1 AND holder_id = $2 LIMIT 1")
            .bind(&request.pool)
            .bind(&request.user_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        if let Some(held) = held {
            return Err(StoreError::Conflict(format!(
                "{} already holds {held} in pool {}",
                request.username, request.pool
            )));
        }
    }
    let set = "state = 'allocated', holder_id = $1, holder_name = $2, allocated_at = $3, updated_at = $3, \
               last_flow_at = NULL, error = NULL";
    let id: Option<String> = match &request.vm_id {
        Some(vm_id) => sqlx::query_scalar(&format!(
            "UPDATE vms SET {set} WHERE id = $4 AND pool = $5 AND state = 'free' RETURNING id"
        ))
        .bind(&request.user_id)
        .bind(&request.username)
        .bind(now)
        .bind(vm_id)
        .bind(&request.pool)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?,
        // Concurrent allocations skip each other's candidate rather than wait for it and then
        // find it taken.
        None => sqlx::query_scalar(&format!(
            "UPDATE vms SET {set} WHERE id = (SELECT id FROM vms WHERE pool = $4 AND state = 'free' ORDER BY id \
             LIMIT 1{skip}) AND state = 'free' RETURNING id",
            skip = dialect::LOCK_ROW_SKIP_LOCKED
        ))
        .bind(&request.user_id)
        .bind(&request.username)
        .bind(now)
        .bind(&request.pool)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?,
    };
    let Some(id) = id else {
        return Err(match &request.vm_id {
            Some(vm_id) => match vm_in(tx, vm_id).await? {
                Some(vm) if vm.pool != request.pool => {
                    StoreError::Conflict(format!("VM {vm_id} is in pool {}, not {}", vm.pool, request.pool))
                }
                Some(vm) => StoreError::Conflict(format!("VM {vm_id} is {}, not free", vm.state.as_str())),
                None => StoreError::NotFound,
            },
            None => StoreError::Conflict(format!("no free VM in pool {}", request.pool)),
        });
    };
    let vm = vm_in(tx, &id).await?.ok_or(StoreError::NotFound)?;
    event(tx, now, &vm, &request.actor, "allocated", Some(&request.username), "").await?;
    Ok(vm)
}

pub(super) async fn change(
    tx: &mut Transaction<'static, Db>,
    change: &VmChange,
    now: i64,
) -> Result<VmRecord, StoreError> {
    let current = vm_in(tx, &change.vm_id).await?.ok_or(StoreError::NotFound)?;
    if !change.from.contains(&current.state) {
        return Err(StoreError::Conflict(format!(
            "VM {} is {}: cannot {}",
            current.id,
            current.state.as_str(),
            change.action
        )));
    }
    guard_holds(&current, change)?;
    let keep_holder = change.to == VmState::Allocated;
    sqlx::query(
        "UPDATE vms SET state = $1, holder_id = CASE WHEN $2 THEN holder_id END, \
         holder_name = CASE WHEN $3 THEN holder_name END, allocated_at = CASE WHEN $4 THEN allocated_at END, \
         error = $5, hook_output = COALESCE($6, hook_output), updated_at = $7 WHERE id = $8 AND state = $9",
    )
    .bind(change.to.as_str())
    .bind(keep_holder)
    .bind(keep_holder)
    .bind(keep_holder)
    .bind(&change.error)
    .bind(&change.hook_output)
    .bind(now)
    .bind(&change.vm_id)
    .bind(current.state.as_str())
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    let updated = vm_in(tx, &change.vm_id).await?.ok_or(StoreError::NotFound)?;
    let detail = change.error.clone().unwrap_or_else(|| change.detail.clone());
    event(
        tx,
        now,
        &updated,
        &change.actor,
        &change.action,
        current.holder_name.as_deref(),
        &detail,
    )
    .await?;
    Ok(updated)
}

/// Checks `change.only_if` against the VM as it is inside the change's transaction.
fn guard_holds(current: &VmRecord, change: &VmChange) -> Result<(), StoreError> {
    let guard = &change.only_if;
    if let Some(holder) = &guard.holder_id
        && current.holder_id.as_ref() != Some(holder)
    {
        return Err(StoreError::Conflict(format!(
            "VM {} has changed hands (now held by {}): cannot {}",
            current.id,
            current.holder_name.as_deref().unwrap_or("nobody"),
            change.action
        )));
    }
    if let Some(cutoff) = guard.idle_before {
        let last_use = current.last_flow_at.or(current.allocated_at).unwrap_or(0);
        if last_use >= cutoff {
            return Err(StoreError::Conflict(format!(
                "VM {} has been used since the idle cutoff: cannot {}",
                current.id, change.action
            )));
        }
    }
    if let Some(seen) = guard.updated_at
        && current.updated_at != seen
    {
        return Err(StoreError::Conflict(format!(
            "VM {} changed since it was read: cannot {}",
            current.id, change.action
        )));
    }
    Ok(())
}

pub(super) async fn reassign(
    tx: &mut Transaction<'static, Db>,
    vm_id: &str,
    user_id: &str,
    username: &str,
    actor: &str,
    now: i64,
) -> Result<VmRecord, StoreError> {
    let current = vm_in(tx, vm_id).await?.ok_or(StoreError::NotFound)?;
    if current.state != VmState::Allocated {
        return Err(StoreError::Conflict(format!(
            "VM {vm_id} is {}, not allocated",
            current.state.as_str()
        )));
    }
    dialect::serialize(tx, &format!("vm-holder:{}:{user_id}", current.pool)).await?;
    let held: Option<String> = sqlx::query_scalar("SELECT id FROM vms WHERE pool = $1 AND holder_id = $2 LIMIT 1")
        .bind(&current.pool)
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    if let Some(held) = held {
        return Err(StoreError::Conflict(format!(
            "{username} already holds {held} in pool {}",
            current.pool
        )));
    }
    sqlx::query(
        "UPDATE vms SET holder_id = $1, holder_name = $2, allocated_at = $3, last_flow_at = NULL, updated_at = $4 \
         WHERE id = $5 AND state = 'allocated'",
    )
    .bind(user_id)
    .bind(username)
    .bind(now)
    .bind(now)
    .bind(vm_id)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    let updated = vm_in(tx, vm_id).await?.ok_or(StoreError::NotFound)?;
    let from = current.holder_name.unwrap_or_default();
    event(
        tx,
        now,
        &updated,
        actor,
        "reassigned",
        Some(username),
        &format!("from {from}"),
    )
    .await?;
    Ok(updated)
}

pub(super) async fn held(pool: &Pool, user_id: &str, pool_name: &str) -> Result<Option<VmRecord>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {VM_COLUMNS} FROM vms WHERE holder_id = $1 AND pool = $2 AND state = 'allocated' \
         ORDER BY allocated_at, id LIMIT 1"
    ))
    .bind(user_id)
    .bind(pool_name)
    .fetch_optional(pool)
    .await
    .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode_vm).transpose()
}

pub(super) async fn touch_flow(tx: &mut Transaction<'static, Db>, vm_id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE vms SET last_flow_at = $1 WHERE id = $2 AND (last_flow_at IS NULL OR last_flow_at < $1)")
        .bind(now)
        .bind(vm_id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}

pub(super) async fn counts(pool: &Pool) -> Result<Vec<PoolCounts>, StoreError> {
    let rows = sqlx::query(
        "SELECT p.name, p.capacity, \
         SUM(CASE WHEN v.state = 'provisioning' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN v.state = 'free' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN v.state = 'allocated' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN v.state = 'maintenance' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN v.state = 'retired' THEN 1 ELSE 0 END) \
         FROM vm_pools p LEFT JOIN vms v ON v.pool = p.name GROUP BY p.name, p.capacity ORDER BY p.name",
    )
    .fetch_all(pool)
    .await
    .map_err(StoreError::from_sqlx)?;
    rows.iter()
        .map(|row| {
            let n = |i: usize| -> Result<u32, StoreError> {
                let v: Option<i64> = row.try_get(i).map_err(StoreError::from_sqlx)?;
                decode_int(v.unwrap_or(0), "count")
            };
            Ok(PoolCounts {
                pool: row.try_get(0).map_err(StoreError::from_sqlx)?,
                capacity: n(1)?,
                provisioning: n(2)?,
                free: n(3)?,
                allocated: n(4)?,
                maintenance: n(5)?,
                retired: n(6)?,
            })
        })
        .collect()
}

pub(super) async fn events(pool: &Pool, pool_name: Option<&str>, since: i64) -> Result<Vec<VmEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at, vm_id, pool, actor, action, user_name, detail FROM vm_events \
         WHERE ($1 IS NULL OR pool = $1) AND at >= $2 ORDER BY seq",
    )
    .bind(pool_name)
    .bind(since)
    .fetch_all(pool)
    .await
    .map_err(StoreError::from_sqlx)?;
    rows.iter()
        .map(|row| {
            Ok(VmEvent {
                seq: row.try_get(0).map_err(StoreError::from_sqlx)?,
                at: row.try_get(1).map_err(StoreError::from_sqlx)?,
                vm_id: row.try_get(2).map_err(StoreError::from_sqlx)?,
                pool: row.try_get(3).map_err(StoreError::from_sqlx)?,
                actor: row.try_get(4).map_err(StoreError::from_sqlx)?,
                action: row.try_get(5).map_err(StoreError::from_sqlx)?,
                user_name: row.try_get(6).map_err(StoreError::from_sqlx)?,
                detail: row.try_get(7).map_err(StoreError::from_sqlx)?,
            })
        })
        .collect()
}

async fn event(
    tx: &mut Transaction<'static, Db>,
    now: i64,
    vm: &VmRecord,
    actor: &str,
    action: &str,
    user: Option<&str>,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO vm_events (at, vm_id, pool, actor, action, user_name, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now)
    .bind(&vm.id)
    .bind(&vm.pool)
    .bind(actor)
    .bind(action)
    .bind(user)
    .bind(detail)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(StoreError::from_sqlx)
}

fn decode_pool(row: &DbRow) -> Result<PoolRecord, StoreError> {
    let get = |e| StoreError::from_sqlx(e);
    let ports: String = row.try_get("ports").map_err(get)?;
    Ok(PoolRecord {
        name: row.try_get("name").map_err(get)?,
        description: row.try_get("description").map_err(get)?,
        ports: serde_json::from_str(&ports).map_err(|_| StoreError::corrupt("vm_pools.ports"))?,
        capacity: decode_int(row.try_get("capacity").map_err(get)?, "capacity")?,
        provision_hook: row.try_get("provision_hook").map_err(get)?,
        reset_hook: row.try_get("reset_hook").map_err(get)?,
        destroy_hook: row.try_get("destroy_hook").map_err(get)?,
        hook_timeout_secs: decode_int(row.try_get("hook_timeout_secs").map_err(get)?, "hook_timeout_secs")?,
        created_at: row.try_get("created_at").map_err(get)?,
        created_by: row.try_get("created_by").map_err(get)?,
    })
}

fn decode_vm(row: &DbRow) -> Result<VmRecord, StoreError> {
    let get = |e| StoreError::from_sqlx(e);
    let state: String = row.try_get("state").map_err(get)?;
    Ok(VmRecord {
        id: row.try_get("id").map_err(get)?,
        pool: row.try_get("pool").map_err(get)?,
        address: row.try_get("address").map_err(get)?,
        state: VmState::parse(&state).ok_or_else(|| StoreError::corrupt("vms.state"))?,
        holder_id: row.try_get("holder_id").map_err(get)?,
        holder_name: row.try_get("holder_name").map_err(get)?,
        allocated_at: row.try_get("allocated_at").map_err(get)?,
        last_flow_at: row.try_get("last_flow_at").map_err(get)?,
        error: row.try_get("error").map_err(get)?,
        hook_output: row.try_get("hook_output").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        updated_at: row.try_get("updated_at").map_err(get)?,
    })
}
