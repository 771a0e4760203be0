//! The web console's defences against a real provisioner, gateway store and slapd: cookie
//! flags, form tokens on every change (and on the sign-in itself), posts from other origins,
//! the Content-Security-Policy, what each role may reach, and the seed shown once by web
//! enrolment and never again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::console::ConsoleClient;
use rampart_tests::gateway::LdapLab;
use rampart_tests::provisioner::ProvisionerProc;
use rampart_tests::slapd::{ALICE, BASE, BOB, generated_people_ldif, generated_person};
use rampart_tests::*;

const POLICY: &str = "[[resource]]\nname = \"echo\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n";

/// Two more people: `user00000` on the service desk, `user00001` in the security team.
fn people_and_groups() -> String {
    format!(
        "{}dn: cn=desk,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: desk\nmember: uid=user00000,ou=people,{BASE}\n\n\
         dn: cn=security,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: security\nmember: uid=user00001,ou=people,{BASE}\n\n",
        generated_people_ldif(2)
    )
}

const CONSOLE: &str = "\n[console]\nhelpdesk_groups = [\"desk\"]\nauditor_groups = [\"security\"]\nsign_in_failure_delay_ms = 100\nrecheck_secs = 1\n";

/// A person signed in to the console: their client and the session's form token.
async fn signed_in(prov: &ProvisionerProc, user: &str, password: &str, secret: &str) -> (ConsoleClient, String) {
    let mut client = ConsoleClient::new(prov);
    let answer = client.sign_in(user, password, &oathtool_code(secret, now())).await;
    assert_eq!(answer.status, 303, "{user} signs in: {}", answer.body);
    let token = client.session_token().await;
    (client, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_holds_to_its_cookies_form_tokens_and_roles() {
    let lab = LdapLab::start_with_people(POLICY, "", &people_and_groups()).await;
    let prov = ProvisionerProc::start_for(&lab.gw, &format!("{}{CONSOLE}", lab.directory), "");
    let alice_secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let (desk_user, desk_password, desk_uuid) = generated_person(0);
    let (auditor_user, auditor_password, auditor_uuid) = generated_person(1);
    let desk_secret = lab.gw.enrol(&desk_uuid, &desk_user).await;
    let auditor_secret = lab.gw.enrol(&auditor_uuid, &auditor_user).await;

    // The sign-in form sets its own token cookie; a sign-in without that token is refused
    // before anything is checked, and so is one from another origin.
    let mut stranger = ConsoleClient::new(&prov);
    let form = stranger.get("/console/sign-in").await;
    assert_eq!(form.status, 200);
    let csp = form.headers["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(form.headers["x-frame-options"], "DENY");
    assert_eq!(form.headers["cache-control"], "no-store");
    assert!(!form.body.contains("<script"), "no script on the page");
    let form_cookie = form.set_cookies().join("\n");
    for flag in [
        "__Host-rampart-form=",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(form_cookie.contains(flag), "{flag} in {form_cookie}");
    }
    let code = oathtool_code(&alice_secret, now());
    let no_token = stranger
        .post(
            "/console/sign-in",
            &[
                ("csrf", ""),
                ("username", "alice"),
                ("password", ALICE.password),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    stranger.origin = "https://phish.example".into();
    let csrf = form.hidden("csrf").unwrap();
    let elsewhere = stranger
        .post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", ALICE.password),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);

    // A wrong code is refused like a wrong password, and counts against the token.
    let mut guesser = ConsoleClient::new(&prov);
    let wrong = guesser.sign_in("alice", ALICE.password, "000000").await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("username, password or code is not right"),
        "{}",
        wrong.body
    );
    let wrong_password = guesser.sign_in("alice", "not-her-password", &code).await;
    assert_eq!(wrong_password.status, 401);
    assert!(!guesser.cookies.contains_key("__Host-rampart-console"));

    // Her rehearsal the day before found one resource closed.
    let (store, _) = lab.gw.open_store().await;
    store
        .record_rehearsal(&rampart_store::readiness::Rehearsal {
            id: "r1".into(),
            user_id: ALICE.uuid.into(),
            session_id: None,
            at: now() as i64 - 86_400,
            checks: vec![
                rampart_store::readiness::RehearsalCheck {
                    resource: "echo".into(),
                    ok: true,
                    reason: None,
                },
                rampart_store::readiness::RehearsalCheck {
                    resource: "desktop".into(),
                    ok: false,
                    reason: Some("the gateway could not connect to it".into()),
                },
            ],
            source: "127.0.0.1:1".into(),
        })
        .await
        .unwrap();

    // The employee: a session cookie with every flag; only her own things.
    let mut alice = ConsoleClient::new(&prov);
    let signed = alice.sign_in("alice", ALICE.password, &code).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let session_cookie = signed
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-rampart-console="))
        .expect("a session cookie");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session_cookie.contains(flag), "{flag} in {session_cookie}");
    }
    let alice_token = alice.session_token().await;
    let home = alice.get("/console/").await;
    assert!(home.body.contains("My token"), "{}", home.body);
    let rehearsal = home.text_of("rehearsal").unwrap();
    assert!(
        rehearsal.contains("Not passed") && rehearsal.contains("1 of 2 resources did not open"),
        "{rehearsal}"
    );
    assert!(
        home.body.contains("desktop: the gateway could not connect to it"),
        "{}",
        home.body
    );
    for (path, what) in [
        ("/console/desk", "the desk"),
        ("/console/desk/people/bob", "another person's page"),
        ("/console/security/audit", "the audit trail"),
        ("/console/security/sessions", "everyone's sessions"),
    ] {
        let answer = alice.get(path).await;
        assert_eq!(answer.status, 403, "an employee reached {what}: {}", answer.body);
    }
    let unlock = alice
        .post("/console/desk/people/alice/unlock", &[("csrf", &alice_token)])
        .await;
    assert_eq!(unlock.status, 403, "an employee cannot use desk actions on herself");

    // The desk: reaches people, not the audit trail; every change needs the session's token.
    let (mut desk, desk_token) = signed_in(&prov, &desk_user, &desk_password, &desk_secret).await;
    let person = desk.get("/console/desk/people/alice").await;
    assert_eq!(person.status, 200, "{}", person.body);
    assert!(person.body.contains("enabled in the directory"), "{}", person.body);
    assert!(
        person.body.contains("not given the gateways&#39; policy file")
            || person.body.contains("not given the gateways' policy file"),
        "without a policy file the page says so: {}",
        person.body
    );
    assert!(
        person.body.contains("not accepted"),
        "the refused sign-in is listed with its reason: {}",
        person.body
    );
    assert_eq!(
        desk.get("/console/security/audit").await.status,
        403,
        "helpdesk cannot search the audit trail"
    );
    assert_eq!(
        desk.get("/console/admin").await.status,
        403,
        "helpdesk cannot reach administration"
    );
    let rotate = desk.post("/console/admin/keys/rotate", &[("csrf", &desk_token)]).await;
    assert_eq!(
        rotate.status, 403,
        "helpdesk cannot rotate the sealing key: {}",
        rotate.body
    );
    let withdraw = desk
        .post("/console/admin/operators/admin/withdraw", &[("csrf", &desk_token)])
        .await;
    assert_eq!(withdraw.status, 403, "helpdesk cannot withdraw API keys");
    assert!(
        !person.body.contains("/console/admin"),
        "the link is not shown to helpdesk"
    );
    let without = desk.post("/console/desk/people/alice/unlock", &[]).await;
    assert_eq!(without.status, 403, "a change without a form token is refused");
    let forged = desk
        .post("/console/desk/people/alice/unlock", &[("csrf", &alice_token)])
        .await;
    assert_eq!(forged.status, 403, "another session's token is refused");
    assert!(forged.body.contains("This form has expired"), "{}", forged.body);
    let not_locked = desk
        .post("/console/desk/people/alice/unlock", &[("csrf", &desk_token)])
        .await;
    assert_eq!(
        not_locked.status, 409,
        "with the token the action runs: {}",
        not_locked.body
    );

    // The auditor: reads the audit trail, changes nothing.
    let (mut auditor, auditor_token) = signed_in(&prov, &auditor_user, &auditor_password, &auditor_secret).await;
    let audit = auditor.get("/console/security/audit?user=alice").await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    assert!(
        audit.body.contains("signed in")
            && audit.body.contains("not accepted")
            && audit.body.contains("GET /console/desk"),
        "her sign-ins and the pages she was refused are on the trail: {}",
        audit.body
    );
    let csv = auditor.get("/console/security/audit.csv?user=alice").await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.body
            .starts_with("time,class,activity,user,source,resource,status,detail"),
        "{}",
        csv.body
    );
    assert_eq!(auditor.get("/console/admin").await.status, 403);
    for path in [
        "/console/desk/people/alice/unlock",
        "/console/desk/people/alice/revoke",
        "/console/desk/people/alice/lost",
        "/console/desk/people/alice/temporary-code",
        "/console/admin/keys/rotate",
    ] {
        let answer = auditor.post(path, &[("csrf", &auditor_token)]).await;
        assert_eq!(
            answer.status, 403,
            "an auditor changed something at {path}: {}",
            answer.body
        );
    }
    let (status, person) = prov.call("GET", "/v1/people/alice", Some(&prov.admin_key), None).await;
    assert_eq!(status, 200);
    assert_eq!(person["tokens"][0]["state"], "active", "nothing was revoked: {person}");

    // Leaving the desk group in the directory ends the desk agent's console session.
    lab.slapd.modify(&format!(
        "dn: cn=desk,ou=groups,{BASE}\nchangetype: modify\nreplace: member\nmember: uid=nobody,ou=people,{BASE}\n"
    ));
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let after = desk.get("/console/desk").await;
    assert_eq!(after.status, 303, "a former desk agent is signed out: {}", after.body);

    // Signing out ends the session on the server: the old cookie no longer works.
    let old_cookie = alice.cookies.clone();
    let out = alice.post("/console/sign-out", &[("csrf", &alice_token)]).await;
    assert_eq!(out.status, 303);
    alice.cookies = old_cookie;
    let after = alice.get("/console/").await;
    assert_eq!(after.status, 303, "the ended session is not accepted");
    assert_eq!(after.location(), Some("/console/sign-in"));
}

#[tokio::test(flavor = "multi_thread")]
async fn web_enrolment_shows_the_seed_once_and_never_after_confirmation() {
    let lab = LdapLab::start(POLICY, "").await;
    let prov = ProvisionerProc::start_for(&lab.gw, &format!("{}{CONSOLE}", lab.directory), "");
    let issued = prov.rampart_json(&["token", "registration-code", "bob", "--by", "phone"]);
    let code = issued["registration_code"].as_str().unwrap().to_owned();
    leaks::remember("registration code", &code);

    let mut bob = ConsoleClient::new(&prov);
    let form = bob.get("/console/enrol").await;
    assert_eq!(form.status, 200);
    let csrf = form.hidden("csrf").unwrap();
    let wrong = bob
        .post(
            "/console/enrol",
            &[
                ("csrf", &csrf),
                ("username", "bob"),
                ("password", "wrong"),
                ("registration_code", &code),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .body
            .contains("username, password or registration code is not right"),
        "{}",
        wrong.body
    );
    assert!(!wrong.body.contains(&code));
    let started = bob
        .post(
            "/console/enrol",
            &[
                ("csrf", &csrf),
                ("username", "bob"),
                ("password", BOB.password),
                ("registration_code", &code),
            ],
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert!(started.body.contains("<svg"), "the QR code is on the page");
    let secret = started.text_of("secret").expect("the key is on the page");
    leaks::remember("enrolled seed", &secret);
    let enrolment_id = started.hidden("enrolment_id").unwrap();

    let again = bob
        .post(
            "/console/enrol/confirm",
            &[
                ("csrf", &csrf),
                ("username", "bob"),
                ("enrolment_id", &enrolment_id),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(again.status, 422, "{}", again.body);
    assert!(again.body.contains("tries left"), "{}", again.body);
    assert!(
        !again.body.contains(&secret) && !again.body.contains("<svg"),
        "the seed is not shown twice"
    );
    let done = bob
        .post(
            "/console/enrol/confirm",
            &[
                ("csrf", &csrf),
                ("username", "bob"),
                ("enrolment_id", &enrolment_id),
                ("code", &oathtool_code(&secret, now())),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.text_of("done").unwrap().contains("your authenticator is active"));
    assert!(!done.body.contains(&secret));

    // Signed in with the new token, Bob's page shows the token but never its seed.
    let mut signed = ConsoleClient::new(&prov);
    let answer = signed
        .sign_in("bob", BOB.password, &oathtool_code(&secret, now() + 30))
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let home = signed.get("/console/").await;
    assert!(home.body.contains("active"), "{}", home.body);
    assert!(!home.body.contains(&secret));
    let (_, person) = prov.call("GET", "/v1/people/bob", Some(&prov.admin_key), None).await;
    assert!(!person.to_string().contains(&secret));
}

#[tokio::test(flavor = "multi_thread")]
async fn rampart_dev_prints_the_console_and_its_demo_user_signs_in_as_an_administrator() {
    let dev = Dev::start(&[]);
    let console_url = dev.field("console_url");
    let provisioner_url = dev.field("provisioner_url");
    assert_eq!(console_url, format!("{provisioner_url}/console/"));
    // dev.json is written just before the banner is printed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let banner = loop {
        let banner = std::fs::read_to_string(dev.dir.path().join("dev.stdout")).unwrap();
        if banner.contains("Stop with Ctrl-C") || std::time::Instant::now() > deadline {
            break banner;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(banner.contains(&format!("Web console: {console_url}")), "{banner}");
    assert!(
        banner.contains("sign in as demo with the password above and a code from the token"),
        "{banner}"
    );

    let mut demo = ConsoleClient::for_url(&provisioner_url, std::path::Path::new(&dev.field("ca_cert")));
    let signed = demo
        .sign_in("demo", &dev.field("password"), &oathtool_code(&dev.secret(), now()))
        .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let home = demo.get("/console/").await;
    assert!(
        home.body.contains("Demo Employee") && home.body.contains("(admin)"),
        "{}",
        home.body
    );
    for path in [
        "/console/desk",
        "/console/security/audit",
        "/console/security/sessions",
        "/console/security/integrity",
        "/console/security/flows",
        "/console/readiness",
    ] {
        assert_eq!(demo.get(path).await.status, 200, "{path}");
    }
    // An administrator: the API keys and the sealing keys, and a rotation.
    let admin = demo.get("/console/admin").await;
    assert_eq!(admin.status, 200);
    assert!(admin.text_of("operators").unwrap().contains("admin"), "{}", admin.body);
    let token = admin.hidden("csrf").unwrap();
    let rotated = demo.post("/console/admin/keys/rotate", &[("csrf", &token)]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let notice = rotated.text_of("notice").unwrap();
    assert!(
        notice.contains("now seals new tokens") && notice.contains("tokens sealed again under it: 1."),
        "{notice}"
    );
    // The demo user's connection profile, to download or paste.
    let line = home.text_of("setup-line").expect("the setup line is on the page");
    assert!(line.starts_with("rampart-connect setup rampart-profile:"), "{line}");
    let file = demo.get("/console/me/profile").await;
    assert_eq!(file.status, 200);
    let profile: serde_json::Value = serde_json::from_str(&file.body).unwrap();
    assert_eq!(profile["user"], "demo");
    assert_eq!(
        profile["gateways"][0].as_str().unwrap(),
        dev.field("gateway"),
        "{profile}"
    );
    assert!(profile["ca_pem"].as_str().unwrap().contains("BEGIN CERTIFICATE"));
    let audit = demo.get("/console/security/audit?user=demo").await;
    assert!(
        audit.body.contains("signed in"),
        "the dev audit trail is searched: {}",
        audit.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tries_from_one_address_beyond_the_limit_wait_at_sign_in_and_at_enrolment() {
    let lab = LdapLab::start(POLICY, "").await;
    let console = "\n[console]\nsign_ins_per_minute = 3\nsign_in_failure_delay_ms = 0\n";
    let prov = ProvisionerProc::start_for(
        &lab.gw,
        &format!("{}{console}", lab.directory),
        "enrolment_failure_delay_ms = 0",
    );
    let mut client = ConsoleClient::new(&prov);
    for _ in 0..3 {
        assert_eq!(client.sign_in("alice", "wrong", "000000").await.status, 401);
    }
    let held = client.sign_in("alice", "wrong", "000000").await;
    assert_eq!(held.status, 429, "{}", held.body);
    assert!(
        held.body.contains("too many sign-in attempts from your address"),
        "{}",
        held.body
    );

    let start = serde_json::json!({"username": "bob", "password": "wrong", "registration_code": "AAAA-AAAA-AAAA-AAAA"});
    for _ in 0..3 {
        let (status, body) = prov.call("POST", "/v1/enrolment", None, Some(start.clone())).await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, body) = prov.call("POST", "/v1/enrolment", None, Some(start)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "rate_limited", "{body}");
    // Rehearsal reports share that budget: each refused one would be an audit record.
    let report = serde_json::json!({"resources": [{"resource": "echo", "ok": true}]});
    let held = client
        .post_json("/v1/rehearsals", Some("Session not-a-ticket"), &report)
        .await;
    assert_eq!(held.status, 429, "{}", held.body);
    assert!(held.headers.contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_desk_sees_a_lost_phone_through_in_the_console() {
    let lab = LdapLab::start_with_people(POLICY, "", &people_and_groups()).await;
    let prov = ProvisionerProc::start_for(&lab.gw, &format!("{}{CONSOLE}", lab.directory), "");
    let alice_secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let (desk_user, desk_password, desk_uuid) = generated_person(0);
    let desk_secret = lab.gw.enrol(&desk_uuid, &desk_user).await;
    // Alice's token is in use, then her phone is lost.
    let mut alice = ConsoleClient::new(&prov);
    assert_eq!(
        alice
            .sign_in("alice", ALICE.password, &oathtool_code(&alice_secret, now()))
            .await
            .status,
        303
    );

    for args in [
        &["vm", "pool", "create", "desktops", "--capacity", "2", "--port", "3389"][..],
        &["vm", "add", "--pool", "desktops", "vm-a", "127.0.0.2"],
        &["vm", "allocate", "--pool", "desktops", "alice", "--vm", "vm-a"],
    ] {
        let out = prov.rampart(args);
        assert!(out.status.success(), "{args:?}: {}", output_text(&out));
    }
    let (mut desk, token) = signed_in(&prov, &desk_user, &desk_password, &desk_secret).await;
    let person = "/console/desk/people/alice";
    let vms = desk.get(person).await.text_of("vms").expect("her VM is listed");
    assert!(
        vms.contains("vm-a") && vms.contains("desktops") && vms.contains("allocated"),
        "{vms}"
    );
    let resync = desk
        .post(
            &format!("{person}/resync"),
            &[("csrf", &token), ("first", "123456"), ("second", "654321")],
        )
        .await;
    assert_eq!(resync.status, 400, "codes that are not hers: {}", resync.body);
    assert!(resync.body.contains("not consecutive codes"), "{}", resync.body);
    let lost = desk
        .post(
            &format!("{person}/lost"),
            &[("csrf", &token), ("reason", "ticket 4711")],
        )
        .await;
    assert_eq!(lost.status, 200, "{}", lost.body);
    assert!(
        lost.text_of("notice").unwrap().starts_with("Marked lost"),
        "{}",
        lost.body
    );
    assert!(lost.text_of("tokens").unwrap().contains("lost"), "{}", lost.body);
    let gone = alice.get("/console/").await;
    assert_eq!(
        gone.status, 303,
        "her console session ended with her token: {}",
        gone.body
    );
    assert_eq!(gone.location(), Some("/console/sign-in"));

    // A temporary code, read out on the phone: shown once, and it logs her in once.
    let temporary = desk
        .post(&format!("{person}/temporary-code"), &[("csrf", &token)])
        .await;
    assert_eq!(temporary.status, 200, "{}", temporary.body);
    let code = temporary.text_of("temporary-code-value").unwrap();
    leaks::remember("temporary code", &code);
    let again = desk.get(person).await;
    assert!(!again.body.contains(&code), "the temporary code is shown once");
    let made = prov.rampart(&["profile", "create", "--gateway", &lab.gw.addr, "--user", "alice"]);
    assert!(made.status.success(), "{}", output_text(&made));
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path().join("home");
    let line = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    assert!(
        rampart_connect(&home)
            .args(["setup", &line])
            .output()
            .unwrap()
            .status
            .success()
    );
    let mut login = rampart_connect(&home)
        .args(["login", "--password-stdin", "--otp", &code])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    login
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", ALICE.password).as_bytes())
        .unwrap();
    let login = login.wait_with_output().unwrap();
    assert!(
        login.status.success(),
        "the temporary code logs her in: {}",
        output_text(&login)
    );

    // A registration code for her new phone: listed (never shown again), then she enrols.
    let issued = desk
        .post(
            &format!("{person}/registration-code"),
            &[("csrf", &token), ("delivery", "phone")],
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let registration = issued.text_of("registration-code-value").unwrap();
    leaks::remember("registration code", &registration);
    let listed = desk.get(person).await;
    let codes = listed.text_of("codes").unwrap();
    assert!(
        codes.contains("phone") && codes.contains("live") && codes.contains(&desk_user),
        "{codes}"
    );
    assert!(!listed.body.contains(&registration));
    let mut phone = ConsoleClient::new(&prov);
    let form = phone.get("/console/enrol").await;
    let csrf = form.hidden("csrf").unwrap();
    let started = phone
        .post(
            "/console/enrol",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", ALICE.password),
                ("registration_code", &registration),
            ],
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let secret = started.text_of("secret").unwrap();
    leaks::remember("enrolled seed", &secret);
    let enrolment_id = started.hidden("enrolment_id").unwrap();
    let done = phone
        .post(
            "/console/enrol/confirm",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("enrolment_id", &enrolment_id),
                ("code", &oathtool_code(&secret, now())),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let after = desk.get(person).await;
    let tokens = after.text_of("tokens").unwrap();
    assert!(
        tokens.contains("active") && tokens.contains("lost"),
        "the new token and the lost one: {tokens}"
    );
    assert!(after.text_of("codes").unwrap().contains("used"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_gives_a_group_codes_in_one_download_naming_everyone_left_out() {
    let lab = LdapLab::start_with_people(POLICY, "", &people_and_groups()).await;
    let prov = ProvisionerProc::start_for(&lab.gw, &format!("{}{CONSOLE}", lab.directory), "");
    let (desk_user, desk_password, desk_uuid) = generated_person(0);
    let desk_secret = lab.gw.enrol(&desk_uuid, &desk_user).await;
    let (mut desk, token) = signed_in(&prov, &desk_user, &desk_password, &desk_secret).await;
    let page = desk.get("/console/desk").await;
    assert!(
        page.body.contains("<title>Service desk · Rampart</title>"),
        "{}",
        page.body
    );
    let main = &page.body[page.body.find("<main").unwrap()..];
    assert!(
        main.contains("<form method=\"post\" action=\"/console/desk/campaign\""),
        "the campaign form is on the page: {main}"
    );

    let file = desk
        .post(
            "/console/desk/campaign",
            &[("csrf", &token), ("group", "staff"), ("delivery", "letter")],
        )
        .await;
    assert_eq!(file.status, 200, "{}", file.body);
    assert_eq!(file.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        file.headers["cache-control"], "no-store",
        "the codes are kept by no cache"
    );
    assert!(
        file.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("registration-codes-staff.csv"),
        "{:?}",
        file.headers
    );
    let mut rows = csv_rows(&file.body);
    assert_eq!(
        rows.remove(0),
        [
            "username",
            "display_name",
            "registration_code",
            "expires",
            "delivery",
            "note"
        ]
    );
    let alice = rows.iter().find(|r| r[0] == "alice").expect("alice has a row");
    assert_eq!(alice[4], "letter");
    assert_eq!(alice[2].len(), 19, "a code XXXX-XXXX-XXXX-XXXX: {alice:?}");
    leaks::remember("registration code", &alice[2]);
    let carol = rows
        .iter()
        .find(|r| r[0] == "carol")
        .expect("the disabled member is named");
    assert!(carol[2].is_empty() && carol[5].contains("disabled"), "{carol:?}");
    let (status, codes) = prov.call("GET", "/v1/people/alice", Some(&prov.admin_key), None).await;
    assert_eq!(status, 200);
    assert!(
        codes["history"].to_string().contains("registration_code_issued"),
        "{codes}"
    );

    let unknown = desk
        .post(
            "/console/desk/campaign",
            &[("csrf", &token), ("group", "no-such-group"), ("delivery", "letter")],
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("no group named"), "{}", unknown.body);
}

/// A small CSV as rows of cells (the console's files quote no commas in these tests).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split(',').map(|c| c.trim_matches('"').to_owned()).collect())
        .collect()
}
