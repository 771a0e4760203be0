//! The web console in real headless Chromium against a real provisioner, gateway and slapd:
//! an employee enrols on the web page (the QR code on the page decoded, the first code from
//! `oathtool`) and then logs in with `rampart-connect`; a desk agent finds a locked person and
//! unlocks them; an auditor searches the audit trail and ends a live session whose tunnel then
//! closes. A screenshot of each page is kept under `target/test-artifacts/` (the QR code and
//! the key are blurred in them first).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::browser::Browser;
use rampart_tests::gateway::LdapLab;
use rampart_tests::provisioner::ProvisionerProc;
use rampart_tests::slapd::{ALICE, BASE, generated_people_ldif, generated_person};
use rampart_tests::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const POLICY: &str = "[[resource]]\nname = \"echo\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n";
const CONSOLE: &str = "\n[console]\nhelpdesk_groups = [\"desk\"]\nauditor_groups = [\"security\"]\n";
const WAIT: Duration = Duration::from_secs(15);

/// `user00000` on the service desk, `user00001` in the security team.
fn desk_and_security() -> String {
    format!(
        "{}dn: cn=desk,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: desk\nmember: uid=user00000,ou=people,{BASE}\n\n\
         dn: cn=security,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: security\nmember: uid=user00001,ou=people,{BASE}\n\n",
        generated_people_ldif(2)
    )
}

fn connect(home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = rampart_connect(home)
        .args(args)
        .env_remove("RAMPART_PASSWORD")
        .env_remove("RAMPART_GATEWAY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Signs in through the sign-in page as a person would.
async fn sign_in(browser: &Browser, prov: &ProvisionerProc, user: &str, password: &str, secret: &str) {
    browser.goto(&format!("{}/console/sign-in", prov.url)).await;
    browser.wait_for("#username", WAIT).await;
    browser.fill("#username", user).await;
    browser.fill("#password", password).await;
    browser.fill("#code", &oathtool_code(secret, now())).await;
    browser.click("#sign-in").await;
    browser.wait_for("#sign-out", WAIT).await;
}

/// Decodes the QR code as the page shows it: a screenshot of the element, read by `zbarimg`.
async fn decode_qr_on_page(browser: &Browser, dir: &Path) -> String {
    require_tool("zbarimg", "zbar-tools");
    let element = browser.find("#qr").await;
    let png = element.screenshot().await.unwrap();
    let file = dir.join("qr-on-page.png");
    std::fs::write(&file, png).unwrap();
    let decoded = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(
        decoded.status.success(),
        "zbarimg could not read the QR code on the page"
    );
    String::from_utf8(decoded.stdout).unwrap().trim().to_owned()
}

/// Fails when a form control on the page has no name a screen reader can say (a `<label for>`,
/// a wrapping label or `aria-label`), or a button has no text, or the page has no `<main>` and
/// `<h1>`.
async fn assert_accessible(browser: &Browser) {
    let problems = browser
        .execute(
            "const bad = []; \
             for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) { \
               const named = (e.id && document.querySelector(`label[for='${e.id}']`)) || e.closest('label') \
                 || e.getAttribute('aria-label'); \
               if (!named) bad.push('unlabelled ' + (e.name || e.id)); } \
             for (const b of document.querySelectorAll('button')) { \
               if (!(b.textContent.trim() || b.getAttribute('aria-label'))) bad.push('button without text'); } \
             if (!document.querySelector('main h1')) bad.push('no main heading'); \
             if (!document.documentElement.lang) bad.push('no page language'); \
             return bad;",
            vec![],
        )
        .await;
    assert_eq!(problems, serde_json::json!([]), "on {}", browser.current_url().await);
}

/// Blurs what must not be kept in a screenshot (the QR code and the key) before taking it.
async fn screenshot_blurred(browser: &Browser, name: &str) {
    browser
        .execute(
            "for (const id of ['qr', 'secret']) { const e = document.getElementById(id); \
             if (e) { e.style.filter = 'blur(14px)'; } }",
            vec![],
        )
        .await;
    browser.screenshot(name).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_employee_enrols_in_the_browser_then_logs_in_with_rampart_connect() {
    let lab = LdapLab::start(POLICY, "").await;
    let prov = ProvisionerProc::start_for(&lab.gw, &format!("{}{CONSOLE}", lab.directory), "");
    let issued = prov.rampart_json(&["token", "registration-code", "alice", "--by", "letter"]);
    let code = issued["registration_code"].as_str().unwrap().to_owned();
    leaks::remember("registration code", &code);
    let dir = tempfile::tempdir().unwrap();

    let browser = Browser::start().await;
    browser.goto(&format!("{}/console/", prov.url)).await;
    browser.wait_for("#username", WAIT).await;
    assert!(
        browser.current_url().await.ends_with("/console/sign-in"),
        "not signed in: to the sign-in page"
    );
    browser.click("a[href='/console/enrol']").await;
    browser.wait_for("#registration_code", WAIT).await;
    assert_accessible(&browser).await;
    browser.screenshot("enrol-form").await;
    browser.fill("#username", "alice").await;
    browser.fill("#password", ALICE.password).await;
    browser.fill("#registration_code", &code.to_lowercase()).await;
    browser.click("#start").await;
    browser.wait_for("#qr svg", WAIT).await;
    let uri = decode_qr_on_page(&browser, dir.path()).await;
    assert!(
        uri.starts_with("otpauth://totp/"),
        "the QR code is an authenticator account"
    );
    let secret = uri
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("secret="))
        .expect("the URI carries the secret")
        .to_owned();
    leaks::remember("enrolled seed", &secret);
    assert_accessible(&browser).await;
    screenshot_blurred(&browser, "enrol-qr-code").await;
    browser.fill("#code", &oathtool_code(&secret, now())).await;
    browser.click("#confirm").await;
    let done = browser.wait_for_text("#done", "active", WAIT).await;
    assert!(done.contains("alice, your authenticator is active"), "{done}");
    browser.screenshot("enrol-done").await;
    assert!(
        !browser.page_source().await.contains(&secret),
        "the seed is not on the page after confirmation"
    );

    // The same person logs in with rampart-connect and the token they just set up.
    let made = prov.rampart(&["profile", "create", "--gateway", &lab.gw.addr, "--user", "alice"]);
    assert!(made.status.success(), "{}", output_text(&made));
    let line = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let home = dir.path().join("home");
    let setup = connect(&home, &["setup", &line], "");
    assert!(setup.status.success(), "{}", output_text(&setup));
    let login = connect(
        &home,
        &[
            "login",
            "--password-stdin",
            "--otp",
            &oathtool_code(&secret, now() + 30),
        ],
        &format!("{}\n", ALICE.password),
    );
    assert!(login.status.success(), "{}", output_text(&login));
    assert!(output_text(&login).contains("Logged in as alice"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_desk_agent_finds_a_locked_person_and_unlocks_them() {
    let lab = LdapLab::start_with_people(POLICY, "", &desk_and_security()).await;
    let console = format!("{CONSOLE}policy_file = \"{}\"\n", lab.gw.policy_path().display());
    let prov = ProvisionerProc::start_for(&lab.gw, &format!("{}{console}", lab.directory), "");
    let alice_secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let (desk_user, desk_password, desk_uuid) = generated_person(0);
    let desk_secret = lab.gw.enrol(&desk_uuid, &desk_user).await;
    // Alice locks her token with wrong codes at the gateway.
    let (_dir, home) = {
        let dir = tempfile::tempdir().unwrap();
        let made = prov.rampart(&["profile", "create", "--gateway", &lab.gw.addr, "--user", "alice"]);
        assert!(made.status.success(), "{}", output_text(&made));
        let home = dir.path().join("home");
        let line = String::from_utf8_lossy(&made.stdout).trim().to_owned();
        assert!(connect(&home, &["setup", &line], "").status.success());
        (dir, home)
    };

    // Before that, her own page on a phone: her token, and the button for a lost phone.
    let browser = Browser::start().await;
    sign_in(&browser, &prov, "alice", ALICE.password, &alice_secret).await;
    browser.set_phone_size().await;
    let own = browser.text("main").await;
    assert!(own.contains("My token") && own.contains("active"), "{own}");
    // On a phone each value of a table row says what it is.
    let label = browser
        .execute(
            "const cell = document.querySelector('td[data-label=State]'); \
             return getComputedStyle(cell, '::before').content;",
            vec![],
        )
        .await;
    assert_eq!(
        label,
        serde_json::json!("\"State: \""),
        "the state is labelled on a phone"
    );
    assert!(browser.exists("#lost").await);
    assert!(
        !browser.exists("a[href='/console/desk']").await,
        "an employee is not shown the desk"
    );
    assert_accessible(&browser).await;
    browser.screenshot("portal-phone").await;
    browser.click("#sign-out").await;
    browser.wait_for("#sign-in", WAIT).await;
    browser.set_viewport(1280, 900).await;

    let (store, _) = lab.gw.open_store().await;
    let token_id = format!("tok-{}", ALICE.uuid);
    for _ in 0..10 {
        store.record_failure(&token_id, now() as i64).await.unwrap();
    }
    let locked = connect(
        &home,
        &[
            "login",
            "--password-stdin",
            "--otp",
            &oathtool_code(&alice_secret, now() + 30),
        ],
        &format!("{}\n", ALICE.password),
    );
    assert!(!locked.status.success(), "a locked token logs nobody in");

    sign_in(&browser, &prov, &desk_user, &desk_password, &desk_secret).await;
    browser.click("a[href='/console/desk']").await;
    browser.wait_for("#locked", WAIT).await;
    assert_accessible(&browser).await;
    browser.screenshot("desk-locked-list").await;
    browser.click("#locked a[href='/console/desk/people/alice']").await;
    let state = browser.wait_for_text("#tokens .state", "locked", WAIT).await;
    assert!(state.contains("(locked)"), "{state}");
    let attempts = browser.text("#attempts").await;
    assert!(
        attempts.contains("token_locked"),
        "the gateway's refusal is listed with its reason: {attempts}"
    );
    let access = browser.text("#access").await;
    assert!(
        access.contains("echo") && access.contains("allowed"),
        "the policy view: {access}"
    );
    let gateways = browser.text("#gateways").await;
    assert!(gateways.contains("serving"), "the gateway heartbeats: {gateways}");
    assert_accessible(&browser).await;
    browser.screenshot("desk-person-locked").await;
    browser.click("#unlock").await;
    let notice = browser.wait_for_text("#notice", "Unlocked", WAIT).await;
    assert!(notice.contains("takes codes again"), "{notice}");
    assert!(!browser.text("#tokens .state").await.contains("locked"));
    browser.screenshot("desk-person-unlocked").await;

    let (status, person) = prov.call("GET", "/v1/people/alice", Some(&prov.admin_key), None).await;
    assert_eq!(status, 200);
    assert_eq!(person["tokens"][0]["locked"], false, "{person}");
    let history = person["history"].to_string();
    assert!(
        history.contains("unlocked") && history.contains(&desk_user),
        "the desk agent is on the history: {history}"
    );
    let login = connect(
        &home,
        &[
            "login",
            "--password-stdin",
            "--otp",
            &oathtool_code(&alice_secret, now() + 30),
        ],
        &format!("{}\n", ALICE.password),
    );
    assert!(login.status.success(), "unlocked, she logs in: {}", output_text(&login));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auditor_searches_the_trail_and_ends_a_live_session_whose_tunnel_closes() {
    let lab = LdapLab::start_with_people(POLICY, "session_check_secs = 1", &desk_and_security()).await;
    let prov = ProvisionerProc::start_for(&lab.gw, &format!("{}{CONSOLE}", lab.directory), "");
    let (auditor, auditor_password, auditor_uuid) = generated_person(1);
    let auditor_secret = lab.gw.enrol(&auditor_uuid, &auditor).await;
    let (_dir, home) = lab.alice_logged_in().await;
    let (mut forward, local, log) = start_listening(&home, &["forward", "127.0.0.1:0=echo"], "forwarding ");
    let mut tunnel = std::net::TcpStream::connect(&local).unwrap();
    tunnel.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tunnel.write_all(b"ping").unwrap();
    let mut echoed = [0u8; 4];
    tunnel.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping", "the tunnel carries data before the end");

    let browser = Browser::start().await;
    sign_in(&browser, &prov, &auditor, &auditor_password, &auditor_secret).await;
    browser.click("a[href='/console/security/audit']").await;
    browser.wait_for("#user", WAIT).await;
    browser.fill("#user", "alice").await;
    browser.click("#search").await;
    let summary = browser.wait_for_text("#summary", "records", WAIT).await;
    assert!(!summary.starts_with("0 records"), "{summary}");
    let records = browser.text("#records").await;
    assert!(
        records.contains("alice") && records.contains("Logon"),
        "her login is on the trail: {records}"
    );
    assert_accessible(&browser).await;
    browser.screenshot("audit-search").await;

    browser.click("a[href='/console/security/sessions']").await;
    browser.wait_for("#sessions", WAIT).await;
    let listed = browser.text("#sessions").await;
    assert!(listed.contains("alice"), "{listed}");
    assert_accessible(&browser).await;
    browser.screenshot("live-sessions").await;
    browser.click("#sessions button.end").await;
    browser.wait_for_text("#count", "0 live", WAIT).await;
    browser.screenshot("live-sessions-after-end").await;

    // The open tunnel closes and the forward ends, saying who ended the session.
    let mut rest = Vec::new();
    if let Err(e) = tunnel.read_to_end(&mut rest) {
        assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "the tunnel stayed open after the session ended"
        );
    }
    let Some(exit) = wait_exit(&mut forward, Duration::from_secs(10)) else {
        let _ = forward.kill();
        panic!("the forward did not end: {}", std::fs::read_to_string(&log).unwrap());
    };
    assert_eq!(exit.code(), Some(5));
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("Your session has ended"), "{said}");
    assert!(std::net::TcpStream::connect(&local).is_err(), "it stopped listening");
    let (store, _) = lab.gw.open_store().await;
    let live = store.live_sessions_for_user(ALICE.uuid, now() as i64).await.unwrap();
    assert!(live.is_empty(), "alice has no live session left: {live:?}");

    // The flows of the day by resource, and every audit stream intact — until a record is
    // edited on disk.
    browser.click("a[href='/console/security/flows']").await;
    let flows = browser.wait_for_text("#flows", "echo", WAIT).await;
    assert!(flows.contains("echo"), "{flows}");
    assert_accessible(&browser).await;
    browser.screenshot("flows-by-resource").await;
    browser.click("a[href='/console/security/integrity']").await;
    let verdict = browser.wait_for_text("#verdict", "intact", WAIT).await;
    assert!(verdict.starts_with("Every stream is intact"), "{verdict}");
    assert_accessible(&browser).await;
    browser.screenshot("audit-integrity").await;
    let audit_dir = lab.gw.state.join("audit");
    let edited = std::fs::read_dir(&audit_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("gateway")
                && std::fs::read_to_string(p).unwrap().contains("\"alice\"")
        })
        .expect("the gateway's audit file names alice");
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, text.replacen("\"alice\"", "\"mallory\"", 1)).unwrap();
    browser.goto(&format!("{}/console/security/integrity", prov.url)).await;
    let verdict = browser.wait_for_text("#verdict", "broken", WAIT).await;
    assert!(verdict.contains("1 of"), "{verdict}");
    let streams = browser.text("#streams").await;
    assert!(streams.contains("BROKEN"), "{streams}");
    browser.screenshot("audit-integrity-broken").await;
}
