//! VM hooks through the service, in process with a real SQLite store: a VM whose destroy or
//! reset hook is running is offered to nobody; a failed destroy hook leaves it in maintenance
//! with the error; hooks a stopped provisioner cut short are failed at the next start once they
//! would have timed out (and only those); reclaim refuses `days = 0` and releases idle VMs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_core::clock::Clock;
use rampart_directory::LocalDirectory;
use rampart_provisioner::vm_api::{AddVms, AllocateRequest, NewVm, PoolRequest};
use rampart_provisioner::{Provisioner, ProvisionerSettings, ServiceError};
use rampart_store::{
    AllocationRequest, KeyRing, PoolRecord, SqliteStore, Store, UserRecord, VmChange, VmGuard, VmRecord, VmState,
};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400;

async fn provisioner(dir: &Path) -> Provisioner {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("state")).await.unwrap());
    let keys = Arc::new(KeyRing::load_or_create(&dir.join("master.key")).unwrap());
    let directory = Arc::new(LocalDirectory::new(store.clone()).unwrap());
    for (id, name) in [("u-alice", "alice"), ("u-bob", "bob")] {
        store
            .upsert_user(&UserRecord {
                id: id.into(),
                username: name.into(),
                display_name: name.into(),
                password_hash: None,
                enabled: true,
                groups: vec![],
                created_at: 0,
            })
            .await
            .unwrap();
    }
    Provisioner::new(store, keys, directory, ProvisionerSettings::default(), Clock::system())
}

fn pool(name: &str) -> PoolRequest {
    PoolRequest {
        name: name.into(),
        description: String::new(),
        ports: vec![3389],
        capacity: 10,
        provision_hook: None,
        reset_hook: None,
        destroy_hook: None,
        hook_timeout_secs: Some(30),
    }
}

fn one_vm(id: &str) -> AddVms {
    AddVms {
        vms: vec![NewVm {
            id: id.into(),
            address: "10.9.0.1".into(),
        }],
    }
}

/// Pool `desktops` with `hooks` (set on `pool("desktops")`) and one VM, `vm1`, in it.
async fn pool_with_one_vm(app: &Provisioner, hooks: PoolRequest) {
    app.create_pool("desk", &hooks).await.unwrap();
    app.add_vms("desk", "desktops", &one_vm("vm1")).await.unwrap();
}

fn allocation(username: &str, vm: Option<&str>) -> AllocateRequest {
    AllocateRequest {
        username: username.into(),
        vm: vm.map(Into::into),
        allow_second: false,
    }
}

/// A hook that says it started, then waits for `go` to appear.
fn gated_hook(dir: &Path) -> String {
    format!(
        "touch {0}/started; while [ ! -e {0}/go ]; do sleep 0.05; done; echo hook finished",
        dir.display()
    )
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn state(app: &Provisioner, id: &str) -> VmRecord {
    app.store().vm(id).await.unwrap().unwrap()
}

async fn actions(app: &Provisioner, id: &str) -> Vec<String> {
    app.store()
        .vm_events(None, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.vm_id == id)
        .map(|e| e.action)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vm_being_destroyed_is_offered_to_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let app = provisioner(dir.path()).await;
    let destroy_hook = Some(gated_hook(dir.path()));
    pool_with_one_vm(
        &app,
        PoolRequest {
            destroy_hook,
            ..pool("desktops")
        },
    )
    .await;

    let retiring = {
        let app = app.clone();
        tokio::spawn(async move { app.retire("desk", "vm1", "end of lease").await })
    };
    let started = dir.path().join("started");
    wait_for("the destroy hook", async || started.exists()).await;
    assert_eq!(state(&app, "vm1").await.state, VmState::Provisioning);
    let any = app.allocate("desk", "desktops", &allocation("alice", None)).await;
    assert!(
        matches!(&any, Err(ServiceError::Conflict(m)) if m.contains("no free VM")),
        "{any:?}"
    );
    let named = app
        .allocate("desk", "desktops", &allocation("alice", Some("vm1")))
        .await;
    assert!(
        matches!(&named, Err(ServiceError::Conflict(m)) if m.contains("provisioning, not free")),
        "{named:?}"
    );
    let twice = app.retire("desk", "vm1", "again").await;
    assert!(
        matches!(&twice, Err(ServiceError::Conflict(m)) if m.contains("wait until its hook has finished")),
        "{twice:?}"
    );

    std::fs::write(dir.path().join("go"), "").unwrap();
    let retired = retiring.await.unwrap().unwrap();
    assert_eq!(retired.state, "retired");
    assert_eq!(retired.hook_output.as_deref().map(str::trim), Some("hook finished"));
    assert_eq!(
        actions(&app, "vm1").await,
        ["added", "retiring", "destroy_started", "retired"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_destroy_hook_leaves_the_vm_in_maintenance_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let app = provisioner(dir.path()).await;
    let destroy_hook = Some("echo hypervisor busy; exit 4".to_owned());
    pool_with_one_vm(
        &app,
        PoolRequest {
            destroy_hook,
            ..pool("desktops")
        },
    )
    .await;
    let refused = app.retire("desk", "vm1", "").await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "VM vm1 was not retired: destroy hook failed with exit code 4"
    );
    let vm = state(&app, "vm1").await;
    assert_eq!(vm.state, VmState::Maintenance);
    assert_eq!(vm.error.as_deref(), Some("destroy hook failed with exit code 4"));
    assert_eq!(vm.hook_output.as_deref().map(str::trim), Some("hypervisor busy"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vm_being_reset_is_offered_to_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let app = provisioner(dir.path()).await;
    let reset_hook = Some(gated_hook(dir.path()));
    pool_with_one_vm(
        &app,
        PoolRequest {
            reset_hook,
            ..pool("desktops")
        },
    )
    .await;
    app.allocate("desk", "desktops", &allocation("alice", None))
        .await
        .unwrap();
    let released = app.release("desk", "vm1", "left").await.unwrap();
    assert_eq!(released.state, "provisioning");
    let started = dir.path().join("started");
    wait_for("the reset hook", async || started.exists()).await;
    let refused = app.allocate("desk", "desktops", &allocation("bob", None)).await;
    assert!(
        matches!(&refused, Err(ServiceError::Conflict(m)) if m.contains("no free VM")),
        "{refused:?}"
    );
    std::fs::write(dir.path().join("go"), "").unwrap();
    wait_for("the reset to finish", async || {
        state(&app, "vm1").await.state == VmState::Free
    })
    .await;
    assert_eq!(
        app.allocate("desk", "desktops", &allocation("bob", None))
            .await
            .unwrap()
            .id,
        "vm1"
    );
}

fn stuck_vm(id: &str, pool: &str) -> VmRecord {
    VmRecord {
        id: id.into(),
        pool: pool.into(),
        address: "10.9.0.2".into(),
        state: VmState::Provisioning,
        holder_id: None,
        holder_name: None,
        allocated_at: None,
        last_flow_at: None,
        error: None,
        hook_output: None,
        created_at: 0,
        updated_at: 0,
    }
}

#[tokio::test]
async fn hooks_a_stop_cut_short_are_failed_at_the_next_start_once_they_would_have_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let app = provisioner(dir.path()).await;
    let store = app.store().clone();
    let now = 1_700_000_000;
    store
        .create_pool(&PoolRecord {
            name: "desktops".into(),
            description: String::new(),
            ports: vec![3389],
            capacity: 10,
            provision_hook: Some("true".into()),
            reset_hook: None,
            destroy_hook: None,
            hook_timeout_secs: 60,
            created_at: 0,
            created_by: "test".into(),
        })
        .await
        .unwrap();
    // Left by a provisioner that stopped: one long ago, one ten seconds before this start.
    store
        .add_vms(&[stuck_vm("old", "desktops")], "test", now - 1000)
        .await
        .unwrap();
    store
        .add_vms(&[stuck_vm("young", "desktops")], "test", now - 10)
        .await
        .unwrap();

    let mut interrupted = app.interrupted_hooks().await.unwrap();
    assert_eq!(interrupted.len(), 2);
    let next = app.fail_interrupted_hooks(&mut interrupted, now).await.unwrap();
    let old = state(&app, "old").await;
    assert_eq!(old.state, VmState::Maintenance);
    assert_eq!(
        old.error.as_deref(),
        Some("the provisioner stopped while a hook was running")
    );
    assert_eq!(actions(&app, "old").await, ["added", "hook_interrupted"]);
    // The young one's hook might still be running (in another provisioner sharing the store):
    // it is waited for until its time limit (and a margin) has passed.
    assert_eq!(state(&app, "young").await.state, VmState::Provisioning);
    assert!(next.is_some_and(|at| at >= now - 10 + 60), "{next:?}");
    assert_eq!(
        app.fail_interrupted_hooks(&mut interrupted, now + 5).await.unwrap(),
        next,
        "not yet due"
    );

    let mut again = app.interrupted_hooks().await.unwrap();
    assert_eq!(again.len(), 1, "only the young one is still provisioning");
    // It finished after all, before its deadline: it is left alone.
    let finished = VmChange {
        vm_id: "young".into(),
        from: vec![VmState::Provisioning],
        to: VmState::Free,
        actor: "provisioner".into(),
        action: "provision_done".into(),
        detail: String::new(),
        error: None,
        hook_output: None,
        only_if: VmGuard::default(),
    };
    store.change_vm(&finished, now + 20).await.unwrap();
    assert_eq!(
        app.fail_interrupted_hooks(&mut interrupted, now + 1000).await.unwrap(),
        None
    );
    assert!(interrupted.is_empty());
    assert_eq!(app.fail_interrupted_hooks(&mut again, now + 1000).await.unwrap(), None);
    assert_eq!(state(&app, "young").await.state, VmState::Free);
}

#[tokio::test]
async fn reclaim_refuses_zero_days_and_releases_only_idle_vms() {
    let dir = tempfile::tempdir().unwrap();
    let app = provisioner(dir.path()).await;
    let store = app.store().clone();
    app.create_pool("desk", &pool("desktops")).await.unwrap();
    for id in ["vm1", "vm2"] {
        app.add_vms("desk", "desktops", &one_vm(id)).await.unwrap();
    }
    let now = unix_now();
    for (vm, user, name, allocated) in [("vm1", "u-alice", "alice", 40), ("vm2", "u-bob", "bob", 2)] {
        let request = AllocationRequest {
            pool: "desktops".into(),
            user_id: user.into(),
            username: name.into(),
            vm_id: Some(vm.into()),
            allow_second: false,
            actor: "test".into(),
        };
        store.allocate_vm(&request, now - allocated * DAY).await.unwrap();
    }
    for refused in [
        app.idle_vms(0, None, now).await.map(|_| ()),
        app.reclaim("desk", 0, None).await.map(|_| ()),
    ] {
        assert!(
            matches!(&refused, Err(ServiceError::Invalid(m)) if m.contains("days: at least 1")),
            "{refused:?}"
        );
    }
    let report = app.reclaim("desk", 30, None).await.unwrap();
    let released: Vec<&str> = report.released.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(released, ["vm1"]);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(state(&app, "vm2").await.holder_name.as_deref(), Some("bob"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vm_back_from_maintenance_is_reset_before_anyone_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = provisioner(dir.path()).await;
    // Fails the first time (the VM goes to maintenance), succeeds after the "repair".
    let runs = dir.path().join("runs");
    let reset_hook = Some(format!(
        "echo run >> '{runs}'; [ $(wc -l < '{runs}') -ge 2 ] || {{ echo disk locked; exit 5; }}",
        runs = runs.display()
    ));
    pool_with_one_vm(
        &app,
        PoolRequest {
            reset_hook,
            ..pool("desktops")
        },
    )
    .await;
    app.allocate("desk", "desktops", &allocation("alice", None))
        .await
        .unwrap();
    app.release("desk", "vm1", "left").await.unwrap();
    wait_for("the failed reset", async || {
        state(&app, "vm1").await.state == VmState::Maintenance
    })
    .await;
    assert_eq!(
        state(&app, "vm1").await.error.as_deref(),
        Some("reset hook failed with exit code 5")
    );

    // Back in service: through the reset hook again, never straight to the free list.
    let back = app.maintenance("desk", "vm1", true, "disk unlocked").await.unwrap();
    assert_eq!(back.state, "provisioning");
    wait_for("the second reset", async || {
        state(&app, "vm1").await.state == VmState::Free
    })
    .await;
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 2);
}

/// Unix seconds now on the system clock.
fn unix_now() -> i64 {
    Clock::system().now()
}
