//! End to end: VM pools through the real provisioner, `rampart vm` and a real gateway — each
//! person reaches their own VM through one resource name and never another's, allocation
//! changes apply to the next connection, failing and hanging provision hooks leave the VM out
//! of service with the error shown, reclaim lists exactly the VMs idle past the threshold, and
//! the help desk allocates but cannot add VMs (only an admin puts addresses in the inventory).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_core::ErrorCode;
use rampart_store::prelude::*;
use rampart_store::{AllocationRequest, PoolRecord, SqliteStore, UserRecord, VmRecord, VmState};
use rampart_tests::gateway::{LdapLab, login_person, open_refusal};
use rampart_tests::provisioner::ProvisionerProc;
use rampart_tests::slapd::{ALICE, BOB};
use rampart_tests::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// A TCP service on `ip:port` that greets every connection with `I am NAME` and closes.
async fn identity_service(ip: &str, port: u16, name: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind((ip, port)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tcp.write_all(format!("I am {name}\n").as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    port
}

/// What the VM behind `resource` says on a new stream.
async fn greeting(client: &rampart_client::GatewayClient, resource: &str) -> String {
    let (mut send, mut recv) = client.open(resource).await.unwrap();
    let back = tokio::time::timeout(Duration::from_secs(10), recv.read_to_end(1024))
        .await
        .unwrap()
        .unwrap();
    let _ = send.finish();
    String::from_utf8(back).unwrap()
}

/// The `id` of every VM in a JSON list.
fn vm_ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect()
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", output_text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_person_reaches_their_own_vm_through_one_resource_and_never_another() {
    let port = identity_service("127.0.0.2", 0, "vm-a").await;
    identity_service("127.0.0.3", port, "vm-b").await;
    let policy = format!(
        "[[resource]]\nname = \"desktop\"\ntarget = \"allocated:desktops:{port}\"\ndescription = \"My desktop\"\n\
         allow_users = [\"alice\", \"bob\"]\n"
    );
    let lab = LdapLab::start(&policy, "").await;
    let prov = ProvisionerProc::start_for(&lab.gw, &lab.directory, "");
    let alice_secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let bob_secret = lab.gw.enrol(BOB.uuid, BOB.uid).await;

    ok(&prov.rampart(&[
        "vm",
        "pool",
        "create",
        "desktops",
        "--capacity",
        "2",
        "--port",
        &port.to_string(),
    ]));
    ok(&prov.rampart(&["vm", "add", "--pool", "desktops", "vm-a", "127.0.0.2"]));
    ok(&prov.rampart(&["vm", "add", "--pool", "desktops", "vm-b", "127.0.0.3"]));
    let said = ok(&prov.rampart(&["vm", "allocate", "--pool", "desktops", "alice", "--vm", "vm-a"]));
    assert!(said.contains("vm-a (127.0.0.2) allocated: held by alice"), "{said}");

    let (alice, _) = login_person(&lab.gw, &ALICE, &alice_secret, 0).await;
    let (bob, _) = login_person(&lab.gw, &BOB, &bob_secret, 0).await;
    assert_eq!(greeting(&alice, "desktop").await, "I am vm-a\n");
    // Bob holds nothing yet: the gateway says so.
    assert_eq!(open_refusal(&bob, "desktop").await, ErrorCode::NoVmAllocated);
    // Allocated while he is connected: his next connection reaches his VM, no restart.
    ok(&prov.rampart(&["vm", "allocate", "--pool", "desktops", "bob"]));
    assert_eq!(greeting(&bob, "desktop").await, "I am vm-b\n");
    for _ in 0..3 {
        assert_eq!(greeting(&alice, "desktop").await, "I am vm-a\n");
        assert_eq!(greeting(&bob, "desktop").await, "I am vm-b\n");
    }
    // A second allocation for alice is refused; a released VM is no longer reached.
    let again = prov.rampart(&["vm", "allocate", "--pool", "desktops", "alice"]);
    assert_eq!(again.status.code(), Some(5), "{}", output_text(&again));
    assert!(
        output_text(&again).contains("alice already holds vm-a"),
        "{}",
        output_text(&again)
    );
    ok(&prov.rampart(&["vm", "release", "vm-b"]));
    assert_eq!(open_refusal(&bob, "desktop").await, ErrorCode::NoVmAllocated);

    // Flow records and the audit trail name the VM.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.gw.flow_records().iter().filter(|f| f["vm"] == "vm-a").count() < 4 {
        assert!(Instant::now() < deadline, "{:?}", lab.gw.flow_records());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        lab.gw
            .flow_records()
            .iter()
            .filter(|f| f["vm"] == "vm-a")
            .all(|f| f["user"] == "alice")
    );
    let audit = audit_records(&lab.gw.state.join("audit"));
    let closes: Vec<&Value> = audit
        .iter()
        .filter(|r| r["class_uid"] == 4001 && r["activity_id"] == 2 && r["user"]["name"] == "bob")
        .collect();
    assert!(
        closes
            .iter()
            .all(|r| r["resources"][0]["uid"] == "vm-b" && r["dst_endpoint"]["ip"] == "127.0.0.3")
    );
    let allocated = audit
        .iter()
        .filter(|r| r["class_uid"] == 3001 && r["resources"][0]["type"] == "vm" && r["message"] == "VM allocated")
        .count();
    assert_eq!(allocated, 2, "every allocation is on the audit trail");

    // The capacity report and the list agree.
    let report = prov.rampart_json(&["report", "capacity"]);
    let pool = &report["pools"][0];
    assert_eq!(
        (pool["pool"]["allocated"].as_u64(), pool["pool"]["free"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    let list = prov.rampart_json(&["vm", "list", "--user", "alice"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], "vm-a");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_and_hanging_provision_hooks_leave_the_vm_out_of_service_with_the_error() {
    let lab = LdapLab::start("", "").await;
    let prov = ProvisionerProc::start_for(&lab.gw, &lab.directory, "");
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("provisioned");
    let good_hook = format!("echo made $RAMPART_VM_ID >> {}", marker.display());
    ok(&prov.rampart(&[
        "vm",
        "pool",
        "create",
        "good",
        "--capacity",
        "5",
        "--port",
        "3389",
        "--provision-hook",
        &good_hook,
    ]));
    ok(&prov.rampart(&[
        "vm",
        "pool",
        "create",
        "broken",
        "--capacity",
        "5",
        "--port",
        "3389",
        "--provision-hook",
        "echo hypervisor says no >&2; exit 3",
    ]));
    ok(&prov.rampart(&[
        "vm",
        "pool",
        "create",
        "slow",
        "--capacity",
        "5",
        "--port",
        "3389",
        "--provision-hook",
        "sleep 30",
        "--hook-timeout",
        "1",
    ]));
    let csv = dir.path().join("inventory.csv");
    std::fs::write(&csv, "id,address\ng1,10.9.0.1\ng2,10.9.0.2\n,10.9.0.3\n").unwrap();
    let import = prov.rampart(&["vm", "import", "--pool", "good", csv.to_str().unwrap()]);
    assert_eq!(import.status.code(), Some(10), "a bad row: {}", output_text(&import));
    assert!(
        output_text(&import).contains("line 4: the id is empty"),
        "{}",
        output_text(&import)
    );
    ok(&prov.rampart(&["vm", "add", "--pool", "broken", "b1", "10.9.1.1"]));
    ok(&prov.rampart(&["vm", "add", "--pool", "slow", "s1", "10.9.2.1"]));

    let deadline = Instant::now() + Duration::from_secs(15);
    let state = |id: &str| -> Value {
        let list = prov.rampart_json(&["vm", "list"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == id)
            .cloned()
            .unwrap()
    };
    while ["g1", "g2", "b1", "s1"]
        .iter()
        .any(|id| state(id)["state"] == "provisioning")
    {
        assert!(Instant::now() < deadline, "hooks did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state("g1")["state"], "free");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 2);
    let broken = state("b1");
    assert_eq!(broken["state"], "maintenance");
    assert_eq!(broken["error"], "provision hook failed with exit code 3");
    assert!(broken["hook_output"].as_str().unwrap().contains("hypervisor says no"));
    let slow = state("s1");
    assert_eq!(slow["state"], "maintenance");
    assert_eq!(slow["error"], "provision hook timed out after 1 s");
    // Neither is offered to anyone, and the table shows why.
    let free = prov.rampart_json(&["vm", "list", "--state", "free"]);
    assert_eq!(vm_ids(&free), ["g1", "g2"]);
    let refused = prov.rampart(&["vm", "allocate", "--pool", "broken", "alice"]);
    assert_eq!(refused.status.code(), Some(5));
    assert!(output_text(&refused).contains("no free VM in pool broken"));
    let table = ok(&prov.rampart(&["vm", "list", "--pool", "broken"]));
    assert!(
        table.contains("maintenance") && table.contains("provision hook failed with exit code 3"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reclaim_lists_exactly_the_vms_idle_past_the_threshold() {
    let lab = LdapLab::start("", "").await;
    // A fixed history written straight into the store: allocations and last connections days ago.
    let now = i64::try_from(now()).unwrap();
    let day = 86_400;
    {
        let store = SqliteStore::open(&lab.gw.state).await.unwrap();
        store
            .create_pool(&PoolRecord {
                name: "desktops".into(),
                description: String::new(),
                ports: vec![3389],
                capacity: 10,
                provision_hook: None,
                reset_hook: None,
                destroy_hook: None,
                hook_timeout_secs: 60,
                created_at: now - 90 * day,
                created_by: "test".into(),
            })
            .await
            .unwrap();
        let vms: Vec<VmRecord> = (1..=5)
            .map(|i| VmRecord {
                id: format!("vm{i}"),
                pool: "desktops".into(),
                address: format!("10.8.0.{i}"),
                state: VmState::Free,
                holder_id: None,
                holder_name: None,
                allocated_at: None,
                last_flow_at: None,
                error: None,
                hook_output: None,
                created_at: now - 90 * day,
                updated_at: now - 90 * day,
            })
            .collect();
        store.add_vms(&vms, "test", now - 90 * day).await.unwrap();
        // (vm, allocated days ago, last connection days ago)
        let history = [
            ("vm1", 60, Some(45)),
            ("vm2", 60, Some(2)),
            ("vm3", 40, None),
            ("vm4", 5, None),
        ];
        for (i, (vm, allocated, used)) in history.iter().enumerate() {
            let (id, name) = (format!("p{i}"), format!("person{i}"));
            store
                .upsert_user(&UserRecord {
                    id: id.clone(),
                    username: name.clone(),
                    display_name: name.clone(),
                    password_hash: None,
                    enabled: true,
                    groups: vec![],
                    created_at: 0,
                })
                .await
                .unwrap();
            let request = AllocationRequest {
                pool: "desktops".into(),
                user_id: id,
                username: name,
                vm_id: Some((*vm).into()),
                allow_second: false,
                actor: "test".into(),
            };
            store.allocate_vm(&request, now - allocated * day).await.unwrap();
            if let Some(used) = used {
                store.touch_vm_flow(vm, now - used * day).await.unwrap();
            }
        }
        store.close().await;
    }
    let prov = ProvisionerProc::start_for(&lab.gw, &lab.directory, "");
    let idle = prov.rampart_json(&["vm", "reclaim", "--days", "30"]);
    let ids = vm_ids(&idle);
    assert_eq!(
        ids,
        ["vm1", "vm3"],
        "idle longest first: vm1 last used 45 days ago, vm3 never in 40"
    );
    let listed = prov.rampart_json(&["vm", "list", "--state", "allocated"]);
    assert_eq!(listed.as_array().unwrap().len(), 4, "listing changed nothing");
    let zero = prov.rampart(&["vm", "reclaim", "--days", "0"]);
    assert!(!zero.status.success(), "{}", output_text(&zero));
    let released = prov.rampart_json(&["vm", "reclaim", "--days", "30", "--release"]);
    assert_eq!(vm_ids(&released["released"]), ["vm1", "vm3"], "{released}");
    assert!(released["skipped"].as_array().unwrap().is_empty(), "{released}");
    let free = prov.rampart_json(&["vm", "list", "--state", "free"]);
    assert_eq!(vm_ids(&free), ["vm1", "vm3", "vm5"]);
    let none = prov.rampart_json(&["vm", "reclaim", "--days", "30"]);
    assert!(none.as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_allocation_by_group_and_csv_reports_every_person() {
    let lab = LdapLab::start("", "").await;
    let prov = ProvisionerProc::start_for(&lab.gw, &lab.directory, "");
    ok(&prov.rampart(&["vm", "pool", "create", "desktops", "--capacity", "2", "--port", "3389"]));
    ok(&prov.rampart(&["vm", "add", "--pool", "desktops", "vm-1", "10.7.0.1"]));
    // The help desk allocates, but cannot put addresses into the inventory: a VM's address is
    // where `allocated:` resources lead. Refused (exit 3, forbidden), and nothing is added.
    let desk = prov.rampart_json(&["operator", "create", "desk-1", "--role", "helpdesk"])["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.csv");
    std::fs::write(&inventory, "id,address\nvm-x,10.0.0.5\n").unwrap();
    for args in [
        &["vm", "add", "--pool", "desktops", "vm-2", "127.0.0.1"][..],
        &["vm", "import", "--pool", "desktops", inventory.to_str().unwrap()],
        &["vm", "pool", "create", "internal", "--capacity", "1", "--port", "22"],
    ] {
        let out = prov.rampart_as(&desk, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", output_text(&out));
        assert!(
            output_text(&out).contains("helpdesk role cannot"),
            "{}",
            output_text(&out)
        );
    }
    // The import says where it stopped and what is in, so it can be resumed.
    let out = prov.rampart_as(
        &desk,
        &["vm", "import", "--pool", "desktops", inventory.to_str().unwrap()],
    );
    assert!(
        output_text(&out).contains("stopped at line 2: 0 VM(s) from earlier lines were added"),
        "{}",
        output_text(&out)
    );
    assert_eq!(vm_ids(&prov.rampart_json(&["vm", "list"])), ["vm-1"], "nothing added");
    assert_eq!(prov.rampart_json(&["vm", "pool", "list"]).as_array().unwrap().len(), 1);
    // The staff group: alice (carol is disabled, so not a member the directory offers).
    let by_group: Value = serde_json::from_str(&ok(&prov.rampart_as(
        &desk,
        &[
            "--output", "json", "vm", "allocate", "--pool", "desktops", "--group", "staff",
        ],
    )))
    .unwrap();
    let rows = by_group.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{by_group}");
    assert_eq!(
        (rows[0]["username"].as_str(), rows[0]["vm"].as_str()),
        (Some("alice"), Some("vm-1"))
    );

    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, "username\nalice\nbob\nnobody-here\n\n").unwrap();
    let out = prov.rampart(&["vm", "allocate", "--pool", "desktops", "--csv", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(10), "{}", output_text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Allocated 0 VM(s) in desktops; 3 refused."), "{said}");
    assert!(said.contains("line 2 (alice): alice already holds vm-1"), "{said}");
    assert!(said.contains("line 3 (bob): no free VM in pool desktops"), "{said}");
    assert!(said.contains("line 4 (nobody-here): no enabled person named"), "{said}");
}

/// A TCP service on 127.0.0.4 that greets with `I am vm-c` and then echoes until closed.
async fn echoing_vm() -> u16 {
    let listener = tokio::net::TcpListener::bind(("127.0.0.4", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = tcp.into_split();
                if write.write_all(b"I am vm-c\n").await.is_ok() {
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vm_handed_to_someone_else_is_cut_from_its_old_holders_open_flow() {
    let port = echoing_vm().await;
    let policy = format!(
        "[[resource]]\nname = \"desktop\"\ntarget = \"allocated:desktops:{port}\"\nallow_users = [\"alice\", \"bob\"]\n"
    );
    let lab = LdapLab::start(&policy, "session_check_secs = 1").await;
    let prov = ProvisionerProc::start_for(&lab.gw, &lab.directory, "");
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    lab.gw.enrol(BOB.uuid, BOB.uid).await;
    ok(&prov.rampart(&[
        "vm",
        "pool",
        "create",
        "desktops",
        "--capacity",
        "1",
        "--port",
        &port.to_string(),
    ]));
    ok(&prov.rampart(&["vm", "add", "--pool", "desktops", "vm-c", "127.0.0.4"]));
    ok(&prov.rampart(&["vm", "allocate", "--pool", "desktops", "alice", "--vm", "vm-c"]));

    let (alice, _) = login_person(&lab.gw, &ALICE, &secret, 0).await;
    let (mut send, mut recv) = alice.open("desktop").await.unwrap();
    let mut greeting = [0u8; 10];
    recv.read_exact(&mut greeting).await.unwrap();
    assert_eq!(&greeting, b"I am vm-c\n");
    send.write_all(b"still mine").await.unwrap();
    let mut back = [0u8; 10];
    recv.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"still mine");

    // The service desk gives the VM to bob: alice's open flow is cut within the check interval.
    ok(&prov.rampart(&["vm", "reassign", "vm-c", "bob"]));
    let cut = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if send.write_all(b"x").await.is_err() {
                return;
            }
            let mut one = [0u8; 1];
            if recv.read_exact(&mut one).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(ended.is_ok(), "alice still reaches the VM now held by bob");
    assert!(cut.elapsed() < Duration::from_secs(4));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let records = lab.gw.flow_records();
        if let Some(record) = records.iter().find(|f| f["vm"] == "vm-c" && f["user"] == "alice") {
            assert_eq!(record["outcome"], "vm_released", "{record}");
            assert!(record["bytes_to_target"].as_u64().unwrap() >= 10);
            break;
        }
        assert!(Instant::now() < deadline, "{records:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
