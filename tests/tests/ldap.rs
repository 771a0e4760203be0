//! Directory logins against a real OpenLDAP `slapd`, through a real `rampart-gateway` process,
//! with a real QUIC client and codes from the independent `oathtool`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::secret::Sensitive;
use rampart_tests::gateway::{GatewayProc, GatewaySpec};
use rampart_tests::slapd::{ALICE, BOB, CAROL, Person, SERVICE_DN, SERVICE_PASSWORD, Slapd, SlapdTls, dn_of};
use rampart_tests::{now, oathtool_code};
use std::time::{Duration, Instant};

/// Test fixture: bind password file, echo target, policy and directory settings.
struct Setup {
    dir: tempfile::TempDir,
    echo: String,
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bind-password"), format!("{SERVICE_PASSWORD}\n")).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = tcp.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        Self { dir, echo }
    }

    fn policy(&self) -> String {
        format!(
            "[[resource]]\nname = \"staff-app\"\ntarget = \"{e}\"\nallow_groups = [\"staff\"]\n\n\
             [[resource]]\nname = \"payments\"\ntarget = \"{e}\"\nallow_groups = [\"payments\"]\n",
            e = self.echo
        )
    }

    fn directory(&self, urls: &[&str], extra: &str) -> String {
        let urls = urls.iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", ");
        format!(
            "[directory]\nkind = \"ldap\"\nurls = [{urls}]\nbind_dn = \"{SERVICE_DN}\"\n\
             bind_password_file = \"{pw}\"\nuser_base = \"ou=people,dc=bank,dc=example\"\n\
             group_base = \"ou=groups,dc=bank,dc=example\"\nconnect_timeout_secs = 1\noperation_timeout_secs = 2\n{extra}\n\
             [[directory.disabled_when]]\nattribute = \"employeeType\"\nequals = \"disabled\"\n",
            pw = self.dir.path().join("bind-password").display()
        )
    }

    fn gateway(&self, urls: &[&str], extra: &str) -> GatewayProc {
        self.gateway_with_ca(GatewayProc::new_ca(), urls, extra)
    }

    fn gateway_with_ca(&self, ca: rampart_certs::CertificateAuthority, urls: &[&str], extra: &str) -> GatewayProc {
        let directory = self.directory(urls, extra);
        let policy = self.policy();
        GatewayProc::start(
            ca,
            &GatewaySpec {
                directory: &directory,
                policy: &policy,
                settings: "",
                ..GatewaySpec::default()
            },
        )
    }
}

async fn login(
    gw: &GatewayProc,
    user: &str,
    password: &str,
    code: &str,
) -> Result<rampart_core::protocol::SessionGrant, ClientError> {
    let client = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    let result = client
        .login(user, Sensitive::new(password.into()), Sensitive::new(code.into()))
        .await;
    client.close().await;
    result
}

fn refused_code(result: Result<rampart_core::protocol::SessionGrant, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Alice logged in on a connection kept open for streams.
async fn alice_session(gw: &GatewayProc, secret: &str) -> (GatewayClient, rampart_core::protocol::SessionGrant) {
    let client = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    let code = Sensitive::new(oathtool_code(secret, now()));
    let grant = client
        .login("alice", Sensitive::new(ALICE.password.into()), code)
        .await
        .unwrap();
    (client, grant)
}

/// Sends `data` on a new stream to `resource` and returns what the echo target sent back.
async fn echo_through(client: &GatewayClient, resource: &str, data: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = client.open(resource).await.unwrap();
    send.write_all(data).await.unwrap();
    send.finish().unwrap();
    recv.read_to_end(1 << 20).await.unwrap()
}

async fn enrol(gw: &GatewayProc, p: &Person) -> String {
    gw.enrol(p.uuid, p.uid).await
}

/// Logs `reasons` appear in the gateway's log as `reason` fields of refused logins.
fn logged_reasons(gw: &GatewayProc) -> Vec<String> {
    gw.log_events()
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn directory_user_reaches_a_resource_of_their_group_and_not_another_groups() {
    let slapd = Slapd::start(None, "");
    let setup = Setup::new().await;
    let gw = setup.gateway(&[&slapd.url], "");
    let secret = enrol(&gw, &ALICE).await;

    let (client, grant) = alice_session(&gw, &secret).await;
    assert_eq!(grant.user, "alice");
    let names: Vec<_> = grant.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["staff-app"], "resources offered follow the LDAP groups");

    assert_eq!(
        echo_through(&client, "staff-app", b"via ldap groups").await,
        b"via ldap groups"
    );

    match client.open("payments").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::Forbidden),
        other => panic!("payments must be refused to alice: {other:?}"),
    }
    client.close().await;
    let success = gw
        .log_events()
        .into_iter()
        .find(|e| e["outcome"] == "success" && e["message"] == "login")
        .unwrap();
    assert_eq!(success["user_id"], ALICE.uuid, "the session is keyed by entryUUID");
}

#[tokio::test]
async fn wrong_empty_and_unknown_get_one_answer_and_no_empty_bind_reaches_ldap() {
    let slapd = Slapd::start(None, "");
    let setup = Setup::new().await;
    let gw = setup.gateway(&[&slapd.url], "");
    let secret = enrol(&gw, &ALICE).await;
    // The next step's code: the refusals below take about 35 s (the per-name delay doubles), and
    // the same code must still be inside the window (T-1..T+1) for the last login; a code of the
    // current step would expire first when the test starts late in its step.
    let code = oathtool_code(&secret, now() + 30);

    let binds_before = slapd.binds_for(&dn_of(&ALICE));
    for blank in ["", "   ", "\t"] {
        assert_eq!(
            refused_code(login(&gw, "alice", blank, &code).await),
            ErrorCode::InvalidCredentials
        );
    }
    assert_eq!(
        slapd.binds_for(&dn_of(&ALICE)),
        binds_before,
        "an empty password must never be sent as a bind"
    );

    assert_eq!(
        refused_code(login(&gw, "alice", "wrong-password", &code).await),
        ErrorCode::InvalidCredentials
    );
    assert_eq!(
        slapd.binds_for(&dn_of(&ALICE)),
        binds_before + 1,
        "a wrong password is checked by a real bind"
    );
    assert_eq!(
        refused_code(login(&gw, "mallory", "anything", &code).await),
        ErrorCode::InvalidCredentials
    );

    // Whatever was wrong, the answer comes after the same delay (1 s by default), so timing
    // tells a guesser nothing: not a right password, not a known user.
    let wrong_code = rampart_tests::wrong_code(&secret);
    for (user, password, otp) in [
        ("alice", "wrong-password", code.as_str()),
        ("mallory", "anything", code.as_str()),
        ("alice", ALICE.password, wrong_code.as_str()),
    ] {
        let began = Instant::now();
        assert_eq!(
            refused_code(login(&gw, user, password, otp).await),
            ErrorCode::InvalidCredentials
        );
        assert!(
            began.elapsed() >= Duration::from_millis(1000),
            "{user}: answered after {:?}",
            began.elapsed()
        );
    }

    let reasons = logged_reasons(&gw);
    for reason in ["empty_password", "wrong_password", "unknown_user", "wrong_code"] {
        assert!(reasons.iter().any(|r| r == reason), "log lacks {reason}: {reasons:?}");
    }
    // The code was never consumed by those failures: it still logs in.
    assert!(login(&gw, "alice", ALICE.password, &code).await.is_ok());
    let log = gw.log();
    for secret_text in [ALICE.password, SERVICE_PASSWORD, &secret, &code] {
        assert!(!log.contains(secret_text), "a secret reached the gateway log");
    }
}

#[tokio::test]
async fn hostile_usernames_match_nobody_and_case_variants_share_one_token() {
    let slapd = Slapd::start(None, "");
    let setup = Setup::new().await;
    let gw = setup.gateway(&[&slapd.url], "");
    let secret = enrol(&gw, &ALICE).await;
    let _ = enrol(&gw, &BOB).await;
    let code = oathtool_code(&secret, now());

    for hostile in [
        "*",
        "alice)(uid=*",
        "*)(|(uid=*",
        "ali*",
        "alice\0",
        "al\nice",
        "\u{1b}[31malice",
        "alice\\",
    ] {
        let result = login(&gw, hostile, ALICE.password, &code).await;
        assert_eq!(
            refused_code(result),
            ErrorCode::InvalidCredentials,
            "{hostile:?} must not log in"
        );
    }
    let first = login(&gw, "ALICE", ALICE.password, &code).await.unwrap();
    assert_eq!(first.user, "alice");
    // Same person, same token: the code just used is now a replay for every spelling.
    for spelling in ["alice", " alice ", "Alice"] {
        assert_eq!(
            refused_code(login(&gw, spelling, ALICE.password, &code).await),
            ErrorCode::InvalidCredentials
        );
    }
    let next = oathtool_code(&secret, now() + 30);
    assert_eq!(
        login(&gw, " alice ", ALICE.password, &next).await.unwrap().user,
        "alice"
    );
    let ids: Vec<_> = gw
        .log_events()
        .into_iter()
        .filter(|e| e["message"] == "login")
        .map(|e| e["user_id"].clone())
        .collect();
    assert_eq!(ids, [ALICE.uuid, ALICE.uuid]);
}

#[tokio::test]
async fn disabled_account_is_refused_even_with_the_right_password_and_code() {
    let slapd = Slapd::start(None, "");
    let setup = Setup::new().await;
    let gw = setup.gateway(&[&slapd.url], "");
    let secret = enrol(&gw, &CAROL).await;
    let code = oathtool_code(&secret, now());
    assert_eq!(
        refused_code(login(&gw, "carol", CAROL.password, &code).await),
        ErrorCode::InvalidCredentials
    );
    assert!(logged_reasons(&gw).iter().any(|r| r == "disabled"));
}

#[tokio::test]
async fn failover_to_a_second_server_and_fail_closed_on_a_hung_one() {
    // Two real servers with the same data; the first is stopped.
    let mut first = Slapd::start(None, "");
    let second = Slapd::start(None, "");
    let setup = Setup::new().await;
    let gw = setup.gateway(&[&first.url, &second.url], "");
    let secret = enrol(&gw, &ALICE).await;
    let (client, _) = alice_session(&gw, &secret).await;
    first.stop();
    let grant = login(&gw, "alice", ALICE.password, &oathtool_code(&secret, now() + 30)).await;
    assert!(grant.is_ok(), "login through the second server: {grant:?}");
    assert!(second.binds_for(&dn_of(&ALICE)) >= 1);

    // The session from before the outage still carries data.
    assert_eq!(
        echo_through(&client, "staff-app", b"still flowing").await,
        b"still flowing"
    );
    client.close().await;

    // A server that accepts TCP and never answers: refused within the configured timeouts.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("ldap://{}", hung.local_addr().unwrap());
    let held = std::thread::spawn(move || hung.incoming().take(8).flatten().collect::<Vec<_>>());
    let gw_hung = setup.gateway(&[&hung_url], "");
    let secret = enrol(&gw_hung, &ALICE).await;
    let started = Instant::now();
    let result = login(&gw_hung, "alice", ALICE.password, &oathtool_code(&secret, now())).await;
    let elapsed = started.elapsed();
    assert_eq!(
        refused_code(result),
        ErrorCode::TryLater,
        "a hung directory means 'try later', not 'wrong password'"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "refused after {elapsed:?}; configured 1 s connect + 2 s operation"
    );
    drop(held);
}

#[tokio::test]
async fn ldaps_and_starttls_with_the_right_ca_work_and_a_wrong_ca_fails_closed() {
    let ca = GatewayProc::new_ca();
    let certs_dir = tempfile::tempdir().unwrap();
    let ldap_cert = ca.issue_server(&["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (certs_dir.path().join("ldap.pem"), certs_dir.path().join("ldap.key"));
    ldap_cert.save(&cert, &key).unwrap();
    std::fs::write(certs_dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let other_ca = GatewayProc::new_ca();
    std::fs::write(certs_dir.path().join("wrong-ca.pem"), other_ca.cert_pem()).unwrap();
    let slapd = Slapd::start(Some(SlapdTls { cert, key }), "");
    let setup = Setup::new().await;
    let ca_file = |name: &str| format!("ca_file = \"{}\"", certs_dir.path().join(name).display());
    let ldaps = slapd.ldaps_url.clone().unwrap();

    let starttls = |ca: &str| format!("starttls = true\n{}", ca_file(ca));
    let cases = [
        (ldaps.as_str(), ca_file("ca.pem"), true),
        (slapd.url.as_str(), starttls("ca.pem"), true),
        (ldaps.as_str(), ca_file("wrong-ca.pem"), false),
        (slapd.url.as_str(), starttls("wrong-ca.pem"), false),
    ];
    for (url, extra, trusted) in cases {
        let gw = setup.gateway(&[url], &extra);
        let secret = enrol(&gw, &ALICE).await;
        let result = login(&gw, "alice", ALICE.password, &oathtool_code(&secret, now())).await;
        if trusted {
            assert!(result.is_ok(), "{url} {extra}: {result:?}\n{}", gw.log());
        } else {
            // A certificate that does not chain to ca_file fails closed: "try later", no login.
            assert_eq!(
                refused_code(result),
                ErrorCode::TryLater,
                "{url} with the wrong CA must fail closed"
            );
        }
    }
    assert_eq!(
        slapd.binds_for(&dn_of(&ALICE)),
        2,
        "no password crossed a connection with an untrusted certificate"
    );
}

#[tokio::test]
async fn check_directory_shows_what_the_gateway_sees() {
    let slapd = Slapd::start(None, "");
    let setup = Setup::new().await;
    let gw = setup.gateway(&[&slapd.url], "");
    let config = gw.dir.path().join("gateway.toml");
    let run = |user: &str, password: &str| {
        let mut cmd = std::process::Command::new(rampart_tests::bin("rampart-gateway"));
        cmd.args(["check-directory", "--password-stdin", "--user", user, "--config"])
            .arg(&config);
        rampart_tests::run_with_stdin(cmd, &format!("{password}\n"))
    };
    let ok = run(" Alice ", ALICE.password);
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(ok.status.success(), "{text}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(text.contains(&dn_of(&ALICE)), "{text}");
    assert!(text.contains(ALICE.uuid), "{text}");
    assert!(text.contains("staff, vpn-users"), "{text}");
    assert!(
        text.contains("enabled:   yes") && text.contains("password:  accepted"),
        "{text}"
    );

    let carol = run("carol", "wrong");
    let text = String::from_utf8_lossy(&carol.stdout).into_owned();
    assert!(!carol.status.success());
    assert!(text.contains("enabled:   no") && text.contains("REJECTED"), "{text}");
    assert!(!text.contains(CAROL.password) && !text.contains(SERVICE_PASSWORD));
}
