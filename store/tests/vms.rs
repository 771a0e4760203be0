//! VM pools and allocations against a real SQLite file: inventory with all-or-nothing adds,
//! allocation rules (one holder per VM, one VM per person per pool unless asked), state
//! changes, reassignment, counts and events — and 50 concurrent requests for 20 free VMs, in
//! one process and in two sharing the file, of which exactly 20 win.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use rampart_store::{
    AllocationRequest, PoolRecord, Store, StoreError, UserRecord, VmChange, VmGuard, VmRecord, VmState,
};

fn pool(name: &str) -> PoolRecord {
    PoolRecord {
        name: name.into(),
        description: "Remote desktops".into(),
        ports: vec![3389],
        capacity: 50,
        provision_hook: None,
        reset_hook: None,
        destroy_hook: None,
        hook_timeout_secs: 60,
        created_at: NOW,
        created_by: "test".into(),
    }
}

fn vm(id: &str, pool: &str) -> VmRecord {
    VmRecord {
        id: id.into(),
        pool: pool.into(),
        address: format!("{id}.vdi.example"),
        state: VmState::Free,
        holder_id: None,
        holder_name: None,
        allocated_at: None,
        last_flow_at: None,
        error: None,
        hook_output: None,
        created_at: NOW,
        updated_at: NOW,
    }
}

async fn person(store: &dyn Store, i: usize) -> (String, String) {
    let (id, name) = (format!("u{i}"), format!("user{i}"));
    store
        .upsert_user(&UserRecord {
            id: id.clone(),
            username: name.clone(),
            display_name: name.clone(),
            password_hash: None,
            enabled: true,
            groups: vec![],
            created_at: NOW,
        })
        .await
        .unwrap();
    (id, name)
}

fn request(pool: &str, who: &(String, String), vm_id: Option<&str>) -> AllocationRequest {
    AllocationRequest {
        pool: pool.into(),
        user_id: who.0.clone(),
        username: who.1.clone(),
        vm_id: vm_id.map(Into::into),
        allow_second: false,
        actor: "desk".into(),
    }
}

async fn inventory_allocation_rules_and_changes(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    store.create_pool(&pool("desktops")).await.unwrap();
    assert!(matches!(
        store.create_pool(&pool("desktops")).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .add_vms(&[vm("vm1", "desktops"), vm("vm2", "desktops")], "desk", NOW)
        .await
        .unwrap();
    // A duplicate in a batch adds nothing of it.
    let err = store
        .add_vms(&[vm("vm3", "desktops"), vm("vm1", "desktops")], "desk", NOW)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("vm1"), "{err}");
    assert!(store.vm("vm3").await.unwrap().is_none());
    assert!(matches!(
        store.add_vms(&[vm("x", "nosuch")], "desk", NOW).await,
        Err(StoreError::NotFound)
    ));

    let alice = person(&*store, 1).await;
    let bob = person(&*store, 2).await;
    let got = store
        .allocate_vm(&request("desktops", &alice, Some("vm2")), NOW)
        .await
        .unwrap();
    assert_eq!(
        (got.id.as_str(), got.state, got.holder_name.as_deref()),
        ("vm2", VmState::Allocated, Some("user1"))
    );
    let again = store
        .allocate_vm(&request("desktops", &alice, None), NOW)
        .await
        .unwrap_err();
    assert!(again.to_string().contains("already holds vm2"), "{again}");
    let taken = store
        .allocate_vm(&request("desktops", &bob, Some("vm2")), NOW)
        .await
        .unwrap_err();
    assert!(taken.to_string().contains("allocated, not free"), "{taken}");
    let second = AllocationRequest {
        allow_second: true,
        ..request("desktops", &alice, None)
    };
    assert_eq!(store.allocate_vm(&second, NOW + 1).await.unwrap().id, "vm1");
    assert!(
        store
            .allocate_vm(&request("desktops", &bob, None), NOW)
            .await
            .unwrap_err()
            .to_string()
            .contains("no free VM")
    );
    assert_eq!(store.vm_held(&alice.0, "desktops").await.unwrap().unwrap().id, "vm2");

    // Release vm1, reassign vm2 to bob, then maintenance and back.
    let release = |id: &str| VmChange {
        vm_id: id.into(),
        from: vec![VmState::Allocated],
        to: VmState::Free,
        actor: "desk".into(),
        action: "released".into(),
        detail: String::new(),
        error: None,
        hook_output: None,
        only_if: VmGuard::default(),
    };
    let freed = store.change_vm(&release("vm1"), NOW + 1).await.unwrap();
    assert_eq!((freed.state, freed.holder_id), (VmState::Free, None));
    assert!(matches!(
        store.change_vm(&release("vm1"), NOW + 1).await,
        Err(StoreError::Conflict(_))
    ));
    let moved = store.reassign_vm("vm2", &bob.0, &bob.1, "desk", NOW + 2).await.unwrap();
    assert_eq!(moved.holder_name.as_deref(), Some("user2"));
    assert!(store.vm_held(&alice.0, "desktops").await.unwrap().is_none());
    store.touch_vm_flow("vm2", NOW + 5).await.unwrap();
    store.touch_vm_flow("vm2", NOW + 3).await.unwrap();
    assert_eq!(store.vm("vm2").await.unwrap().unwrap().last_flow_at, Some(NOW + 5));

    let counts = store.pool_counts().await.unwrap();
    assert_eq!((counts[0].free, counts[0].allocated, counts[0].capacity), (1, 1, 50));
    let actions: Vec<String> = store
        .vm_events(Some("desktops"), 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        ["added", "added", "allocated", "allocated", "released", "reassigned"]
    );
}

async fn race(stores: &[Arc<dyn Store>], people: &[(String, String)]) -> Vec<Result<VmRecord, StoreError>> {
    let tasks: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(i, who)| {
            let store = Arc::clone(&stores[i % stores.len()]);
            let request = request("desktops", who, None);
            tokio::spawn(async move { store.allocate_vm(&request, NOW).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

async fn check_race(stores: Vec<Arc<dyn Store>>) {
    let store = &stores[0];
    store.create_pool(&pool("desktops")).await.unwrap();
    let inventory: Vec<VmRecord> = (0..20).map(|i| vm(&format!("vm{i:02}"), "desktops")).collect();
    store.add_vms(&inventory, "desk", NOW).await.unwrap();
    let mut people = Vec::new();
    for i in 0..50 {
        people.push(person(store.as_ref(), i).await);
    }
    let results = race(&stores, &people).await;
    let won: Vec<&VmRecord> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 20, "exactly as many winners as free VMs");
    for lost in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(lost.to_string().contains("no free VM"), "{lost}");
    }
    let ids: HashSet<&str> = won.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids.len(), 20, "no VM given twice");
    let holders: HashSet<&str> = won.iter().map(|v| v.holder_id.as_deref().unwrap()).collect();
    assert_eq!(holders.len(), 20, "no person got two");
    let stored = store
        .vms(Some("desktops"), Some(VmState::Allocated), None)
        .await
        .unwrap();
    assert_eq!(stored.len(), 20);
    assert_eq!(store.pool_counts().await.unwrap()[0].free, 0);
}

async fn fifty_requests_for_twenty_vms_in_one_process(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    check_race(vec![store]).await;
}

async fn fifty_requests_for_twenty_vms_in_two_processes(backend: Backend) {
    let (db, first) = fresh_store(backend).await;
    let second = db.open().await;
    check_race(vec![first, second]).await;
}

async fn guarded_changes_apply_only_while_their_conditions_hold(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    store.create_pool(&pool("desktops")).await.unwrap();
    store.add_vms(&[vm("vm1", "desktops")], "desk", NOW).await.unwrap();
    let alice = person(&*store, 1).await;
    let bob = person(&*store, 2).await;
    store
        .allocate_vm(&request("desktops", &alice, Some("vm1")), NOW)
        .await
        .unwrap();
    store.touch_vm_flow("vm1", NOW + 100).await.unwrap();
    let release = |only_if: VmGuard| VmChange {
        vm_id: "vm1".into(),
        from: vec![VmState::Allocated],
        to: VmState::Free,
        actor: "desk".into(),
        action: "released".into(),
        detail: "reclaimed".into(),
        error: None,
        hook_output: None,
        only_if,
    };
    // Used at NOW + 100: not idle before then.
    let used = store
        .change_vm(
            &release(VmGuard {
                idle_before: Some(NOW + 100),
                ..VmGuard::default()
            }),
            NOW + 200,
        )
        .await
        .unwrap_err();
    assert!(used.to_string().contains("used since the idle cutoff"), "{used}");
    // Given to bob meanwhile: alice's idleness says nothing about him.
    store
        .reassign_vm("vm1", &bob.0, &bob.1, "desk", NOW + 150)
        .await
        .unwrap();
    let moved = store
        .change_vm(
            &release(VmGuard {
                holder_id: Some(alice.0.clone()),
                ..VmGuard::default()
            }),
            NOW + 200,
        )
        .await
        .unwrap_err();
    assert!(moved.to_string().contains("now held by user2"), "{moved}");
    let stale = store
        .change_vm(
            &release(VmGuard {
                updated_at: Some(NOW),
                ..VmGuard::default()
            }),
            NOW + 200,
        )
        .await
        .unwrap_err();
    assert!(stale.to_string().contains("changed since it was read"), "{stale}");
    let vm = store.vm("vm1").await.unwrap().unwrap();
    assert_eq!(vm.holder_name.as_deref(), Some("user2"), "nothing was applied");
    // Bob got it at NOW + 150 and has not used it: idle before NOW + 151.
    let freed = store
        .change_vm(
            &release(VmGuard {
                holder_id: Some(bob.0.clone()),
                idle_before: Some(NOW + 151),
                updated_at: Some(vm.updated_at),
            }),
            NOW + 200,
        )
        .await
        .unwrap();
    assert_eq!((freed.state, freed.holder_id), (VmState::Free, None));
}

both_backends!(
    inventory_allocation_rules_and_changes,
    fifty_requests_for_twenty_vms_in_one_process,
    fifty_requests_for_twenty_vms_in_two_processes,
    guarded_changes_apply_only_while_their_conditions_hold,
);
