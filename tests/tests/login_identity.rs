//! Who a refused login counts against, against a real `slapd` and a real `rampart-gateway`:
//! look-alike spellings of one person share that person's growing delay and audit name, and
//! every refusal (locked, unwilling, constrained accounts as much as a wrong password) gets
//! one answer after one delay, with the real reason on the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::secret::Sensitive;
use rampart_tests::gateway::{GatewayProc, GatewaySpec};
use rampart_tests::slapd::{ALICE, BASE, BOB, SERVICE_DN, SERVICE_PASSWORD, Slapd, SlapdOptions};
use rampart_tests::{bin, now, oathtool_code, output_text};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A gateway on `slapd` with `settings`, its bind password in a folder kept alongside.
fn gateway(slapd: &Slapd, settings: &str) -> (GatewayProc, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("bind-password");
    std::fs::write(&password_file, format!("{SERVICE_PASSWORD}\n")).unwrap();
    let directory = format!(
        "[directory]\nkind = \"ldap\"\nurls = [\"{url}\"]\nbind_dn = \"{SERVICE_DN}\"\n\
         bind_password_file = \"{pw}\"\nuser_base = \"ou=people,{BASE}\"\ngroup_base = \"ou=groups,{BASE}\"\n\
         connect_timeout_secs = 1\noperation_timeout_secs = 2\n",
        url = slapd.url,
        pw = password_file.display(),
    );
    let gw = GatewayProc::start(
        GatewayProc::new_ca(),
        &GatewaySpec {
            directory: &directory,
            policy: "",
            settings,
            ..GatewaySpec::default()
        },
    );
    (gw, secrets)
}

/// One login on a new connection: the refusal code and how long the answer took.
async fn refused_after(gw: &GatewayProc, user: &str, password: &str, code: &str) -> (ErrorCode, Duration) {
    let client = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    let began = Instant::now();
    let result = client
        .login(user, Sensitive::new(password.into()), Sensitive::new(code.into()))
        .await;
    let took = began.elapsed();
    client.close().await;
    match result {
        Err(ClientError::Refused { code, .. }) => (code, took),
        other => panic!("{user:?}: expected a refusal, got {other:?}"),
    }
}

/// `rampart -o json audit query AUDIT_DIR --user USER` as the security team runs it.
fn audit_query_user(gw: &GatewayProc, user: &str) -> Vec<Value> {
    let audit = gw.state.join("audit");
    let out = std::process::Command::new(bin("rampart"))
        .args(["-o", "json", "audit", "query"])
        .arg(&audit)
        .args(["--user", user])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The login refusals among `records`.
fn login_refusals(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["class_uid"] == 3002 && r["status"] == "Failure" && r["message"] == "login refused")
        .collect()
}

/// Before: the gateway only trimmed and lower-cased a typed name, while slapd folds more
/// (fullwidth letters match `alice`). After five wrong passwords as `alice` (answered after
/// 1, 2, 4, 8, 8 × the base delay), `ａｌｉｃｅ`, `Ａｌｉｃｅ` and `Ａlice` (real binds as alice) each
/// started a fresh per-name delay of 1 × base, and every refusal was recorded under the name
/// as typed without a stable id, so `rampart audit query --user alice` missed those typed
/// ` alice `, `alice\t` or in fullwidth letters.
#[tokio::test]
async fn look_alike_spellings_share_the_persons_delay_and_audit_name() {
    let slapd = Slapd::start(None, "");
    let base_ms = 200;
    let (gw, _secrets) = gateway(&slapd, &format!("failed_login_delay_ms = {base_ms}"));
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let code = oathtool_code(&secret, now());
    let base = Duration::from_millis(base_ms);

    for (i, factor) in [1, 2, 4, 8, 8].into_iter().enumerate() {
        let (answer, took) = refused_after(&gw, "alice", "wrong-password", &code).await;
        assert_eq!(answer, ErrorCode::InvalidCredentials);
        assert!(took >= base * factor, "refusal {i} as alice answered after {took:?}");
    }
    let spellings = ["ａｌｉｃｅ", "Ａｌｉｃｅ", "Ａlice", " alice ", "alice\t", "ALICE"];
    for spelling in spellings {
        let (answer, took) = refused_after(&gw, spelling, "wrong-password", &code).await;
        assert_eq!(answer, ErrorCode::InvalidCredentials, "{spelling:?}");
        assert!(
            took >= base * 8,
            "{spelling:?} reached alice but was answered after {took:?}: a fresh delay, not alice's"
        );
    }
    // Spellings the profile refuses never reach the directory, and never log in.
    for refused in ["al ice", "\u{212A}ate", "alice\u{200B}"] {
        let (answer, _) = refused_after(&gw, refused, ALICE.password, &code).await;
        assert_eq!(answer, ErrorCode::InvalidCredentials, "{refused:?}");
    }

    // The security team's query by the person's name finds every refusal that reached her,
    // each with her stable id, whatever was typed.
    let found = audit_query_user(&gw, "alice");
    let refusals = login_refusals(&found);
    assert_eq!(refusals.len(), 5 + spellings.len(), "{refusals:#?}");
    for refusal in &refusals {
        assert_eq!(refusal["user"]["name"], "alice", "{refusal}");
        assert_eq!(refusal["user"]["uid"], ALICE.uuid, "{refusal}");
        assert_eq!(refusal["status_detail"], "wrong_password", "{refusal}");
    }
    // A fullwidth query is the same person too.
    assert_eq!(
        login_refusals(&audit_query_user(&gw, "ＡＬＩＣＥ")).len(),
        refusals.len()
    );

    // The right password and code, in fullwidth, is alice's login, and starts her afresh.
    let client = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    let grant = client
        .login(
            "Ａｌｉｃｅ",
            Sensitive::new(ALICE.password.into()),
            Sensitive::new(oathtool_code(&secret, now() + 30)),
        )
        .await
        .unwrap();
    assert_eq!(grant.user, "alice");
    client.close().await;
    let (_, took) = refused_after(&gw, "alice", "wrong-password", &code).await;
    // Her delay had reached 8 × base; after the success it is 1 × base again.
    assert!(took < base * 8, "a success starts the delay afresh: {took:?}");
}

/// Directory people whose binds the server refuses other than with "wrong password": `gina`
/// locked by the ppolicy overlay, and under `ou=refused` (the retcode overlay answers their
/// binds) `dave` with 53 unwillingToPerform, `erin` with 19 constraintViolation and `frank`
/// with Active Directory's "account locked" (49, `data 775`).
const REFUSED: [(&str, &str, &str); 4] = [
    ("gina", "ou=people", "6f1c2a4e-0000-4c4c-8a8a-00000000671a"),
    ("dave", "ou=refused,ou=people", "6f1c2a4e-0000-4c4c-8a8a-00000000da7e"),
    ("erin", "ou=refused,ou=people", "6f1c2a4e-0000-4c4c-8a8a-00000000e417"),
    ("frank", "ou=refused,ou=people", "6f1c2a4e-0000-4c4c-8a8a-00000000f4a7"),
];

fn password_of(uid: &str) -> String {
    format!("{uid}-Passw0rd-fixture")
}

fn refusing_slapd() -> Slapd {
    let mut ldif = format!(
        "dn: ou=policies,{BASE}\nobjectClass: organizationalUnit\nou: policies\n\n\
         dn: cn=default,ou=policies,{BASE}\nobjectClass: pwdPolicy\nobjectClass: organizationalRole\ncn: default\n\
         pwdAttribute: userPassword\npwdLockout: TRUE\npwdMaxFailure: 5\n\n\
         dn: ou=refused,ou=people,{BASE}\nobjectClass: organizationalUnit\nou: refused\n\n"
    );
    for (uid, branch, uuid) in REFUSED {
        ldif.push_str(&format!(
            "dn: uid={uid},{branch},{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid} Example\nsn: Example\n\
             userPassword: {pw}\nentryUUID: {uuid}\n{locked}\n",
            pw = password_of(uid),
            locked = if uid == "gina" {
                "pwdAccountLockedTime: 000001010000Z\n"
            } else {
                ""
            },
        ));
    }
    Slapd::start_opts(SlapdOptions {
        extra_ldif: ldif,
        modules: vec!["ppolicy".into(), "retcode".into()],
        database_config: format!(
            "overlay retcode\nretcode-parent \"ou=refused,ou=people,{BASE}\"\n\
             retcode-item \"uid=dave\" 53 op=bind\nretcode-item \"uid=erin\" 19 op=bind\n\
             retcode-item \"uid=frank\" 49 op=bind \"text=80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563\"\n\
             overlay ppolicy\nppolicy_default \"cn=default,ou=policies,{BASE}\"\nppolicy_use_lockout\n"
        ),
        ..SlapdOptions::default()
    })
}

/// Before: a bind answered with anything but success or invalidCredentials (53 unwilling, 19
/// constraint violation, …) was taken for a directory outage and answered at once with "try
/// later", while an unknown user or a wrong password got "invalid credentials" after the
/// delay; so the answer told a guesser the account existed (and was locked or refused), and a
/// locked account's 49 was recorded as a plain wrong password.
#[tokio::test]
async fn locked_and_refused_accounts_get_the_wrong_password_answer_and_delay() {
    let slapd = refusing_slapd();
    let base_ms = 1000;
    let (gw, _secrets) = gateway(&slapd, &format!("failed_login_delay_ms = {base_ms}"));
    let base = Duration::from_millis(base_ms);
    let mut secrets = Vec::new();
    for (uid, _, uuid) in REFUSED {
        secrets.push(gw.enrol(uuid, uid).await);
    }
    let bob_secret = gw.enrol(BOB.uuid, BOB.uid).await;
    for (uid, _, _) in REFUSED {
        rampart_tests::leaks::remember("password", &password_of(uid));
    }

    // The yardsticks: a wrong password and an unknown user, each a first refusal.
    let (wrong, wrong_took) = refused_after(&gw, "bob", "wrong-password", &oathtool_code(&bob_secret, now())).await;
    let (unknown, unknown_took) = refused_after(&gw, "nobody", "anything", "123456").await;
    assert_eq!(
        (wrong, unknown),
        (ErrorCode::InvalidCredentials, ErrorCode::InvalidCredentials)
    );
    assert!(
        wrong_took >= base && unknown_took >= base,
        "{wrong_took:?} {unknown_took:?}"
    );

    // The refused accounts, each with the right password and a right code.
    for ((uid, _, _), secret) in REFUSED.iter().zip(&secrets) {
        let (answer, took) = refused_after(&gw, uid, &password_of(uid), &oathtool_code(secret, now())).await;
        assert_eq!(
            answer,
            ErrorCode::InvalidCredentials,
            "{uid}: not the wrong-password answer"
        );
        assert!(
            took >= base,
            "{uid} answered after {took:?}, before the delay every refusal gets"
        );
    }

    // The audit trail keeps the real reason, under the person's stable id.
    let records = rampart_tests::audit_records(&gw.state.join("audit"));
    let refusals = login_refusals(&records);
    for ((uid, _, uuid), reason) in REFUSED.iter().zip([
        "locked",
        "bind_refused (LDAP result 53)",
        "bind_refused (LDAP result 19)",
        "locked",
    ]) {
        let record = refusals
            .iter()
            .find(|r| r["user"]["name"] == *uid)
            .unwrap_or_else(|| panic!("no refusal recorded for {uid}: {refusals:#?}"));
        assert_eq!(record["status_detail"], reason, "{uid}");
        assert_eq!(record["user"]["uid"], *uuid, "{uid}");
    }
    let bob = refusals.iter().find(|r| r["user"]["name"] == "bob").unwrap();
    assert_eq!(bob["status_detail"], "wrong_password");
    let nobody = refusals.iter().find(|r| r["user"]["name"] == "nobody").unwrap();
    assert_eq!(nobody["status_detail"], "unknown_user");
    assert!(nobody["user"]["uid"].is_null(), "an unknown name reached nobody");

    // No refusal was mistaken for an outage.
    let reasons: Vec<String> = gw
        .log_events()
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect();
    assert!(!reasons.iter().any(|r| r == "service_unavailable"), "{reasons:?}");
    for (uid, _, _) in REFUSED {
        rampart_tests::assert_no_secrets(&gw.log(), &[&password_of(uid)], "the gateway log");
    }
}
