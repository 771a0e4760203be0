//! VM pools for the service desk: create pools, add inventory (running each pool's provision
//! hook), allocate to people found in the directory, release (reset hook), reassign, put in
//! maintenance, retire (destroy hook), list and reclaim idle VMs, and the capacity report.
//! Every change is a VM event in the store and an Account Change record on the audit trail; a
//! VM is `provisioning`, never allocatable, while any of its hooks runs (see `vm_hooks`).

use super::{Provisioner, ServiceError};
use crate::vm_api::{
    AddVms, AddVmsResponse, AllocateRequest, CapacityReport, PoolCapacity, PoolDetail, PoolInfo, PoolRequest,
    ReclaimReport, ReclaimSkipped, VmInfo, VmQuery, pool_info, vm_info,
};
use rampart_core::audit::{Activity, Actor, AuditEvent, Class, Status, User};
use rampart_store::{AllocationRequest, PoolRecord, VmChange, VmGuard, VmRecord, VmState};

/// Most VMs added in one request.
pub const MAX_VMS_PER_REQUEST: usize = 1000;
const DAY: i64 = 86_400;

impl Provisioner {
    /// Creates a pool.
    pub async fn create_pool(&self, actor: &str, request: &PoolRequest) -> Result<PoolInfo, ServiceError> {
        let mut problems = Vec::new();
        let name_ok = !request.name.is_empty()
            && request.name.len() <= 64
            && request
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            problems.push(format!(
                "name {:?}: letters, digits, -, _ and . only (at most 64)",
                request.name
            ));
        }
        if request.ports.is_empty() || request.ports.contains(&0) {
            problems.push("ports: at least one port, none 0".into());
        }
        if request.capacity == 0 {
            problems.push("capacity: at least 1".into());
        }
        let timeout = request.hook_timeout_secs.unwrap_or(300);
        if !(1..=3600).contains(&timeout) {
            problems.push("hook_timeout_secs: 1 to 3600".into());
        }
        for (name, hook) in [
            ("provision_hook", &request.provision_hook),
            ("reset_hook", &request.reset_hook),
            ("destroy_hook", &request.destroy_hook),
        ] {
            if hook.as_deref().is_some_and(|h| h.trim().is_empty()) {
                problems.push(format!("{name}: empty"));
            }
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems.join("; ")));
        }
        let pool = PoolRecord {
            name: request.name.clone(),
            description: request.description.clone(),
            ports: request.ports.clone(),
            capacity: request.capacity,
            provision_hook: request.provision_hook.clone(),
            reset_hook: request.reset_hook.clone(),
            destroy_hook: request.destroy_hook.clone(),
            hook_timeout_secs: timeout,
            created_at: self.now(),
            created_by: actor.to_owned(),
        };
        self.store.create_pool(&pool).await?;
        tracing::info!(target: "rampart::provisioner", operator = actor, pool = %pool.name, "VM pool created");
        Ok(pool_info(&pool, None))
    }

    /// Every pool with its numbers.
    pub async fn pools(&self) -> Result<Vec<PoolInfo>, ServiceError> {
        let counts = self.store.pool_counts().await?;
        let pools = self.store.pools(None).await?;
        Ok(pools
            .iter()
            .map(|p| pool_info(p, counts.iter().find(|c| c.pool == p.name)))
            .collect())
    }

    /// One pool with its VMs.
    pub async fn pool_detail(&self, name: &str) -> Result<PoolDetail, ServiceError> {
        let pool = self.pool_record(name).await?;
        let counts = self.store.pool_counts().await?;
        let vms = self.store.vms(Some(name), None, None).await?;
        Ok(PoolDetail {
            pool: pool_info(&pool, counts.iter().find(|c| c.pool == name)),
            vms: vms.into_iter().map(vm_info).collect(),
        })
    }

    async fn pool_record(&self, name: &str) -> Result<PoolRecord, ServiceError> {
        self.store
            .pools(Some(name))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ServiceError::NotFound(format!("no VM pool named {name:?}")))
    }

    /// Adds VMs to a pool, all or none. With a provision hook they start `provisioning` and
    /// the hook runs in the background; without, they are free at once.
    pub async fn add_vms(
        &self,
        actor: &str,
        pool_name: &str,
        request: &AddVms,
    ) -> Result<AddVmsResponse, ServiceError> {
        if request.vms.is_empty() || request.vms.len() > MAX_VMS_PER_REQUEST {
            return Err(ServiceError::Invalid(format!(
                "send 1 to {MAX_VMS_PER_REQUEST} VMs at once ({} sent)",
                request.vms.len()
            )));
        }
        let pool = self.pool_record(pool_name).await?;
        let mut problems = Vec::new();
        for (i, vm) in request.vms.iter().enumerate() {
            if let Some(problem) = vm_problem(&vm.id, &vm.address) {
                problems.push(format!("vms[{i}]: {problem}"));
            }
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems.join("; ")));
        }
        let state = if pool.provision_hook.is_some() {
            VmState::Provisioning
        } else {
            VmState::Free
        };
        let now = self.now();
        let records: Vec<VmRecord> = request
            .vms
            .iter()
            .map(|vm| VmRecord {
                id: vm.id.trim().to_owned(),
                pool: pool.name.clone(),
                address: vm.address.trim().to_owned(),
                state,
                holder_id: None,
                holder_name: None,
                allocated_at: None,
                last_flow_at: None,
                error: None,
                hook_output: None,
                created_at: now,
                updated_at: now,
            })
            .collect();
        self.store.add_vms(&records, actor, now).await?;
        for vm in &records {
            self.vm_audit(actor, Activity::CREATE, "added", vm, None, "");
        }
        tracing::info!(target: "rampart::provisioner", operator = actor, pool = %pool.name, count = records.len(), "VMs added");
        if let Some(hook) = &pool.provision_hook {
            for vm in &records {
                self.spawn_hook(pool.clone(), vm.clone(), "provision", hook.clone());
            }
        }
        Ok(AddVmsResponse {
            added: records.len(),
            provisioning: if state == VmState::Provisioning {
                records.len()
            } else {
                0
            },
        })
    }

    /// VMs matching `query`.
    pub async fn list_vms(&self, query: &VmQuery) -> Result<Vec<VmInfo>, ServiceError> {
        let state = match query.state.as_deref() {
            None => None,
            Some(s) => Some(VmState::parse(s).ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "state {s:?}: one of provisioning, free, allocated, maintenance, retired"
                ))
            })?),
        };
        let user = query.user.as_deref().map(super::normalize).transpose()?;
        let vms = self.store.vms(query.pool.as_deref(), state, user.as_deref()).await?;
        Ok(vms.into_iter().map(vm_info).collect())
    }

    /// Gives a VM of `pool_name` to the person named in the request.
    pub async fn allocate(
        &self,
        actor: &str,
        pool_name: &str,
        request: &AllocateRequest,
    ) -> Result<VmInfo, ServiceError> {
        self.pool_record(pool_name).await?;
        let person = self.directory_person(&request.username).await?;
        let now = self.now();
        let user = self.user_record(&person, now).await?;
        self.store.upsert_user(&user).await?;
        let vm = self
            .store
            .allocate_vm(
                &AllocationRequest {
                    pool: pool_name.to_owned(),
                    user_id: person.stable_id.clone(),
                    username: person.username.clone(),
                    vm_id: request.vm.clone(),
                    allow_second: request.allow_second,
                    actor: actor.to_owned(),
                },
                now,
            )
            .await
            .map_err(|e| match e {
                rampart_store::StoreError::NotFound => {
                    ServiceError::NotFound(format!("no VM {:?}", request.vm.as_deref().unwrap_or("")))
                }
                other => other.into(),
            })?;
        tracing::info!(target: "rampart::provisioner", operator = actor, user = %person.username, vm = %vm.id, "VM allocated");
        self.vm_audit(
            actor,
            Activity::ATTACH,
            "allocated",
            &vm,
            Some((&person.username, &person.stable_id)),
            "",
        );
        Ok(vm_info(vm))
    }

    /// Takes a VM back from its holder; with a reset hook it is `provisioning` (offered to
    /// nobody) until the hook has run.
    pub async fn release(&self, actor: &str, vm_id: &str, reason: &str) -> Result<VmInfo, ServiceError> {
        let vm = self.vm_record(vm_id).await?;
        Ok(vm_info(self.release_if(actor, vm, reason, VmGuard::default()).await?))
    }

    /// Releases `vm` (as read) if it is still allocated and `only_if` holds, in one store
    /// transaction.
    async fn release_if(
        &self,
        actor: &str,
        vm: VmRecord,
        reason: &str,
        only_if: VmGuard,
    ) -> Result<VmRecord, ServiceError> {
        let pool = self.pool_record(&vm.pool).await?;
        let to = if pool.reset_hook.is_some() {
            VmState::Provisioning
        } else {
            VmState::Free
        };
        // Released from the holder it was read with: a reassignment in between is a conflict,
        // not a silent release of the new holder's VM under the old holder's name.
        let only_if = VmGuard {
            holder_id: only_if.holder_id.or_else(|| vm.holder_id.clone()),
            ..only_if
        };
        let change = VmChange {
            vm_id: vm.id.clone(),
            from: vec![VmState::Allocated],
            to,
            actor: actor.to_owned(),
            action: "released".into(),
            detail: reason.to_owned(),
            error: None,
            hook_output: None,
            only_if,
        };
        let updated = self.store.change_vm(&change, self.now()).await?;
        let holder = vm.holder_name.unwrap_or_default();
        self.vm_audit(
            actor,
            Activity::DETACH,
            "released",
            &updated,
            Some((&holder, "")),
            reason,
        );
        if let Some(hook) = pool.reset_hook.clone() {
            self.spawn_hook(pool, updated.clone(), "reset", hook);
        }
        Ok(updated)
    }

    /// Gives an allocated VM to another person.
    pub async fn reassign(&self, actor: &str, vm_id: &str, username: &str) -> Result<VmInfo, ServiceError> {
        self.vm_record(vm_id).await?;
        let person = self.directory_person(username).await?;
        let now = self.now();
        let user = self.user_record(&person, now).await?;
        self.store.upsert_user(&user).await?;
        let vm = self
            .store
            .reassign_vm(vm_id, &person.stable_id, &person.username, actor, now)
            .await?;
        self.vm_audit(
            actor,
            Activity::ATTACH,
            "reassigned",
            &vm,
            Some((&person.username, &person.stable_id)),
            "",
        );
        Ok(vm_info(vm))
    }

    /// Takes a VM out of service (from free, or from maintenance back to free with `done`).
    pub async fn maintenance(
        &self,
        actor: &str,
        vm_id: &str,
        done: bool,
        reason: &str,
    ) -> Result<VmInfo, ServiceError> {
        let vm = if done {
            // Back through the pool's reset hook when it has one: whatever put the VM in
            // maintenance (a failed reset, a repair), it reaches the free list clean.
            let pool = self.pool_record(&self.vm_record(vm_id).await?.pool).await?;
            let reset = pool.reset_hook.clone();
            let to = if reset.is_some() {
                VmState::Provisioning
            } else {
                VmState::Free
            };
            let vm = self
                .change(actor, vm_id, &[VmState::Maintenance], to, "back_in_service", reason)
                .await?;
            if let Some(hook) = reset {
                self.spawn_hook(pool, vm.clone(), "reset", hook);
            }
            vm
        } else {
            self.change(
                actor,
                vm_id,
                &[VmState::Free],
                VmState::Maintenance,
                "maintenance",
                reason,
            )
            .await?
        };
        self.vm_audit(
            actor,
            Activity::OTHER,
            if done { "back in service" } else { "maintenance" },
            &vm,
            None,
            reason,
        );
        Ok(vm_info(vm))
    }

    /// Retires a VM that nobody holds. With a destroy hook it first leaves the free list (it is
    /// `provisioning` while the hook runs), then is retired; a failed hook leaves it in
    /// maintenance with the error.
    pub async fn retire(&self, actor: &str, vm_id: &str, reason: &str) -> Result<VmInfo, ServiceError> {
        let vm = self.vm_record(vm_id).await?;
        match vm.state {
            VmState::Free | VmState::Maintenance => {}
            VmState::Allocated => {
                return Err(ServiceError::Conflict(format!(
                    "VM {vm_id} is allocated: release it first"
                )));
            }
            VmState::Provisioning => {
                return Err(ServiceError::Conflict(format!(
                    "VM {vm_id} is provisioning: wait until its hook has finished"
                )));
            }
            VmState::Retired => return Err(ServiceError::Conflict(format!("VM {vm_id} is already retired"))),
        }
        let pool = self.pool_record(&vm.pool).await?;
        let from = [VmState::Free, VmState::Maintenance];
        let Some(hook) = pool.destroy_hook.clone() else {
            let retired = self
                .change(actor, vm_id, &from, VmState::Retired, "retired", reason)
                .await?;
            self.vm_audit(actor, Activity::REMOVE, "retired", &retired, None, reason);
            return Ok(vm_info(retired));
        };
        // Atomically out of the free list before the hook runs: a VM being destroyed is never
        // allocated.
        let retiring = self
            .change(actor, vm_id, &from, VmState::Provisioning, "retiring", reason)
            .await?;
        self.vm_audit(actor, Activity::OTHER, "retiring", &retiring, None, reason);
        // Its own task, so that a caller who stops waiting abandons neither the hook nor the
        // recording of its outcome.
        let this = self.clone();
        let (actor, reason) = (actor.to_owned(), reason.to_owned());
        let destroy = tokio::spawn(async move { this.destroy(&actor, &pool, &retiring, &hook, &reason).await });
        let retired = destroy.await.map_err(|e| {
            ServiceError::Unavailable(format!("the destroy hook of VM {vm_id} did not complete: {e}"))
        })??;
        Ok(vm_info(retired))
    }

    /// Allocated VMs whose holder has made no connection to them for `days` days (counting from
    /// the allocation when there was none), oldest use first.
    pub async fn idle_vms(&self, days: u32, pool: Option<&str>, now: i64) -> Result<Vec<VmInfo>, ServiceError> {
        let (_, idle) = self.idle_records(days, pool, now).await?;
        Ok(idle.into_iter().map(vm_info).collect())
    }

    /// Releases the idle VMs [`Provisioner::idle_vms`] lists, each only if, at that moment and
    /// in one store transaction, the same person still holds it and it is still idle past the
    /// cutoff. One VM that cannot be released does not stop the others: the report says why.
    pub async fn reclaim(&self, actor: &str, days: u32, pool: Option<&str>) -> Result<ReclaimReport, ServiceError> {
        let (cutoff, idle) = self.idle_records(days, pool, self.now()).await?;
        let reason = format!("reclaimed: idle {days} days");
        let mut report = ReclaimReport {
            released: Vec::new(),
            skipped: Vec::new(),
        };
        for vm in idle {
            let (vm_id, holder) = (vm.id.clone(), vm.holder_name.clone());
            let only_if = VmGuard {
                holder_id: vm.holder_id.clone(),
                idle_before: Some(cutoff),
                updated_at: None,
            };
            match self.release_if(actor, vm, &reason, only_if).await {
                Ok(released) => report.released.push(vm_info(released)),
                Err(e) => report.skipped.push(ReclaimSkipped {
                    vm: vm_id,
                    holder,
                    reason: e.to_string(),
                }),
            }
        }
        tracing::info!(target: "rampart::provisioner", operator = actor, days, released = report.released.len(), skipped = report.skipped.len(), "idle VMs reclaimed");
        Ok(report)
    }

    /// The idle cutoff for `days` and the allocated VMs idle past it, oldest use first.
    async fn idle_records(
        &self,
        days: u32,
        pool: Option<&str>,
        now: i64,
    ) -> Result<(i64, Vec<VmRecord>), ServiceError> {
        if days < 1 {
            return Err(ServiceError::Invalid(
                "days: at least 1 (a VM used today is not idle)".into(),
            ));
        }
        let cutoff = now.saturating_sub(i64::from(days).saturating_mul(DAY));
        let last_use = |vm: &VmRecord| vm.last_flow_at.or(vm.allocated_at).unwrap_or(0);
        let mut idle: Vec<VmRecord> = self
            .store
            .vms(pool, Some(VmState::Allocated), None)
            .await?
            .into_iter()
            .filter(|vm| last_use(vm) < cutoff)
            .collect();
        idle.sort_by_key(last_use);
        Ok((cutoff, idle))
    }

    /// Per pool: numbers, allocations per day, and days until it runs out at the last week's
    /// rate.
    pub async fn capacity_report(&self, now: i64) -> Result<CapacityReport, ServiceError> {
        let pools = self.pools().await?;
        let events = self.store.vm_events(None, now - 14 * DAY).await?;
        let today = now.div_euclid(DAY);
        let mut report = Vec::new();
        for pool in pools {
            let mut per_day = [0u32; 14];
            for e in events.iter().filter(|e| e.pool == pool.name && e.action == "allocated") {
                let age = today - e.at.div_euclid(DAY);
                if let Some(slot) = usize::try_from(13 - age).ok().and_then(|i| per_day.get_mut(i)) {
                    *slot += 1;
                }
            }
            let rate = f64::from(per_day[7..].iter().sum::<u32>()) / 7.0;
            let days_until_full = (rate > 0.0).then(|| f64::from(pool.free) / rate);
            let allocations_per_day = per_day
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let day = (today - 13 + i64::try_from(i).unwrap_or(0)) * DAY;
                    let date = jiff::Timestamp::from_second(day)
                        .map(|t| t.strftime("%Y-%m-%d").to_string())
                        .unwrap_or_default();
                    (date, *n)
                })
                .collect();
            report.push(PoolCapacity {
                pool,
                allocations_per_day,
                rate_per_day: rate,
                days_until_full,
            });
        }
        Ok(CapacityReport {
            generated_at: now,
            pools: report,
        })
    }

    async fn vm_record(&self, vm_id: &str) -> Result<VmRecord, ServiceError> {
        self.store
            .vm(vm_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no VM {vm_id:?}")))
    }

    async fn change(
        &self,
        actor: &str,
        vm_id: &str,
        from: &[VmState],
        to: VmState,
        action: &str,
        reason: &str,
    ) -> Result<VmRecord, ServiceError> {
        self.vm_record(vm_id).await?;
        let change = VmChange {
            vm_id: vm_id.to_owned(),
            from: from.to_vec(),
            to,
            actor: actor.to_owned(),
            action: action.to_owned(),
            detail: reason.to_owned(),
            error: None,
            hook_output: None,
            only_if: VmGuard::default(),
        };
        Ok(self.store.change_vm(&change, self.now()).await?)
    }

    pub(super) fn vm_audit(
        &self,
        actor: &str,
        activity: Activity,
        action: &str,
        vm: &VmRecord,
        user: Option<(&str, &str)>,
        detail: &str,
    ) {
        let mut event = AuditEvent::new(
            Class::AccountChange,
            activity,
            self.now_ms(),
            Status::Success,
            &format!("VM {action}"),
        )
        .actor(Actor::operator(actor))
        .resource("vm", Some(&vm.id), Some(&vm.pool));
        if let Some((name, uid)) = user {
            event = event.user(if uid.is_empty() {
                User::named(name)
            } else {
                User::with_uid(name, uid)
            });
        }
        if !detail.is_empty() {
            event = event.detail(detail);
        }
        self.audit.record(event);
    }
}

fn vm_problem(id: &str, address: &str) -> Option<String> {
    let id = id.trim();
    let address = address.trim();
    if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Some(format!("id {id:?}: 1 to 128 characters, no spaces"));
    }
    if rampart_core::policy::Target::check_host(address).is_err() {
        return Some(format!("address {address:?} is not a host name or IP address"));
    }
    None
}
