//! `rampart_store::copy`: a SQLite store populated through the store API (people and groups,
//! tokens in every state with sealed seeds, history, sessions live, ended and expired, the feed
//! of ends, a resume's replaced ticket, operators, a temporary code, a registration code and the
//! enrolment it opened, a VM pool with free and
//! allocated VMs, seal keys and a gateway) copied into a fresh PostgreSQL database reads back the same through the store API;
//! a step accepted before the copy stays refused after it, and new history, sessions, ends and
//! VM events number after the copied ones. A target that is not empty, or not migrated, is
//! refused and left unchanged, and the source file is never changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rampart_core::temp_code::temp_code_hash;
use rampart_store::copy::{CopyReport, copy_sqlite_to_postgres, sqlite_file};
use rampart_store::prelude::*;
use rampart_store::registration::{Delivery, Enrolment, RegistrationCode, registration_code_hash};
use rampart_store::{
    AllocationRequest, EndedSession, GatewayNode, IssueMode, IssueOutcome, OperatorRecord, OperatorRole, PgSettings,
    PgStore, PoolCounts, PoolRecord, Rotation, SealedSeed, SessionRecord, SqliteStore, StepOutcome, StoreError,
    TempCodeRecord, TicketMatch, TokenEvent, TokenIssue, TokenQuery, TokenRecord, TokenState, TokenView, UserRecord,
    VmEvent, VmRecord, VmState, WrappedSealKey, parse_hosts,
};

const USERS: [&str; 4] = ["u1", "u2", "u3", "u4"];
const TOKENS: [&str; 5] = ["t1", "t2", "t2b", "t3", "t4"];
const TICKETS: [u8; 5] = [0xa, 0xb, 0xc, 0xd, 0xe];
/// The ticket a resume of s-a replaced 0xa with.
const RESUMED_TICKET: u8 = 0x1a;
const TEMP_CODE: &str = "4817293056";
/// More than two batches of the copy (500 rows each).
const BULK_EVENTS: i64 = 1203;
const ADMIN_KEY: &str = "rk_admin_key_for_the_copy_test";

/// A fresh database in this test binary's PostgreSQL cluster, migrated when asked.
async fn fresh_postgres(migrate: bool) -> String {
    let url = tokio::task::spawn_blocking(|| rampart_pgtest::shared().unwrap().fresh_database().unwrap())
        .await
        .unwrap();
    if migrate {
        let (store, _, _) = PgStore::migrate(parse_hosts(&url, None).unwrap(), PgSettings::default())
            .await
            .unwrap();
        store.close().await;
    }
    url
}

async fn open_postgres(url: &str) -> PgStore {
    PgStore::connect(parse_hosts(url, None).unwrap(), PgSettings::default())
        .await
        .unwrap()
}

async fn copy(db_file: &Path, url: &str) -> Result<CopyReport, StoreError> {
    copy_sqlite_to_postgres(db_file, &parse_hosts(url, None).unwrap()).await
}

fn person(id: &str, name: &str, groups: &[&str]) -> UserRecord {
    user(id, name, groups)
}

fn issue(user: UserRecord, token_id: &str, delivered: bool) -> TokenIssue {
    let sealed = key_ring().seal(token_id, SEED).unwrap();
    TokenIssue {
        token: token(token_id, &user.id, sealed),
        user,
        delivered,
        mode: IssueMode::New,
        actor: "desk".to_owned(),
    }
}

async fn issued(store: &dyn Store, request: TokenIssue, now: i64) {
    let outcome = store.issue_token(&request, now).await.unwrap();
    assert!(matches!(outcome, IssueOutcome::Issued { .. }), "{outcome:?}");
}

fn sess(id: &str, ticket: u8, user_id: &str, username: &str, token_id: Option<&str>) -> SessionRecord {
    SessionRecord {
        user_id: user_id.to_owned(),
        username: username.to_owned(),
        token_id: token_id.map(str::to_owned),
        ..session(id, &[ticket; 32])
    }
}

fn pool() -> PoolRecord {
    PoolRecord {
        name: "desktops".into(),
        description: "Remote desktops".into(),
        ports: vec![3389, 22],
        capacity: 10,
        provision_hook: Some("echo provision".into()),
        reset_hook: None,
        destroy_hook: Some("echo destroy".into()),
        hook_timeout_secs: 60,
        created_at: NOW,
        created_by: "admin".into(),
    }
}

fn vm(id: &str) -> VmRecord {
    VmRecord {
        id: id.into(),
        pool: "desktops".into(),
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

fn allocation(user_id: &str, username: &str, vm_id: Option<&str>) -> AllocationRequest {
    AllocationRequest {
        pool: "desktops".into(),
        user_id: user_id.into(),
        username: username.into(),
        vm_id: vm_id.map(Into::into),
        allow_second: false,
        actor: "desk".into(),
    }
}

/// A one-host installation's store after some life: every table holds rows.
async fn populate(store: &dyn Store) {
    // People: groups, a local password hash, a disabled account.
    let alice = person("u1", "alice", &["staff", "vpn"]);
    let bob = person("u2", "bob", &["staff"]);
    let carol = UserRecord {
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        enabled: false,
        ..person("u3", "carol", &["contractors"])
    };
    let dave = person("u4", "dave", &[]);

    // Tokens in every state: active with a replay mark and failures, revoked and its
    // undelivered replacement, lost, resynchronised with drift.
    issued(store, issue(alice, "t1", true), NOW).await;
    assert_eq!(
        store.accept_step("t1", 1000, 5, NOW + 1).await.unwrap(),
        StepOutcome::Accepted { activated: true }
    );
    store.record_failure("t1", NOW + 2).await.unwrap();
    store.record_failure("t1", NOW + 2).await.unwrap();
    store
        .record_token_event(&TokenEvent {
            seq: 0,
            at: NOW + 1,
            actor: "gateway".into(),
            action: "activated".into(),
            user_id: "u1".into(),
            token_id: Some("t1".into()),
            detail: String::new(),
        })
        .await
        .unwrap();
    issued(store, issue(bob.clone(), "t2", true), NOW).await;
    issued(store, issue(carol, "t3", true), NOW).await;
    issued(store, issue(dave, "t4", true), NOW).await;
    store.resync_token("t4", 2000, 1, "desk", NOW + 4).await.unwrap();

    // Sessions: two live ones created in the same second (s-b first: insertion order decides),
    // one ended by its token's revocation, one logged out, one expired.
    store
        .create_session(&sess("s-b", 0xb, "u1", "alice", Some("t1")))
        .await
        .unwrap();
    store
        .create_session(&sess("s-a", 0xa, "u1", "alice", Some("t1")))
        .await
        .unwrap();
    store
        .create_session(&sess("s-c", 0xc, "u2", "bob", Some("t2")))
        .await
        .unwrap();
    store
        .create_session(&SessionRecord {
            gateway_id: Some("gw-1".into()),
            ..sess("s-d", 0xd, "u1", "alice", None)
        })
        .await
        .unwrap();
    store
        .create_session(&SessionRecord {
            created_at: NOW - 7200,
            expires_at: NOW - 3600,
            ..sess("s-e", 0xe, "u4", "dave", Some("t4"))
        })
        .await
        .unwrap();
    store.touch_session("s-a", NOW + 30).await.unwrap();
    // s-a was resumed: its first ticket is replaced (its reuse would end the session).
    assert_eq!(
        store
            .rotate_ticket("s-a", &[0xa; 32], &[RESUMED_TICKET; 32], "gw-1", NOW + 31)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    store
        .end_token("t2", TokenState::Revoked, "desk", "left the company", NOW + 5)
        .await
        .unwrap();
    store.end_session("s-d", "logout", NOW + 6).await.unwrap();
    issued(store, issue(bob, "t2b", false), NOW + 7).await;
    store
        .end_token("t3", TokenState::Lost, "desk", "phone lost", NOW + 8)
        .await
        .unwrap();

    // A temporary code for carol, with one wrong try counted.
    store
        .insert_temp_code(&TempCodeRecord {
            id: "tc1".into(),
            user_id: "u3".into(),
            code_hash: temp_code_hash("u3", TEMP_CODE),
            created_at: NOW + 8,
            expires_at: NOW + 86_400,
            created_by: "desk".into(),
        })
        .await
        .unwrap();
    assert!(
        !store
            .consume_temp_code("u3", &temp_code_hash("u3", "0000000000"), NOW + 9)
            .await
            .unwrap()
    );

    // A registration code for dave, and the enrolment it opened, not yet confirmed.
    store
        .issue_registration_code(&RegistrationCode {
            id: "rc1".into(),
            user_id: "u4".into(),
            code_hash: registration_code_hash("u4", "0123456789ABCDEF"),
            created_at: NOW + 9,
            expires_at: NOW + 86_400,
            created_by: "desk".into(),
            delivery: Delivery::Letter,
        })
        .await
        .unwrap();
    store
        .start_enrolment(&Enrolment {
            id: "en1".into(),
            user_id: "u4".into(),
            registration_code: "rc1".into(),
            token_id: "t4-next".into(),
            params: rampart_core::totp::TotpParams::default(),
            sealed: SealedSeed {
                key_id: 1,
                blob: vec![7; 48],
            },
            created_at: NOW + 10,
            expires_at: NOW + 910,
            failures: 0,
        })
        .await
        .unwrap();

    // Operators, one revoked.
    for (id, name, role, key) in [
        ("op1", "root", OperatorRole::Admin, ADMIN_KEY),
        ("op2", "helper", OperatorRole::Helpdesk, "rk_helper"),
    ] {
        store
            .insert_operator(&OperatorRecord {
                id: id.into(),
                name: name.into(),
                role,
                key_hash: rampart_store::access::key_hash(key),
                created_at: NOW,
                created_by: "init".into(),
                revoked_at: None,
            })
            .await
            .unwrap();
    }
    store.revoke_operator("helper", NOW + 10).await.unwrap();

    // A pool with VMs: one allocated to alice and used, two free.
    store.create_pool(&pool()).await.unwrap();
    store
        .add_vms(&[vm("vm-a"), vm("vm-b"), vm("vm-c")], "admin", NOW)
        .await
        .unwrap();
    store
        .allocate_vm(&allocation("u1", "alice", Some("vm-a")), NOW + 11)
        .await
        .unwrap();
    store.touch_vm_flow("vm-a", NOW + 12).await.unwrap();

    // A seal key kept in the store, and a gateway that registered.
    store
        .add_seal_key(&WrappedSealKey {
            id: 3,
            wrapped: vec![0x5a; 60],
            kek_id: "0123456789abcdef".into(),
            created_at: NOW,
            created_by: "init".into(),
        })
        .await
        .unwrap();
    store
        .register_gateway(&GatewayNode {
            id: "gw-1".into(),
            address: "192.0.2.1:4433".into(),
            admin_url: Some("https://192.0.2.1:9443".into()),
            version: "0.1.0".into(),
            started_at: NOW,
            last_seen_at: NOW + 13,
            sessions: 2,
            flows: 1,
            stopped_at: None,
        })
        .await
        .unwrap();
}

/// Everything the store API reads back, on either backend.
#[derive(Debug, PartialEq)]
struct Snapshot {
    users: Vec<Option<UserRecord>>,
    staff: Vec<UserRecord>,
    tokens: Vec<Option<TokenRecord>>,
    token_list: Vec<TokenView>,
    events: Vec<TokenEvent>,
    by_ticket: Vec<Option<SessionRecord>>,
    resumed: Vec<Option<TicketMatch>>,
    live: Vec<SessionRecord>,
    live_alice: Vec<SessionRecord>,
    end_seq: u64,
    ended: Vec<EndedSession>,
    operators: Vec<OperatorRecord>,
    admin: Option<OperatorRecord>,
    pools: Vec<PoolRecord>,
    vms: Vec<VmRecord>,
    held: Option<VmRecord>,
    counts: Vec<PoolCounts>,
    vm_events: Vec<VmEvent>,
    seal_keys: Vec<WrappedSealKey>,
    sealed: Vec<(String, SealedSeed)>,
    gateways: Vec<GatewayNode>,
    registration_codes: Vec<rampart_store::registration::RegistrationCodeView>,
    enrolment: Option<Enrolment>,
}

async fn snapshot(store: &dyn Store) -> Snapshot {
    let mut users = Vec::new();
    for id in USERS {
        users.push(store.user_by_id(id).await.unwrap());
    }
    let mut tokens = Vec::new();
    for id in TOKENS {
        tokens.push(store.token_by_id(id).await.unwrap());
    }
    let mut by_ticket = Vec::new();
    for ticket in TICKETS {
        by_ticket.push(store.session_by_ticket_hash(&[ticket; 32]).await.unwrap());
    }
    let mut resumed = Vec::new();
    for ticket in [0xa, RESUMED_TICKET] {
        resumed.push(store.session_for_ticket(&[ticket; 32]).await.unwrap());
    }
    let mut sealed = store.sealed_seeds().await.unwrap();
    sealed.sort_by(|a, b| a.0.cmp(&b.0));
    Snapshot {
        registration_codes: store.registration_codes("u4", 10, NOW).await.unwrap(),
        enrolment: store.enrolment("en1").await.unwrap(),
        users,
        staff: store.users_in_group("staff").await.unwrap(),
        tokens,
        token_list: store.list_tokens(&TokenQuery::default()).await.unwrap(),
        events: store.token_events(None, 10_000).await.unwrap(),
        by_ticket,
        resumed,
        live: store.live_sessions(NOW, 100).await.unwrap(),
        live_alice: store.live_sessions_for_user("u1", NOW).await.unwrap(),
        end_seq: store.session_end_seq().await.unwrap(),
        ended: store.sessions_ended_after(0).await.unwrap(),
        operators: store.list_operators().await.unwrap(),
        admin: store
            .operator_by_key_hash(&rampart_store::access::key_hash(ADMIN_KEY))
            .await
            .unwrap(),
        pools: store.pools(None).await.unwrap(),
        vms: store.vms(None, None, None).await.unwrap(),
        held: store.vm_held("u1", "desktops").await.unwrap(),
        counts: store.pool_counts().await.unwrap(),
        vm_events: store.vm_events(None, 0).await.unwrap(),
        seal_keys: store.seal_keys().await.unwrap(),
        sealed,
        gateways: store.gateway_nodes().await.unwrap(),
    }
}

/// Old history, more rows than one batch of the copy takes, numbered with gaps (as rolled-back
/// writes leave them), written straight into the file in one transaction.
async fn bulk_history(db_file: &Path) {
    let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(db_file))
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    for i in 0..BULK_EVENTS {
        sqlx::query(
            "INSERT INTO token_events (seq, at, actor, action, user_id, token_id, detail) \
             VALUES ($1, $2, 'desk', 'unlocked', 'u4', 't4', $3)",
        )
        .bind(10_000 + 3 * i)
        .bind(NOW + 200 + i)
        .bind(format!("old event {i}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
}

/// A populated SQLite state directory (the store closed, as after stopping the services) and
/// what the store API read from it.
async fn populated_state() -> (tempfile::TempDir, PathBuf, Snapshot) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let store = SqliteStore::open(&state).await.unwrap();
    populate(&store).await;
    bulk_history(&state.join("rampart.db")).await;
    let before = snapshot(&store).await;
    store.close().await;
    // The last connection's close checkpoints the WAL into the file on SQLite's worker thread,
    // after `close` returns: wait for it, or that late write would look like the copy's.
    let wal = state.join("rampart.db-wal");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!wal.exists(), "the closed store's WAL was not checkpointed");
    (dir, state, before)
}

fn file_digest(path: &Path) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, &std::fs::read(path).unwrap())
        .as_ref()
        .to_vec()
}

/// Every copied table's rows in PostgreSQL, counted directly.
async fn postgres_counts(url: &str, report: &CopyReport) -> Vec<(String, i64)> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let mut counts = Vec::new();
    for table in &report.tables {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", table.table))
            .fetch_one(&pool)
            .await
            .unwrap();
        counts.push((table.table.clone(), count));
    }
    let feed: i64 = sqlx::query_scalar("SELECT last_seq FROM session_end_feed")
        .fetch_one(&pool)
        .await
        .unwrap();
    counts.push(("session_end_feed.last_seq".to_owned(), feed));
    pool.close().await;
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_populated_sqlite_store_reads_back_the_same_from_postgresql_and_keeps_working() {
    let (_dir, state, before) = populated_state().await;
    // The fixture means something: every kind of row is there.
    assert_eq!(
        before.tokens[0].as_ref().map(|t| (t.last_step, t.failures)),
        Some((Some(1000), 2))
    );
    assert_eq!(
        before.live.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s-b", "s-a"],
        "live sessions of one second come in insertion order"
    );
    assert_eq!(before.end_seq, 3, "two token ends and a logout took positions");
    assert!(
        matches!(
            &before.resumed[..],
            [Some(TicketMatch::Replaced(old)), Some(TicketMatch::Current(new))]
                if old.id == "s-a" && new.id == "s-a" && new.client_key.is_some()
        ),
        "{:?}",
        before.resumed
    );
    assert_eq!(before.held.as_ref().map(|vm| vm.id.as_str()), Some("vm-a"));
    assert!(
        before.events.len() >= 8 + usize::try_from(BULK_EVENTS).unwrap() && before.vm_events.len() == 4,
        "{before:?}"
    );
    assert_eq!(
        before.events.iter().map(|e| e.seq).max(),
        Some(10_000 + 3 * (BULK_EVENTS - 1))
    );

    let db_file = sqlite_file(&format!("sqlite:{}", state.display())).unwrap();
    let digest = file_digest(&db_file);
    let url = fresh_postgres(true).await;
    let report = copy(&db_file, &url).await.unwrap();
    assert_eq!(
        file_digest(&db_file),
        digest,
        "the source file is not changed by the copy"
    );

    // Counts: every table, equal on both sides, and what the fixture wrote.
    assert_eq!(report.tables.len(), 20, "{report:?}");
    assert!(
        report.tables.iter().all(|t| t.source_rows == t.target_rows),
        "{report:?}"
    );
    for (table, rows) in [
        ("users", 4),
        ("user_groups", 4),
        ("tokens", 5),
        ("sessions", 5),
        ("replaced_tickets", 1),
        ("session_end_feed", 1),
        ("operators", 2),
        ("temp_codes", 1),
        ("vm_pools", 1),
        ("vms", 3),
        ("vm_events", 4),
        ("seal_keys", 1),
        ("gateway_nodes", 1),
    ] {
        assert_eq!(report.source_rows(table), Some(rows), "{table}: {report:?}");
    }
    assert_eq!(
        report.source_rows("token_events"),
        Some(u64::try_from(before.events.len()).unwrap())
    );
    assert!(report.target.starts_with("postgresql 127.0.0.1:"), "{}", report.target);
    assert!(report.source.contains("rampart.db"));

    // Everything reads back the same through the store API.
    let pg = open_postgres(&url).await;
    let after = snapshot(&pg).await;
    assert_eq!(after, before);
    let t1 = pg.token_by_id("t1").await.unwrap().unwrap();
    assert_eq!(
        key_ring().open("t1", &t1.sealed).unwrap().as_slice(),
        SEED,
        "the sealed seed opens with the installation's key"
    );
    assert_eq!(pg.user_by_id("u3").await.unwrap().map(|u| u.enabled), Some(false));

    // The replay mark holds: the step accepted on SQLite is refused on PostgreSQL.
    assert_eq!(
        pg.accept_step("t1", 1000, 5, NOW + 100).await.unwrap(),
        StepOutcome::Replayed
    );
    assert_eq!(
        pg.accept_step("t1", 1001, 5, NOW + 100).await.unwrap(),
        StepOutcome::Accepted { activated: false }
    );
    // Carol's temporary code still works, once.
    assert!(
        pg.consume_temp_code("u3", &temp_code_hash("u3", TEMP_CODE), NOW + 100)
            .await
            .unwrap()
    );

    // New rows number after the copied ones: no identity collides.
    let last_event = before.events.iter().map(|e| e.seq).max().unwrap();
    pg.record_token_event(&TokenEvent {
        seq: 0,
        at: NOW + 101,
        actor: "gateway".into(),
        action: "locked".into(),
        user_id: "u4".into(),
        token_id: Some("t4".into()),
        detail: String::new(),
    })
    .await
    .unwrap();
    let events = pg.token_events(None, 10_000).await.unwrap();
    let newest = events.iter().map(|e| e.seq).max().unwrap();
    assert!(newest > last_event, "{newest} after {last_event}");
    assert_eq!(
        events.len(),
        before.events.len() + 2,
        "the temp code's use and the lock"
    );

    let last_vm_event = before.vm_events.iter().map(|e| e.seq).max().unwrap();
    pg.allocate_vm(&allocation("u2", "bob", None), NOW + 102).await.unwrap();
    let vm_events = pg.vm_events(None, 0).await.unwrap();
    assert_eq!(vm_events.len(), before.vm_events.len() + 1);
    assert!(
        vm_events
            .iter()
            .all(|e| e.seq <= last_vm_event || e.action == "allocated")
    );
    assert!(vm_events.iter().map(|e| e.seq).max().unwrap() > last_vm_event);

    pg.create_session(&sess("s-0", 0xf, "u1", "alice", Some("t1")))
        .await
        .unwrap();
    let live: Vec<String> = pg
        .live_sessions(NOW, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        live,
        ["s-b", "s-a", "s-0"],
        "a session created after the copy comes after the copied ones of the same second"
    );
    pg.end_session("s-b", "killed", NOW + 103).await.unwrap();
    assert_eq!(pg.session_end_seq().await.unwrap(), before.end_seq + 1);
    let ended = pg.sessions_ended_after(before.end_seq).await.unwrap();
    assert_eq!(
        ended.iter().map(|e| (e.id.as_str(), e.seq)).collect::<Vec<_>>(),
        [("s-b", before.end_seq + 1)]
    );
    pg.close().await;

    // A second copy into the now used database is refused, naming a table, and changes nothing.
    let counts = postgres_counts(&url, &report).await;
    let again = copy(&db_file, &url).await;
    match &again {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("table users already holds rows"), "{message}")
        }
        other => panic!("a second copy was not refused: {other:?}"),
    }
    assert_eq!(postgres_counts(&url, &report).await, counts);
    assert_eq!(file_digest(&db_file), digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_a_node_already_used_or_not_migrated_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    user_with_token(&store, "u1", "t1").await;
    store.close().await;
    let db_file = dir.path().join("rampart.db");

    // Not migrated: the copy says which command makes the schema.
    let bare = fresh_postgres(false).await;
    match copy(&db_file, &bare).await {
        Err(StoreError::Schema(message)) => assert!(
            message.contains("schema version 0") && message.contains("rampart-provisioner migrate"),
            "{message}"
        ),
        other => panic!("an unmigrated target was not refused: {other:?}"),
    }

    // A node started on the target made a seal key of its own: refused, naming the table.
    let used = fresh_postgres(true).await;
    let pg = open_postgres(&used).await;
    pg.add_seal_key(&WrappedSealKey {
        id: 1,
        wrapped: vec![1; 60],
        kek_id: "fedcba9876543210".into(),
        created_at: NOW,
        created_by: "startup".into(),
    })
    .await
    .unwrap();
    match copy(&db_file, &used).await {
        Err(StoreError::Conflict(message)) => assert!(
            message.contains("table seal_keys already holds rows") && message.contains("shadow master.key"),
            "{message}"
        ),
        other => panic!("a used target was not refused: {other:?}"),
    }
    assert_eq!(pg.token_by_id("t1").await.unwrap(), None, "nothing was copied");
    assert!(pg.user_by_id("u1").await.unwrap().is_none());
    pg.close().await;

    // Only the feed moved by a node (no rows anywhere else) counts as used too.
    let moved = fresh_postgres(true).await;
    let pool = sqlx::PgPool::connect(&moved).await.unwrap();
    sqlx::query("UPDATE session_end_feed SET last_seq = 4")
        .execute(&pool)
        .await
        .unwrap();
    match copy(&db_file, &moved).await {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("table session_end_feed"), "{message}")
        }
        other => panic!("a used feed was not refused: {other:?}"),
    }
    pool.close().await;

    // A fresh target takes it; an empty installation copies too.
    let fresh = fresh_postgres(true).await;
    let report = copy(&db_file, &fresh).await.unwrap();
    assert_eq!(
        (report.source_rows("users"), report.source_rows("tokens")),
        (Some(1), Some(1))
    );
    let empty_dir = tempfile::tempdir().unwrap();
    SqliteStore::open(empty_dir.path()).await.unwrap().close().await;
    let report = copy(&empty_dir.path().join("rampart.db"), &fresh_postgres(true).await)
        .await
        .unwrap();
    assert_eq!(report.total_rows(), 1, "only the feed's row: {report:?}");
}
