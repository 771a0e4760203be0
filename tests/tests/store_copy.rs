//! Moving a one-host installation to PostgreSQL with the real `rampart store copy`: a gateway
//! on SQLite enrols a person, logs them in, reaches an echo target and their allocated VM; it
//! is stopped, the store is copied (table output with the master key imported through a
//! key-encryption key; JSON output into a second database, with the next step printed), every
//! table's counts are equal on both sides, a second copy into the used database is refused
//! (exit 5, naming the table), and the database password never appears. A gateway started on
//! PostgreSQL then refuses the code accepted before the copy, logs the person in with a new
//! one, reaches the same `allocated:` VM and accepts the operator key made before the copy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::secret::Sensitive;
use rampart_store::{AllocationRequest, PoolRecord, VmRecord, VmState};
use rampart_tests::gateway::{LdapLab, login_person, open_flow, spawn_echo};
use rampart_tests::pg::SharedStore;
use rampart_tests::slapd::ALICE;
use rampart_tests::{bin, now, oathtool_code, output_text};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Not needed by the test cluster (it trusts local connections), but written into the URL and
/// the password file so the test sees that neither is ever printed.
const DB_PASSWORD: &str = "Db-Pa55-never-printed-7Qx";

fn policy(vm_port: u16) -> String {
    format!(
        "[[resource]]\nname = \"app\"\ntarget = \"{{echo}}\"\nallow_groups = [\"staff\"]\n\n\
         [[resource]]\nname = \"desktop\"\ntarget = \"allocated:desktops:{vm_port}\"\nallow_groups = [\"staff\"]\n"
    )
}

/// `rampart ARGS` with no store settings inherited from the environment, plus `env`.
fn rampart(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin("rampart"));
    command
        .args(args)
        .env_remove(rampart_store::URL_ENV)
        .env_remove(rampart_store::PASSWORD_ENV)
        .env_remove("RAMPART_KEK")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    assert!(
        !output_text(&out).contains(DB_PASSWORD),
        "the database password was printed: {}",
        output_text(&out)
    );
    out
}

/// `TABLE SQLITE POSTGRESQL` rows of the table output.
fn table_counts(stdout: &str) -> BTreeMap<String, (u64, u64)> {
    stdout
        .lines()
        .skip_while(|line| !line.starts_with("TABLE"))
        .skip(1)
        .map_while(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            match cells.as_slice() {
                [table, sqlite, postgres] => {
                    Some(((*table).to_owned(), (sqlite.parse().ok()?, postgres.parse().ok()?)))
                }
                _ => None,
            }
        })
        .collect()
}

fn json_counts(report: &Value) -> BTreeMap<String, (u64, u64)> {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_owned(),
                (t["source_rows"].as_u64().unwrap(), t["target_rows"].as_u64().unwrap()),
            )
        })
        .collect()
}

fn with_password(url: &str) -> String {
    url.replacen("postgres@", &format!("postgres:{DB_PASSWORD}@"), 1)
}

async fn migrate(url: &str) {
    let (store, _, _) =
        rampart_store::PgStore::migrate(rampart_store::parse_hosts(url, None).unwrap(), Default::default())
            .await
            .unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_host_installation_moves_to_postgresql_and_its_people_log_in_there() {
    rampart_tests::leaks::remember("database password", DB_PASSWORD);
    let pg = SharedStore::start(false).await;
    let second_db = {
        let url = pg.primary.fresh_database().unwrap();
        migrate(&url).await;
        url
    };
    let vm_target = spawn_echo().await;
    let vm_port: u16 = vm_target.rsplit(':').next().unwrap().parse().unwrap();
    let settings = "session_check_secs = 1";
    let mut lab = LdapLab::start(&policy(vm_port), settings).await;

    // Life on SQLite: a token, an operator, a VM allocated to alice, a login using both.
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let helpdesk = lab.gw.operator("desk", "helpdesk").await;
    {
        let (store, _) = lab.gw.open_store().await;
        let at = i64::try_from(now()).unwrap();
        store
            .create_pool(&PoolRecord {
                name: "desktops".into(),
                description: "Remote desktops".into(),
                ports: vec![vm_port],
                capacity: 5,
                provision_hook: None,
                reset_hook: None,
                destroy_hook: None,
                hook_timeout_secs: 60,
                created_at: at,
                created_by: "admin".into(),
            })
            .await
            .unwrap();
        store
            .add_vms(
                &[VmRecord {
                    id: "vm-a".into(),
                    pool: "desktops".into(),
                    address: "127.0.0.1".into(),
                    state: VmState::Free,
                    holder_id: None,
                    holder_name: None,
                    allocated_at: None,
                    last_flow_at: None,
                    error: None,
                    hook_output: None,
                    created_at: at,
                    updated_at: at,
                }],
                "admin",
                at,
            )
            .await
            .unwrap();
        store
            .allocate_vm(
                &AllocationRequest {
                    pool: "desktops".into(),
                    user_id: ALICE.uuid.into(),
                    username: ALICE.uid.into(),
                    vm_id: None,
                    allow_second: false,
                    actor: "desk".into(),
                },
                at,
            )
            .await
            .unwrap();
    }
    let code_time = now();
    let code = oathtool_code(&secret, code_time);
    let client = GatewayClient::connect(&lab.gw.addr, &lab.gw.ca_pem).await.unwrap();
    client
        .login(
            ALICE.uid,
            Sensitive::new(ALICE.password.into()),
            Sensitive::new(code.clone()),
        )
        .await
        .unwrap();
    open_flow(&client, "app", b"before the move").await;
    open_flow(&client, "desktop", b"my desktop before the move").await;
    client.close().await;
    lab.gw.stop();
    let state = lab.gw.state.clone();
    assert!(state.join("rampart.db").is_file() && state.join("master.key").is_file());

    // The copy, table output, the master key imported with the key-encryption key.
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("db-password");
    std::fs::write(&password_file, format!("{DB_PASSWORD}\n")).unwrap();
    let from = format!("sqlite:{}", state.display());
    let out = rampart(
        &[
            "store",
            "copy",
            "--from",
            &from,
            "--to",
            &pg.url,
            "--password-file",
            password_file.to_str().unwrap(),
            "--kek-file",
            pg.kek_file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let counts = table_counts(&stdout);
    // Every table of the schema (version 15) is listed, with equal counts on both sides.
    assert_eq!(counts.len(), 20, "{stdout}");
    assert!(counts.values().all(|(sqlite, postgres)| sqlite == postgres), "{stdout}");
    for (table, at_least) in [
        ("users", 1),
        ("tokens", 1),
        ("token_events", 1),
        ("sessions", 1),
        ("operators", 1),
        ("vm_pools", 1),
        ("vms", 1),
        ("vm_events", 2),
        ("session_end_feed", 1),
    ] {
        assert!(counts[table].0 >= at_least, "{table}: {stdout}");
    }
    assert!(
        stdout.contains("Imported 1 key(s)") && stdout.contains("(current 1)"),
        "{stdout}"
    );
    let port = pg.primary.port();
    assert!(stdout.contains(&format!("postgresql 127.0.0.1:{port}/")), "{stdout}");

    // JSON into a second database, the URL (with its password) from the environment: the same
    // counts, and the key import as the next step.
    let out = rampart(
        &["-o", "json", "store", "copy", "--from", state.to_str().unwrap()],
        &[(rampart_store::URL_ENV, &with_password(&second_db))],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json_counts(&report), counts, "{report}");
    assert_eq!(report["total_rows"].as_u64(), Some(counts.values().map(|c| c.0).sum()));
    let next = report["next_step"].as_str().unwrap();
    assert!(
        next.contains("rampart-provisioner keys import")
            && next.contains(&state.join("master.key").display().to_string()),
        "{next}"
    );
    assert!(report["keys"].is_null());

    // A second copy into the used database is refused, naming the table.
    let out = rampart(
        &["store", "copy", "--from", &from, "--to", &with_password(&pg.url)],
        &[],
    );
    assert_eq!(out.status.code(), Some(5), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("table users already holds rows"),
        "{}",
        output_text(&out)
    );

    // A gateway on PostgreSQL: the code accepted on SQLite stays refused, a new one logs in,
    // the allocated VM and the plain resource are reached, the operator key works.
    let gw = lab.another_gateway(settings, None, &pg.table(""));
    let replay = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    let refused = replay
        .login(ALICE.uid, Sensitive::new(ALICE.password.into()), Sensitive::new(code))
        .await;
    replay.close().await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Refused {
                code: ErrorCode::InvalidCredentials,
                ..
            })
        ),
        "{refused:?}"
    );
    if now() / 30 <= code_time / 30 + 1 {
        // Still inside the code's window: refused as a replay, not as too old.
        assert!(
            gw.log_events().iter().any(|e| e["reason"] == "code_replayed"),
            "{}",
            gw.log()
        );
    }
    let (client, _) = login_person(&gw, &ALICE, &secret, 1).await;
    open_flow(&client, "app", b"after the move").await;
    open_flow(&client, "desktop", b"my desktop after the move").await;
    client.close().await;
    let (status, sessions) = gw.admin("GET", "/v1/sessions", Some(&helpdesk)).await;
    assert_eq!(status, 200, "{sessions}");
    assert!(
        !Path::new(&gw.state).join("rampart.db").exists(),
        "the gateway works on PostgreSQL"
    );
}
