//! Dual control on token resets end to end: a real `rampart-provisioner` with `[dual_control]
//! token_resets = true`, the real `rampart` CLI and raw API calls, people in a real OpenLDAP
//! and a real gateway that takes the temporary code. Without dual control one helpdesk
//! operator, talked into it by a fake "I lost my phone" call, handed out a temporary code or
//! unlocked a token alone; now the reset waits for a second operator, the requester cannot
//! approve it, an unapproved request expires, and both names are on the history and the audit
//! trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_core::ErrorCode;
use rampart_tests::gateway::{GatewayProc, GatewaySpec};
use rampart_tests::provisioner::{ProvisionerProc, secret_of};
use rampart_tests::slapd::{ALICE, BOB, SERVICE_DN, SERVICE_PASSWORD, Slapd};
use rampart_tests::{assert_no_secrets, audit_records, now, oathtool_code, output_text, wrong_code};
use serde_json::{Value, json};
use std::process::Output;

/// A directory, a gateway and a provisioner with dual control on, and three operators besides
/// the first admin: two at the help desk and an auditor.
struct Desk {
    _slapd: Slapd,
    _dir: tempfile::TempDir,
    gw: GatewayProc,
    prov: ProvisionerProc,
    desk1: String,
    desk2: String,
    auditor: String,
}

impl Desk {
    fn start(approval_ttl_secs: u64) -> Self {
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
                settings: "max_token_failures = 3\nfailed_login_delay_ms = 100",
                ..GatewaySpec::default()
            },
        );
        let tables =
            format!("{directory}\n[dual_control]\ntoken_resets = true\napproval_ttl_secs = {approval_ttl_secs}\n");
        let prov = ProvisionerProc::start_for(&gw, &tables, "max_token_failures = 3");
        let key = |name: &str, role: &str| {
            let created = prov.rampart_json(&["operator", "create", name, "--role", role]);
            created["api_key"].as_str().unwrap().to_owned()
        };
        Self {
            desk1: key("desk-1", "helpdesk"),
            desk2: key("desk-2", "helpdesk"),
            auditor: key("audit-1", "auditor"),
            _slapd: slapd,
            _dir: dir,
            gw,
            prov,
        }
    }

    async fn login(&self, user: &str, password: &str, code: &str) -> Result<(), ErrorCode> {
        self.gw.try_login(user, password, code).await
    }

    /// Issues `user` a first token (no reset: no approval needed) and returns its secret.
    async fn issue(&self, user: &str) -> String {
        let (status, issued) = self
            .call(
                &self.desk1,
                "POST",
                &format!("/v1/people/{user}/token"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 201, "a first token needs no approval: {issued}");
        secret_of(issued["otpauth_uri"].as_str().unwrap())
    }

    async fn call(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.prov.call(method, path, Some(key), body).await
    }

    /// `rampart ARGS` as the operator holding `key`.
    fn cli(&self, key: &str, args: &[&str]) -> Output {
        self.prov.rampart_as(key, args)
    }

    /// `rampart --output json ARGS` as `key`; panics unless it succeeds.
    fn cli_json(&self, key: &str, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = self.cli(key, &all);
        assert!(out.status.success(), "rampart {args:?}: {}", output_text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls request `id` until the provisioner reports `state` (at most 60 s).
    async fn wait_for_state(&self, id: &str, state: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (status, request) = self
                .call(&self.auditor, "GET", &format!("/v1/reset-requests/{id}"), None)
                .await;
            assert_eq!(status, 200, "{request}");
            if request["state"] == state {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "request {id} never became {state}: {request}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// The person as `rampart token show` sees them.
    fn person(&self, user: &str) -> Value {
        self.cli_json(&self.prov.admin_key, &["token", "show", user])
    }

    /// `(actor, action, detail)` of the person's history.
    fn history(&self, user: &str) -> Vec<(String, String, String)> {
        self.person(user)["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["actor"].as_str().unwrap().to_owned(),
                    e["action"].as_str().unwrap().to_owned(),
                    e["detail"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// The request id in "… waiting for a second operator's approval: rampart token approve ID".
fn approve_id(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (_, rest) = text
        .split_once("waiting for a second operator's approval: rampart token approve ")
        .unwrap_or_else(|| panic!("no approval hint in: {}", output_text(out)));
    rest.split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn a_temporary_code_waits_for_a_second_operator_and_then_works_once() {
    let desk = Desk::start(600);
    let secret = desk.issue("alice").await;
    desk.login("alice", ALICE.password, &oathtool_code(&secret, now()))
        .await
        .unwrap();

    // Formerly desk-1 alone got a working code here. Now the lost token stops at once, and the
    // code waits for someone else.
    let asked = desk.cli(
        &desk.desk1,
        &[
            "token",
            "lost",
            "alice",
            "--temporary-code",
            "--reason",
            "ticket 9: phone gone",
        ],
    );
    assert!(asked.status.success(), "{}", output_text(&asked));
    let id = approve_id(&asked);
    let said = output_text(&asked);
    assert!(said.contains("is marked lost"), "{said}");
    assert!(said.contains(&format!("rampart token collect {id}")), "{said}");
    assert_eq!(desk.person("alice")["tokens"][0]["state"], "lost");
    assert_eq!(
        desk.login("alice", ALICE.password, &oathtool_code(&secret, now()))
            .await,
        Err(ErrorCode::InvalidCredentials),
        "the lost token stopped at once"
    );
    let waiting = desk.cli(&desk.desk1, &["token", "requests"]);
    assert!(output_text(&waiting).contains(&id), "{}", output_text(&waiting));

    // Nothing to collect before approval; the requester cannot approve; an auditor may not.
    let early = desk.cli(&desk.desk1, &["token", "collect", &id]);
    assert_eq!(early.status.code(), Some(5), "{}", output_text(&early));
    assert!(output_text(&early).contains("still waiting for a second operator's approval"));
    let own = desk.cli(&desk.desk1, &["token", "approve", &id]);
    assert_eq!(own.status.code(), Some(3), "{}", output_text(&own));
    assert!(
        output_text(&own).contains("desk-1 made this request and cannot approve it: a second operator must"),
        "{}",
        output_text(&own)
    );
    let auditor = desk.cli(&desk.auditor, &["token", "approve", &id]);
    assert_eq!(auditor.status.code(), Some(3), "{}", output_text(&auditor));
    assert!(output_text(&auditor).contains("auditor role cannot"));

    // A second helpdesk operator approves; only the requester collects, once.
    let approved = desk.cli(&desk.desk2, &["token", "approve", &id]);
    assert!(approved.status.success(), "{}", output_text(&approved));
    assert!(
        output_text(&approved).contains("desk-1 can now collect it"),
        "{}",
        output_text(&approved)
    );
    let again = desk.cli(&desk.desk2, &["token", "approve", &id]);
    assert_eq!(again.status.code(), Some(5), "approved once: {}", output_text(&again));
    let stranger = desk.cli(&desk.desk2, &["token", "collect", &id]);
    assert_eq!(stranger.status.code(), Some(3), "{}", output_text(&stranger));
    assert!(output_text(&stranger).contains("only desk-1, who made this request, can collect"));
    let collected = desk.cli_json(&desk.desk1, &["token", "collect", &id, "--wait", "30"]);
    let code = collected["temporary_code"]["code"].as_str().unwrap().to_owned();
    rampart_tests::leaks::remember("temporary code", &code);
    rampart_tests::leaks::remember("temporary code", &code.replace(' ', ""));
    assert_eq!(collected["request"]["state"], "done");
    assert_eq!(collected["request"]["decided_by"], "desk-2");
    let twice = desk.cli(&desk.desk1, &["token", "collect", &id]);
    assert_eq!(twice.status.code(), Some(5), "{}", output_text(&twice));
    assert!(!output_text(&twice).contains(&code));

    // The code works once, for alice.
    desk.login("alice", ALICE.password, &code).await.unwrap();
    assert_eq!(
        desk.login("alice", ALICE.password, &code).await,
        Err(ErrorCode::InvalidCredentials),
        "a temporary code works once"
    );

    // Both names in the token history and on the audit trail.
    let history = desk.history("alice");
    let find = |actor: &str, action: &str| {
        history
            .iter()
            .find(|(a, act, _)| a == actor && act == action)
            .unwrap_or_else(|| panic!("{actor} {action} missing from {history:?}"))
            .2
            .clone()
    };
    assert!(find("desk-1", "reset_requested").contains("ticket 9"));
    assert!(find("desk-2", "reset_approved").contains("asked by desk-1, approved by desk-2"));
    find("desk-1", "temp_code_issued");
    assert!(find("desk-1", "reset_collected").contains("approved by desk-2"));
    let records = audit_records(&desk.prov.state.join("audit"));
    let approval = records
        .iter()
        .find(|r| r["message"] == "token reset approved")
        .unwrap_or_else(|| panic!("no approval on the audit trail"));
    assert_eq!(approval["actor"]["user"]["name"], "desk-2");
    assert_eq!(approval["user"]["name"], "alice");
    let detail = approval["status_detail"].as_str().unwrap();
    assert!(detail.contains("requested_by=desk-1; approved_by=desk-2"), "{detail}");
    assert!(
        records
            .iter()
            .any(|r| r["message"] == "token reset requested" && r["actor"]["user"]["name"] == "desk-1")
    );

    // The code was shown once, in the collect answer: nowhere else.
    assert_no_secrets(&desk.prov.log(), &[&code, &code.replace(' ', "")], "provisioner log");
    assert_no_secrets(&desk.gw.log(), &[&code, &code.replace(' ', "")], "gateway log");
    let trail = serde_json::to_string(&records).unwrap();
    assert_no_secrets(&trail, &[&code, &code.replace(' ', "")], "audit trail");
}

#[tokio::test]
async fn a_replacement_waits_and_marking_lost_then_issuing_does_not_get_around_it() {
    let desk = Desk::start(600);
    let old_secret = desk.issue("bob").await;
    let old_token = desk.person("bob")["tokens"][0]["token_id"].as_str().unwrap().to_owned();

    let asked = desk.cli(
        &desk.desk1,
        &[
            "token",
            "lost",
            "bob",
            "--replacement",
            "--reason",
            "ticket 12: phone in a taxi",
        ],
    );
    assert!(asked.status.success(), "{}", output_text(&asked));
    let id = approve_id(&asked);
    assert_eq!(desk.person("bob")["tokens"][0]["state"], "lost");

    // Formerly one operator got around the rule in two steps: mark the token lost, then issue
    // a "first" token (or enrol the person again). Both now wait for approval too.
    let (status, sneaked) = desk
        .call(&desk.desk1, "POST", "/v1/people/bob/token", Some(json!({})))
        .await;
    assert_eq!(status, 202, "{sneaked}");
    assert_eq!(
        (sneaked["action"].as_str(), sneaked["state"].as_str()),
        (Some("replacement"), Some("pending"))
    );
    let withdrawn = desk.cli(&desk.desk1, &["token", "deny", sneaked["request_id"].as_str().unwrap()]);
    assert!(
        withdrawn.status.success(),
        "the requester may withdraw: {}",
        output_text(&withdrawn)
    );
    let (status, enrolled) = desk
        .call(
            &desk.desk1,
            "POST",
            "/v1/enrol/batch",
            Some(json!({"rows": [{"username": "bob"}]})),
        )
        .await;
    assert_eq!(status, 200, "{enrolled}");
    assert_eq!(enrolled["results"][0]["status"], "error", "{enrolled}");
    assert!(enrolled["results"][0]["issued"].is_null(), "{enrolled}");
    assert_eq!(
        desk.person("bob")["tokens"].as_array().unwrap().len(),
        1,
        "no token was issued"
    );

    // Approved by a second operator, collected once by the first, with its QR code.
    let approved = desk.cli(&desk.desk2, &["token", "approve", &id]);
    assert!(approved.status.success(), "{}", output_text(&approved));
    let qr = desk._dir.path().join("bob.svg");
    let collected = desk.cli_json(&desk.desk1, &["token", "collect", &id, "--qr", qr.to_str().unwrap()]);
    let uri = collected["replacement"]["otpauth_uri"].as_str().unwrap();
    let new_secret = secret_of(uri);
    rampart_tests::leaks::remember("replacement seed", &new_secret);
    assert!(std::fs::read_to_string(&qr).unwrap().contains("<svg"));
    assert_eq!(collected["request"]["decided_by"], "desk-2");
    let twice = desk.cli(&desk.desk1, &["token", "collect", &id]);
    assert_eq!(twice.status.code(), Some(5), "collected once: {}", output_text(&twice));
    assert!(!output_text(&twice).contains(&new_secret));

    let tokens = desk.person("bob")["tokens"].clone();
    assert_eq!(tokens.as_array().unwrap().len(), 2, "exactly one replacement: {tokens}");
    assert_eq!(
        desk.login("bob", BOB.password, &oathtool_code(&old_secret, now()))
            .await,
        Err(ErrorCode::InvalidCredentials),
        "the lost token ({old_token}) stays dead"
    );
    desk.login("bob", BOB.password, &oathtool_code(&new_secret, now()))
        .await
        .unwrap();
    let history = desk.history("bob");
    assert!(
        history.iter().any(|(actor, action, detail)| actor == "desk-1"
            && action == "reset_collected"
            && detail.contains("desk-2")),
        "{history:?}"
    );

    // The seed was shown once, in the collect answer: not in a log or on the audit trail.
    let trail = serde_json::to_string(&audit_records(&desk.prov.state.join("audit"))).unwrap();
    assert_no_secrets(&trail, &[&new_secret], "audit trail");
    assert_no_secrets(&desk.prov.log(), &[&new_secret], "provisioner log");
}

#[tokio::test]
async fn an_unlock_and_a_reissue_wait_for_approval_through_the_api() {
    let desk = Desk::start(600);
    let secret = desk.issue("bob").await;
    // A token that is not locked has nothing to unlock: no request waits for approval.
    let (status, refused) = desk
        .call(&desk.desk1, "POST", "/v1/people/bob/token/unlock", None)
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (409, Some("not_locked")),
        "{refused}"
    );
    let (_, open) = desk.call(&desk.auditor, "GET", "/v1/reset-requests", None).await;
    assert_eq!(open, json!([]), "no request for an unlock with nothing to unlock");
    assert!(
        desk.history("bob")
            .iter()
            .all(|(_, action, _)| action != "reset_requested")
    );
    for _ in 0..3 {
        assert_eq!(
            desk.login("bob", BOB.password, &wrong_code(&secret)).await,
            Err(ErrorCode::InvalidCredentials)
        );
    }
    let token_id = desk.person("bob")["tokens"][0]["token_id"].as_str().unwrap().to_owned();
    assert_eq!(desk.person("bob")["tokens"][0]["locked"], true);

    // Formerly one operator's unlock took effect at once; now it is a request.
    let (status, request) = desk
        .call(&desk.desk1, "POST", "/v1/people/bob/token/unlock", None)
        .await;
    assert_eq!(status, 202, "{request}");
    assert_eq!(
        (request["state"].as_str(), request["action"].as_str()),
        (Some("pending"), Some("unlock"))
    );
    assert_eq!(request["requested_by"], "desk-1");
    let id = request["request_id"].as_str().unwrap().to_owned();
    assert_eq!(
        desk.person("bob")["tokens"][0]["locked"],
        true,
        "still locked until approved"
    );
    let (status, listed) = desk.call(&desk.auditor, "GET", "/v1/reset-requests", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["request_id"], id.as_str(), "{listed}");

    let approve = format!("/v1/reset-requests/{id}/approve");
    let (status, refused) = desk.call(&desk.desk1, "POST", &approve, None).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("forbidden")),
        "{refused}"
    );
    assert!(refused["message"].as_str().unwrap().contains("a second operator must"));
    let (status, done) = desk.call(&desk.desk2, "POST", &approve, None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["state"].as_str(), done["decided_by"].as_str()),
        (Some("done"), Some("desk-2"))
    );
    assert_eq!(desk.person("bob")["tokens"][0]["locked"], false);
    desk.login("bob", BOB.password, &oathtool_code(&secret, now()))
        .await
        .unwrap();
    assert!(
        desk.history("bob")
            .iter()
            .any(|(actor, action, detail)| actor == "desk-2" && action == "unlocked" && detail.contains("desk-1"))
    );

    // A reissue of a person who has a token is a replacement: it waits too, and a denial ends it.
    let (status, reissue) = desk
        .call(
            &desk.desk1,
            "POST",
            "/v1/people/bob/token",
            Some(json!({"reissue": true})),
        )
        .await;
    assert_eq!(status, 202, "{reissue}");
    assert_eq!(reissue["action"], "replacement");
    let id = reissue["request_id"].as_str().unwrap().to_owned();
    let (status, denied) = desk
        .call(
            &desk.desk2,
            "POST",
            &format!("/v1/reset-requests/{id}/deny"),
            Some(json!({"reason": "caller failed the call-back"})),
        )
        .await;
    assert_eq!((status, denied["state"].as_str()), (200, Some("denied")), "{denied}");
    let (status, _) = desk
        .call(&desk.auditor, "POST", &format!("/v1/reset-requests/{id}/approve"), None)
        .await;
    assert_eq!(status, 403, "auditors never approve");
    let (status, late) = desk
        .call(&desk.desk2, "POST", &format!("/v1/reset-requests/{id}/approve"), None)
        .await;
    assert_eq!(status, 409, "a denied request cannot be approved: {late}");
    let (status, _) = desk
        .call(
            &desk.desk1,
            "POST",
            &format!("/v1/reset-requests/{id}/collect"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "nothing to collect after a denial");
    let tokens = desk.person("bob")["tokens"].clone();
    assert_eq!(
        tokens.as_array().unwrap().len(),
        1,
        "no replacement was issued: {tokens}"
    );
    assert_eq!(
        (tokens[0]["token_id"].as_str(), tokens[0]["state"].as_str()),
        (Some(token_id.as_str()), Some("active"))
    );
    let denial = desk.cli(&desk.desk2, &["token", "requests", "--all"]);
    assert!(
        output_text(&denial).contains("caller failed the call-back"),
        "{}",
        output_text(&denial)
    );
}

#[tokio::test]
async fn an_unapproved_request_expires_and_cannot_be_approved() {
    let desk = Desk::start(10);
    desk.issue("alice").await;
    let asked = desk.cli(&desk.desk1, &["token", "temp-code", "alice"]);
    assert!(asked.status.success(), "{}", output_text(&asked));
    let id = approve_id(&asked);
    let waiting = desk.cli(&desk.desk2, &["token", "requests"]);
    assert!(output_text(&waiting).contains(&id), "{}", output_text(&waiting));

    // Formerly a request had no end; now it must be approved within the approval time. Wait
    // until the provisioner itself calls it expired (its clock decides, not this test's).
    desk.wait_for_state(&id, "expired").await;
    let late = desk.cli(&desk.desk2, &["token", "approve", &id]);
    assert_eq!(late.status.code(), Some(5), "{}", output_text(&late));
    assert!(output_text(&late).contains("expired"), "{}", output_text(&late));
    let collect = desk.cli(&desk.desk1, &["token", "collect", &id]);
    assert_eq!(collect.status.code(), Some(5), "{}", output_text(&collect));
    let open = desk.cli(&desk.desk2, &["token", "requests"]);
    assert!(
        output_text(&open).contains("No reset requests are waiting."),
        "{}",
        output_text(&open)
    );
    let all = desk.cli_json(&desk.desk2, &["token", "requests", "--all"]);
    assert_eq!(all[0]["request_id"], id.as_str());
    assert_eq!(all[0]["state"], "expired");
    assert!(
        !desk
            .history("alice")
            .iter()
            .any(|(_, action, _)| action == "temp_code_issued"),
        "no code was ever made"
    );
}
