//! The provisioner end to end: a real `rampart-provisioner` over HTTPS and the real `rampart`
//! CLI, people resolved in a real OpenLDAP, the same store verified by a real gateway, QR
//! codes decoded by `zbarimg` and codes computed by `oathtool`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_core::ErrorCode;
use rampart_tests::gateway::{GatewayProc, GatewaySpec};
use rampart_tests::provisioner::{ProvisionerProc, secret_of};
use rampart_tests::slapd::{ALICE, BOB, SERVICE_DN, SERVICE_PASSWORD, Slapd};
use rampart_tests::{assert_no_secrets, now, oathtool_code, output_text, require_tool, wrong_code};
use serde_json::{Value, json};
use std::process::Command;

/// A bank in miniature: a directory, a gateway and a provisioner sharing one store.
struct Org {
    _slapd: Slapd,
    _dir: tempfile::TempDir,
    gw: GatewayProc,
    prov: ProvisionerProc,
}

impl Org {
    fn start(gateway_settings: &str) -> Self {
        let slapd = Slapd::start(None, "");
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("bind-password");
        std::fs::write(&password_file, format!("{SERVICE_PASSWORD}\n")).unwrap();
        let directory = format!(
            "[directory]\nkind = \"ldap\"\nurls = [\"{url}\"]\nbind_dn = \"{SERVICE_DN}\"\n\
             bind_password_file = \"{pw}\"\nuser_base = \"ou=people,dc=bank,dc=example\"\n\
             group_base = \"ou=groups,dc=bank,dc=example\"\n",
            url = slapd.url,
            pw = password_file.display()
        );
        let gw = GatewayProc::start(
            GatewayProc::new_ca(),
            &GatewaySpec {
                directory: &directory,
                policy: "",
                settings: gateway_settings,
                ..GatewaySpec::default()
            },
        );
        let prov = ProvisionerProc::start_for(&gw, &directory, "max_token_failures = 3");
        Self {
            _slapd: slapd,
            _dir: dir,
            gw,
            prov,
        }
    }

    async fn login(&self, user: &str, password: &str, code: &str) -> Result<(), ErrorCode> {
        self.gw.try_login(user, password, code).await
    }

    /// The person's tokens through the API.
    async fn tokens(&self, user: &str) -> Vec<Value> {
        let (status, person) = self
            .prov
            .call("GET", &format!("/v1/people/{user}"), Some(&self.prov.admin_key), None)
            .await;
        assert_eq!(status, 200, "{person}");
        person["tokens"].as_array().unwrap().clone()
    }

    async fn issue(&self, user: &str) -> String {
        let (status, issued) = self
            .prov
            .call(
                "POST",
                &format!("/v1/people/{user}/token"),
                Some(&self.prov.admin_key),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 201, "{issued}");
        secret_of(issued["otpauth_uri"].as_str().unwrap())
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.prov
            .call("POST", path, Some(&self.prov.admin_key), Some(body))
            .await
    }
}

#[tokio::test]
async fn cli_issues_a_token_whose_qr_code_logs_in_and_activates_it() {
    require_tool("zbarimg", "zbar-tools");
    let org = Org::start("");
    let qr = org.prov.state.join("alice.png");
    let issued = org
        .prov
        .rampart_json(&["token", "issue", "alice", "--qr", qr.to_str().unwrap()]);
    let uri = issued["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/Rampart:alice?"), "{uri}");
    assert!(uri.contains("issuer=Rampart"), "{uri}");

    let decoded = Command::new("zbarimg").args(["--raw", "-q"]).arg(&qr).output().unwrap();
    assert!(decoded.status.success(), "zbarimg: {}", output_text(&decoded));
    assert_eq!(String::from_utf8(decoded.stdout).unwrap().trim_end(), uri);

    let pending = org.tokens("alice").await;
    assert_eq!(pending[0]["state"], "pending");
    let secret = secret_of(&uri);
    let code = oathtool_code(&secret, now());
    org.login("alice", ALICE.password, &code).await.unwrap();

    let shown = org.prov.rampart_json(&["token", "show", "alice"]);
    assert_eq!(shown["tokens"][0]["state"], "active");
    let actions: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"issued") && actions.contains(&"activated"),
        "{actions:?}"
    );
    assert_eq!(shown["history"][0]["actor"], "admin");

    // A second issue without --reissue is refused and changes nothing.
    let again = org.prov.rampart(&["token", "issue", "alice"]);
    assert_eq!(again.status.code(), Some(5), "{}", output_text(&again));
    assert!(output_text(&again).contains("already has a token"));

    // After issue, nothing the service says or logs contains the seed.
    let listing = org.prov.rampart(&["--output", "json", "token", "list"]);
    let table = org.prov.rampart(&["token", "show", "alice"]);
    let report = org.prov.rampart(&["--output", "json", "report"]);
    for (place, text) in [
        ("token list", output_text(&listing)),
        ("token show", output_text(&table)),
        ("report", output_text(&report)),
        ("provisioner log", org.prov.log()),
        ("gateway log", org.gw.log()),
    ] {
        assert_no_secrets(&text, &[&secret, &code], place);
    }
}

#[tokio::test]
async fn revoke_lost_with_temporary_code_lockout_unlock_and_resync_through_the_api() {
    let org = Org::start("max_token_failures = 3");
    let path = |user: &str, action: &str| format!("/v1/people/{user}/token/{action}");

    // Revoke: the token stops working.
    let secret = org.issue("alice").await;
    let (status, revoked) = org.post(&path("alice", "revoke"), json!({"reason": "ticket 42"})).await;
    assert_eq!((status, revoked["state"].as_str()), (200, Some("revoked")), "{revoked}");
    let code = oathtool_code(&secret, now());
    assert_eq!(
        org.login("alice", ALICE.password, &code).await,
        Err(ErrorCode::InvalidCredentials)
    );
    let (status, _) = org.post(&path("alice", "revoke"), json!({})).await;
    assert_eq!(status, 409, "nothing left to revoke");

    // Lost with a temporary code: it works once, for alice only.
    let secret = org.issue("alice").await;
    let (status, lost) = org
        .post(
            &path("alice", "lost"),
            json!({"reason": "phone stolen", "temporary_code": true}),
        )
        .await;
    assert_eq!(status, 200, "{lost}");
    let temp = lost["temporary_code"]["code"].as_str().unwrap().to_owned();
    rampart_tests::leaks::remember("temporary code", &temp);
    rampart_tests::leaks::remember("temporary code", &temp.replace(' ', ""));
    let lost_id = lost["lost_token"].clone();
    let tokens = org.tokens("alice").await;
    let marked = tokens.iter().find(|t| t["token_id"] == lost_id).unwrap();
    assert_eq!(marked["state"], "lost", "{tokens:?}");
    assert_eq!(
        org.login("alice", ALICE.password, &oathtool_code(&secret, now())).await,
        Err(ErrorCode::InvalidCredentials),
        "a lost token's codes no longer work"
    );
    let bob_secret = org.issue("bob").await;
    assert_eq!(
        org.login("bob", BOB.password, &temp).await,
        Err(ErrorCode::InvalidCredentials),
        "alice's temporary code is worthless to bob"
    );
    org.login("alice", ALICE.password, &temp).await.unwrap();
    assert_eq!(
        org.login("alice", ALICE.password, &temp).await,
        Err(ErrorCode::InvalidCredentials),
        "a temporary code works once"
    );

    // Lockout after repeated wrong codes (limit 3), then unlock.
    let good = oathtool_code(&bob_secret, now());
    let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..2 {
        assert_eq!(
            org.login("bob", BOB.password, &wrong).await,
            Err(ErrorCode::InvalidCredentials)
        );
    }
    assert_eq!(
        org.login("bob", BOB.password, &wrong).await,
        Err(ErrorCode::InvalidCredentials),
        "the third wrong code locks the token, but a wrong code learns nothing"
    );
    // The refusals above waited out growing delays: take a code of the current step.
    let good = oathtool_code(&bob_secret, now());
    assert_eq!(
        org.login("bob", BOB.password, &good).await,
        Err(ErrorCode::TokenLocked),
        "a locked token refuses even a good code, and its owner is told why"
    );
    assert_eq!(
        org.login("bob", BOB.password, &wrong).await,
        Err(ErrorCode::InvalidCredentials),
        "a password guesser without the device cannot tell a locked token from a wrong password"
    );
    assert_eq!(
        org.login("bob", "not-bobs-password", &good).await,
        Err(ErrorCode::InvalidCredentials),
        "without the right password nobody learns that the token is locked"
    );
    let (status, locked) = org
        .prov
        .call("GET", "/v1/tokens?locked=true", Some(&org.prov.admin_key), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(locked.as_array().unwrap().len(), 1, "{locked}");
    assert_eq!(locked[0]["username"], "bob");
    let (status, unlocked) = org.post(&path("bob", "unlock"), json!({})).await;
    assert_eq!((status, unlocked["locked"].as_bool()), (200, Some(false)), "{unlocked}");
    // The refusals since `good` waited out delays too.
    org.login("bob", BOB.password, &oathtool_code(&bob_secret, now()))
        .await
        .unwrap();

    // Resync: bob's phone runs five minutes fast; two consecutive codes bring the token in line.
    let skew = 300;
    let t = now() + skew;
    let drifted = |at: u64| oathtool_code(&bob_secret, at);
    assert_eq!(
        org.login("bob", BOB.password, &drifted(t + 30)).await,
        Err(ErrorCode::InvalidCredentials),
        "a code five minutes ahead is outside the window"
    );
    let (status, body) = org.post(&path("bob", "unlock"), json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("not_locked")),
        "one wrong code does not lock: {body}"
    );
    let (status, body) = org
        .post(
            &path("bob", "resync"),
            json!({"first_code": drifted(t), "second_code": "000000"}),
        )
        .await;
    assert_eq!(status, 400, "codes that are not consecutive are refused: {body}");
    let (status, body) = org
        .post(
            &path("bob", "resync"),
            json!({"first_code": drifted(t), "second_code": drifted(t + 30)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    org.login("bob", BOB.password, &drifted(t + 60)).await.unwrap();
    // The same two codes again would move the replay mark back before the code bob just used
    // and make it valid again: refused, and that code stays used.
    let (status, body) = org
        .post(
            &path("bob", "resync"),
            json!({"first_code": drifted(t), "second_code": drifted(t + 30)}),
        )
        .await;
    assert_eq!(status, 409, "a resync never moves the replay mark back: {body}");
    assert_eq!(
        org.login("bob", BOB.password, &drifted(t + 60)).await,
        Err(ErrorCode::InvalidCredentials),
        "an accepted code stays used after a refused resync"
    );

    let history = org.prov.rampart_json(&["token", "show", "bob"])["history"].clone();
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["issued", "locked", "unlocked", "resynced", "activated"] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
}

/// Issue 16: `token unlock` of a token that is not locked said "unlocked" and added a history
/// record; `token show` printed a temporary code's expiry as a raw Unix time.
#[tokio::test]
async fn unlocking_a_token_that_is_not_locked_says_so_and_token_show_writes_dates() {
    let org = Org::start("failed_login_delay_ms = 100");
    let secret = org.issue("bob").await;
    let history = |org: &Org| -> Vec<String> {
        org.prov.rampart_json(&["token", "show", "bob"])["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };

    // One wrong code of three: not locked. The desk is told so, and nothing is recorded.
    assert_eq!(
        org.login("bob", BOB.password, &wrong_code(&secret)).await,
        Err(ErrorCode::InvalidCredentials)
    );
    let before = history(&org);
    let out = org.prov.rampart(&["token", "unlock", "bob"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(
        text.contains("of bob is not locked (1 wrong code counted; it locks at 3)") && text.contains("nothing changed"),
        "{text}"
    );
    assert!(!text.contains("unlocked;"), "{text}");
    assert_eq!(history(&org), before, "an unlock that did nothing is not on the record");
    let (status, body) = org.post("/v1/people/bob/token/unlock", json!({})).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("not_locked")), "{body}");
    assert_eq!(org.tokens("bob").await[0]["failures"], 1, "the count is left alone");

    // Locked after the third: then the unlock is carried out and recorded, once.
    for _ in 0..2 {
        assert_eq!(
            org.login("bob", BOB.password, &wrong_code(&secret)).await,
            Err(ErrorCode::InvalidCredentials)
        );
    }
    let out = org.prov.rampart(&["token", "unlock", "bob"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("of bob unlocked; it is now pending."),
        "{}",
        output_text(&out)
    );
    let unlocked = history(&org).iter().filter(|a| *a == "unlocked").count();
    assert_eq!(unlocked, 1);

    // A temporary code's expiry is a date in `token show`, like every other time there.
    let code = org.prov.rampart_json(&["token", "temp-code", "bob"]);
    let code_text = code["code"].as_str().unwrap().to_owned();
    rampart_tests::leaks::remember("temporary code", &code_text);
    rampart_tests::leaks::remember("temporary code", &code_text.replace(' ', ""));
    let expires_at = code["expires_at"].as_i64().unwrap();
    let shown = output_text(&org.prov.rampart(&["token", "show", "bob"]));
    let line = shown
        .lines()
        .find(|l| l.contains("temp_code_issued"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        line.contains(&format!("expires at {}", rampart_core::text::utc_minute(expires_at))),
        "{line}"
    );
    assert!(!shown.contains(&expires_at.to_string()), "{shown}");
}

#[tokio::test]
async fn roles_and_keys_are_enforced() {
    let org = Org::start("");
    let created = org
        .prov
        .rampart_json(&["operator", "create", "audit-1", "--role", "auditor"]);
    let auditor = created["api_key"].as_str().unwrap().to_owned();
    let helpdesk = org
        .prov
        .rampart_json(&["operator", "create", "desk-1", "--role", "helpdesk"])["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    org.issue("alice").await;

    let call = |method: &'static str, path: &'static str, key: Option<String>, body: Option<Value>| {
        let prov = &org.prov;
        async move { prov.call(method, path, key.as_deref(), body).await.0 }
    };
    let a = || Some(auditor.clone());
    // The auditor reads but cannot change anything.
    assert_eq!(call("GET", "/v1/tokens", a(), None).await, 200);
    assert_eq!(call("GET", "/v1/reports/tokens", a(), None).await, 200);
    assert_eq!(call("POST", "/v1/people/bob/token", a(), Some(json!({}))).await, 403);
    assert_eq!(
        call("POST", "/v1/people/alice/token/revoke", a(), Some(json!({}))).await,
        403
    );
    assert_eq!(
        call(
            "POST",
            "/v1/operators",
            a(),
            Some(json!({"name": "x", "role": "admin"}))
        )
        .await,
        403
    );
    let cli = org.prov.rampart_as(&auditor, &["token", "revoke", "alice"]);
    assert_eq!(cli.status.code(), Some(3), "{}", output_text(&cli));
    // Helpdesk manages tokens but not operators or keys.
    assert_eq!(
        call("POST", "/v1/people/bob/token", Some(helpdesk.clone()), Some(json!({}))).await,
        201
    );
    assert_eq!(call("GET", "/v1/keys", Some(helpdesk.clone()), None).await, 403);
    // Missing, wrong and withdrawn keys get 401.
    assert_eq!(call("GET", "/v1/tokens", None, None).await, 401);
    assert_eq!(call("GET", "/v1/tokens", Some("rk_wrong".into()), None).await, 401);
    org.prov.rampart_json(&["operator", "revoke", "desk-1"]);
    assert_eq!(call("GET", "/v1/tokens", Some(helpdesk.clone()), None).await, 401);
    let cli = org.prov.rampart_as("rk_wrong", &["token", "list"]);
    assert_eq!(cli.status.code(), Some(3), "{}", output_text(&cli));
    assert_eq!(org.tokens("alice").await[0]["state"], "pending", "nothing was changed");
    // Health and the API description need no key.
    assert_eq!(call("GET", "/healthz", None, None).await, 200);
    assert_eq!(call("GET", "/openapi.json", None, None).await, 200);
}

#[tokio::test]
async fn rotation_keeps_every_token_working_and_a_moved_seed_fails_to_open() {
    let org = Org::start("");
    let alice = org.issue("alice").await;
    let bob = org.issue("bob").await;
    org.login("bob", BOB.password, &oathtool_code(&bob, now()))
        .await
        .unwrap();

    let rotated = org.prov.rampart_json(&["keys", "rotate"]);
    assert_eq!(rotated["new_key"], 2);
    assert_eq!(rotated["resealed"], 2, "{rotated}");
    assert_eq!(rotated["retirable"], json!([1]));
    let keys = org.prov.rampart_json(&["keys", "list"]);
    assert_eq!(
        keys["keys"],
        json!([{"id": 1, "current": false, "tokens": 0}, {"id": 2, "current": true, "tokens": 2}])
    );
    org.prov.rampart_json(&["keys", "retire", "1"]);
    let key_file = std::fs::read_to_string(org.gw.state.join("master.key")).unwrap();
    assert!(!key_file.contains("v1 1 "), "key 1 is gone from the file");
    // The running gateway follows the rotation: both people still log in.
    org.login("alice", ALICE.password, &oathtool_code(&alice, now()))
        .await
        .unwrap();
    let later = now() + 30;
    org.login("bob", BOB.password, &oathtool_code(&bob, later))
        .await
        .unwrap();

    // Copy bob's sealed seed into alice's row, as someone with write access to the file could:
    // it does not open as alice's, and her login fails closed.
    let id = |user: &'static str| {
        let org = &org;
        async move { org.tokens(user).await[0]["token_id"].as_str().unwrap().to_owned() }
    };
    let (alice_id, bob_id) = (id("alice").await, id("bob").await);
    sqlite_exec(
        &org.gw.state.join("rampart.db"),
        &format!(
            "UPDATE tokens SET sealed_seed = (SELECT sealed_seed FROM tokens WHERE id = '{bob_id}'), \
             key_id = (SELECT key_id FROM tokens WHERE id = '{bob_id}') WHERE id = '{alice_id}'"
        ),
    );
    let refused = org.login("alice", ALICE.password, &oathtool_code(&bob, now())).await;
    assert_eq!(refused, Err(ErrorCode::TryLater), "a moved seed fails closed");
    assert!(org.gw.log().contains("sealed data failed to open"), "{}", org.gw.log());
    // A rotation names the token it cannot re-seal and exits non-zero.
    let out = org.prov.rampart(&["--output", "json", "keys", "rotate"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], json!([alice_id]));
}

/// Runs one SQL statement on the store file with the `sqlite3` shell, as an attacker with
/// file access would.
fn sqlite_exec(db: &std::path::Path, sql: &str) {
    require_tool("sqlite3", "sqlite3");
    let status = Command::new("sqlite3").arg(db).arg(sql).status().unwrap();
    assert!(status.success(), "sqlite3 failed: {sql}");
}
