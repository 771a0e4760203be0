//! Pool hooks run for VMs. A VM is `provisioning` for as long as a hook may run for it, so it is
//! never offered to anyone meanwhile; at most [`HOOKS_IN_FLIGHT`] hooks run at once in one
//! provisioner, whatever asked for them; a hook runs only if its VM still waits for it when a
//! slot frees up; and hooks that a stopped provisioner left unfinished are failed at the next
//! start, once they would have timed out.

use super::hooks::{self, HookRun};
use super::{Provisioner, ServiceError};
use rampart_core::audit::Activity;
use rampart_store::{PoolRecord, StoreError, VmChange, VmGuard, VmRecord, VmState};
use std::collections::HashMap;
use std::time::Duration;

/// Hooks running at once per provisioner.
pub(super) const HOOKS_IN_FLIGHT: usize = 8;
/// The error left on a VM whose hook a provisioner stop cut short.
const INTERRUPTED: &str = "the provisioner stopped while a hook was running";
/// Allowed beyond a pool's hook time limit before a hook counts as cut short: the pipe grace,
/// killing the hook and recording its outcome.
const RECOVERY_SLACK_SECS: i64 = 30;
/// Wait before asking the store again after it failed during recovery.
const RECOVERY_RETRY: Duration = Duration::from_secs(60);
/// Who hooks' changes are recorded as.
const SERVICE_ACTOR: &str = "provisioner";

/// VMs found `provisioning` when the provisioner started: their hooks belong to a provisioner
/// that stopped (or to another one sharing the store), to be failed once they would have timed
/// out, unless they finish first.
#[derive(Debug, Default)]
pub struct InterruptedHooks {
    /// Each VM as found, and when its hook would have timed out (unix seconds).
    waiting: Vec<(VmRecord, i64)>,
}

impl InterruptedHooks {
    /// How many VMs are still waited for.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

impl Provisioner {
    /// Every VM `provisioning` now, with when its hook would time out. Call it before serving
    /// anything: then none of these hooks is this provisioner's.
    pub async fn interrupted_hooks(&self) -> Result<InterruptedHooks, ServiceError> {
        let timeouts: HashMap<String, i64> = self
            .store
            .pools(None)
            .await?
            .into_iter()
            .map(|p| (p.name, i64::from(p.hook_timeout_secs)))
            .collect();
        let waiting = self
            .store
            .vms(None, Some(VmState::Provisioning), None)
            .await?
            .into_iter()
            .map(|vm| {
                // Pools cannot be deleted; the longest limit is the safe guess should one be missing.
                let limit = timeouts.get(&vm.pool).copied().unwrap_or(3600);
                let deadline = vm.updated_at.saturating_add(limit).saturating_add(RECOVERY_SLACK_SECS);
                (vm, deadline)
            })
            .collect();
        Ok(InterruptedHooks { waiting })
    }

    /// Puts in maintenance, with the error "the provisioner stopped while a hook was running",
    /// each VM of `hooks` whose hook would have timed out by `now` and that has not changed
    /// since it was found; forgets those that have. Returns when the next remaining one would
    /// time out, if any remains.
    pub async fn fail_interrupted_hooks(
        &self,
        hooks: &mut InterruptedHooks,
        now: i64,
    ) -> Result<Option<i64>, ServiceError> {
        let mut remaining = Vec::new();
        for (vm, deadline) in std::mem::take(&mut hooks.waiting) {
            if deadline > now {
                remaining.push((vm, deadline));
                continue;
            }
            let change = VmChange {
                vm_id: vm.id.clone(),
                from: vec![VmState::Provisioning],
                to: VmState::Maintenance,
                actor: SERVICE_ACTOR.into(),
                action: "hook_interrupted".into(),
                detail: String::new(),
                error: Some(INTERRUPTED.into()),
                hook_output: None,
                only_if: VmGuard {
                    updated_at: Some(vm.updated_at),
                    ..VmGuard::default()
                },
            };
            match self.store.change_vm(&change, now).await {
                Ok(updated) => {
                    tracing::warn!(target: "rampart::provisioner", vm = %vm.id, pool = %vm.pool, error = INTERRUPTED, "VM in maintenance");
                    self.vm_audit(
                        SERVICE_ACTOR,
                        Activity::OTHER,
                        "hook_interrupted",
                        &updated,
                        None,
                        INTERRUPTED,
                    );
                }
                // Its hook finished after all, or someone changed it: nothing to recover.
                Err(StoreError::Conflict(_) | StoreError::NotFound) => {}
                Err(e) => {
                    remaining.push((vm, deadline));
                    hooks.waiting.extend(remaining);
                    return Err(e.into());
                }
            }
        }
        hooks.waiting = remaining;
        Ok(hooks.waiting.iter().map(|(_, deadline)| *deadline).min())
    }

    /// [`Provisioner::fail_interrupted_hooks`] until none of `hooks` is left, sleeping until
    /// the next would time out; a store failure is retried a minute later.
    pub async fn recover_interrupted_hooks(&self, mut hooks: InterruptedHooks) {
        loop {
            let wait = match self.fail_interrupted_hooks(&mut hooks, self.now()).await {
                Ok(None) => return,
                Ok(Some(deadline)) => {
                    Duration::from_secs(u64::try_from(deadline.saturating_sub(self.now())).unwrap_or(0).max(1))
                }
                Err(e) => {
                    tracing::warn!(target: "rampart::provisioner", error = %e, "cannot check for VM hooks cut short; retrying");
                    RECOVERY_RETRY
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Runs `pool`'s `kind` hook for `vm` in the background once a slot is free; then the VM
    /// (`provisioning` meanwhile) is `free`, or in maintenance with the error.
    pub(super) fn spawn_hook(&self, pool: PoolRecord, vm: VmRecord, kind: &'static str, hook: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let Some(run) = this.run_hook(&pool, &vm, kind, &hook).await else {
                return;
            };
            let done = Done {
                state: VmState::Free,
                action: &format!("{kind}_done"),
                activity: Activity::OTHER,
                detail: "",
            };
            if let Err(e) = this.leave_provisioning(SERVICE_ACTOR, &vm.id, run, done).await {
                tracing::error!(target: "rampart::provisioner", vm = %vm.id, hook = kind, error = %e, "cannot record a hook's outcome");
            }
        });
    }

    /// Runs the destroy hook for `vm` (already moved to `provisioning` by `actor`), then
    /// retires it; a failed hook leaves it in maintenance with the error, and is a conflict.
    pub(super) async fn destroy(
        &self,
        actor: &str,
        pool: &PoolRecord,
        vm: &VmRecord,
        hook: &str,
        reason: &str,
    ) -> Result<VmRecord, ServiceError> {
        let Some(run) = self.run_hook(pool, vm, "destroy", hook).await else {
            return Err(ServiceError::Conflict(format!(
                "VM {} changed while its destroy hook waited to run: not retired",
                vm.id
            )));
        };
        let done = Done {
            state: VmState::Retired,
            action: "retired",
            activity: Activity::REMOVE,
            detail: reason,
        };
        match self.leave_provisioning(actor, &vm.id, run, done).await? {
            (retired, None) => Ok(retired),
            (_, Some(why)) => Err(ServiceError::Conflict(format!("VM {} was not retired: {why}", vm.id))),
        }
    }

    /// Waits for a hook slot, claims `vm` (still `provisioning`, or the hook does not run),
    /// and runs the hook with the VM's facts in `RAMPART_*` variables.
    async fn run_hook(&self, pool: &PoolRecord, vm: &VmRecord, kind: &str, hook: &str) -> Option<HookRun> {
        // The semaphore is never closed, so this waits for a slot and never fails.
        let _slot = self.hook_slots.acquire().await.ok()?;
        // Also marks when the hook started: start-up recovery counts its time limit from here,
        // not from when it was queued.
        let claim = VmChange {
            vm_id: vm.id.clone(),
            from: vec![VmState::Provisioning],
            to: VmState::Provisioning,
            actor: SERVICE_ACTOR.into(),
            action: format!("{kind}_started"),
            detail: String::new(),
            error: None,
            hook_output: None,
            only_if: VmGuard::default(),
        };
        if let Err(e) = self.store.change_vm(&claim, self.now()).await {
            tracing::warn!(target: "rampart::provisioner", vm = %vm.id, hook = kind, error = %e, "VM hook not run: the VM no longer waits for it");
            return None;
        }
        let run = hooks::run(
            hook,
            kind,
            &[
                ("RAMPART_VM_ID", &vm.id),
                ("RAMPART_VM_ADDRESS", &vm.address),
                ("RAMPART_POOL", &pool.name),
                ("RAMPART_HOOK", kind),
            ],
            Duration::from_secs(u64::from(pool.hook_timeout_secs)),
        )
        .await;
        Some(run)
    }

    /// Records a hook's outcome: `provisioning` → `done.state` on success, → maintenance with
    /// the error on failure (returned too), with the output's tail, an event and an audit record.
    async fn leave_provisioning(
        &self,
        actor: &str,
        vm_id: &str,
        run: HookRun,
        done: Done<'_>,
    ) -> Result<(VmRecord, Option<String>), ServiceError> {
        let (to, action, activity, detail) = match &run.failure {
            None => (done.state, done.action, done.activity, done.detail),
            Some(why) => (VmState::Maintenance, "hook_failed", Activity::OTHER, why.as_str()),
        };
        let change = VmChange {
            vm_id: vm_id.to_owned(),
            from: vec![VmState::Provisioning],
            to,
            actor: actor.to_owned(),
            action: action.to_owned(),
            detail: detail.to_owned(),
            error: run.failure.clone(),
            hook_output: Some(run.output),
            only_if: VmGuard::default(),
        };
        let updated = self.store.change_vm(&change, self.now()).await?;
        if let Some(why) = &run.failure {
            tracing::warn!(target: "rampart::provisioner", vm = %vm_id, error = %why, "VM hook failed; VM in maintenance");
        }
        self.vm_audit(actor, activity, action, &updated, None, detail);
        Ok((updated, run.failure))
    }
}

/// Where a VM goes when its hook succeeds, and how that is recorded.
struct Done<'a> {
    state: VmState,
    action: &'a str,
    activity: Activity,
    detail: &'a str,
}
