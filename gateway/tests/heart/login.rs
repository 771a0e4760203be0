//! Login: what a person is granted, every refusal as the client sees it (one answer) and as the
//! audit trail keeps it (the real reason), codes at the edges of the window on a moved clock,
//! replay, lockout, temporary codes, and the gates in front of the checks.

use crate::harness::{Gate, Lab, STEP_SECS, closed_by_gateway, open_refusal, refusal_of};
use rampart_core::ErrorCode;
use rampart_core::secret::Sensitive;
use std::sync::Arc;
use std::time::Duration;

const POLICY: &str = r#"
[[resource]]
name = "echo"
target = "{echo}"
allow_groups = ["staff"]

[[resource]]
name = "payroll"
target = "{echo}"
allow_users = ["bob"]

[[resource]]
name = "wiki"
target = "{echo}"

[[rule]]
name = "staff-wiki"
resources = ["wiki"]
groups = ["staff"]
"#;

/// The close code of a connection with too many failed logins.
const CLOSE_TOO_MANY_FAILURES: u64 = 0x11;

fn typed(text: &str) -> Sensitive<String> {
    Sensitive::new(text.to_owned())
}

/// A six-digit code that is not `right`.
fn other_code(right: &Sensitive<String>) -> Sensitive<String> {
    let wrong = (right.expose().parse::<u32>().unwrap() + 1) % 1_000_000;
    Sensitive::new(format!("{wrong:06}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_grants_the_resources_the_policy_allows_and_is_on_file() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let (client, grant) = lab.login(&alice).await;
    assert_eq!(grant.user, "alice");
    let mut names: Vec<&str> = grant.resources.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["echo", "wiki"], "payroll is bob's only");
    let lifetime = i64::try_from(lab.settings.session_lifetime_secs).unwrap();
    assert_eq!(
        grant.expires_at,
        lab.now() + lifetime,
        "the session ends one lifetime from now"
    );
    assert!(grant.ticket.is_some(), "a login with a key can be resumed");
    let record = lab
        .audit_record(|r| r["class_uid"] == 3002 && r["activity_id"] == 1 && r["status"] == "Success")
        .await;
    assert_eq!(record["session"]["uid"], grant.session_id.as_str());
    assert_eq!(record["user"]["name"], "alice");
    assert_eq!(record["user"]["uid"], alice.id.as_str());
    assert!(client.is_open(), "the connection carries the session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_is_told_invalid_credentials_and_the_record_says_unknown_user() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let refused = lab.try_login("mallory", typed("guess"), typed("123456")).await;
    assert_eq!(refused.unwrap_err(), ErrorCode::InvalidCredentials);
    assert_eq!(
        lab.refused_login_record("mallory").await["status_detail"],
        "unknown_user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_told_invalid_credentials_and_the_record_says_wrong_password() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let refused = lab.try_login("alice", typed("not it"), lab.code_for(&alice)).await;
    assert_eq!(refused.unwrap_err(), ErrorCode::InvalidCredentials);
    let record = lab.refused_login_record("alice").await;
    assert_eq!(record["status_detail"], "wrong_password");
    assert_eq!(record["user"]["uid"], alice.id.as_str(), "the person reached is named");
    // The code was never looked at, so it still works.
    lab.login(&alice).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_person_is_told_invalid_credentials_and_the_record_says_disabled() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    lab.disable(&alice).await;
    let refused = lab.try_login("alice", alice.password(), lab.code_for(&alice)).await;
    assert_eq!(refused.unwrap_err(), ErrorCode::InvalidCredentials);
    assert_eq!(lab.refused_login_record("alice").await["status_detail"], "disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_without_a_token_is_told_invalid_credentials_and_the_record_says_no_token() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let carol = lab.person_without_token("carol", "carol pw", &["staff"]).await;
    let refused = lab.try_login("carol", carol.password(), typed("123456")).await;
    assert_eq!(refused.unwrap_err(), ErrorCode::InvalidCredentials);
    assert_eq!(lab.refused_login_record("carol").await["status_detail"], "no_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_is_told_invalid_credentials_and_the_record_says_wrong_code() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let wrong = other_code(&lab.code_for(&alice));
    let refused = lab.try_login("alice", alice.password(), wrong).await;
    assert_eq!(refused.unwrap_err(), ErrorCode::InvalidCredentials);
    assert_eq!(lab.refused_login_record("alice").await["status_detail"], "wrong_code");
    let token = lab.store().live_token_for_user(&alice.id).await.unwrap().unwrap();
    assert_eq!(token.failures, 1, "the wrong code counts against the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_used_once_is_refused_the_second_time() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let code = lab.code_for(&alice);
    lab.try_login("alice", alice.password(), code.clone()).await.unwrap();
    let again = lab.try_login("alice", alice.password(), code).await;
    assert_eq!(again.unwrap_err(), ErrorCode::InvalidCredentials);
    assert_eq!(
        lab.refused_login_record("alice").await["status_detail"],
        "code_replayed"
    );
    // Half a step later the code is still inside the window, and still spent.
    lab.advance(Duration::from_secs(STEP_SECS / 2 + 1));
    let later = lab.try_login("alice", alice.password(), lab.code_at(&alice, -1)).await;
    assert_eq!(later.unwrap_err(), ErrorCode::InvalidCredentials);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_up_to_the_window_either_side_are_accepted() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let window = i64::from(lab.settings.totp_window);
    assert!(window >= 1);
    let ahead = lab.person("ahead", "ahead pw", &["staff"]).await;
    let behind = lab.person("behind", "behind pw", &["staff"]).await;
    lab.try_login("ahead", ahead.password(), lab.code_at(&ahead, window))
        .await
        .expect("a phone `window` steps ahead is accepted");
    lab.try_login("behind", behind.password(), lab.code_at(&behind, -window))
        .await
        .expect("a phone `window` steps behind is accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_one_step_beyond_the_window_are_refused_and_placed_in_time() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let window = i64::from(lab.settings.totp_window);
    let ahead = lab.person("ahead", "ahead pw", &["staff"]).await;
    let behind = lab.person("behind", "behind pw", &["staff"]).await;
    let refused = lab
        .try_login("ahead", ahead.password(), lab.code_at(&ahead, window + 1))
        .await;
    assert_eq!(refused.unwrap_err(), ErrorCode::InvalidCredentials);
    let refused = lab
        .try_login("behind", behind.password(), lab.code_at(&behind, -window - 1))
        .await;
    assert_eq!(refused.unwrap_err(), ErrorCode::InvalidCredentials);
    let step = i64::try_from(STEP_SECS).unwrap();
    let record = lab.refused_login_record("ahead").await;
    assert_eq!(
        record["status_detail"],
        format!("wrong_code; code_offset_secs=+{}", (window + 1) * step),
        "the record says how far ahead the phone is"
    );
    let record = lab.refused_login_record("behind").await;
    assert_eq!(
        record["status_detail"],
        format!("wrong_code; code_offset_secs=-{}", (window + 1) * step)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_shown_now_works_until_the_clock_passes_the_window() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let window = u64::from(lab.settings.totp_window);
    let early = lab.person("early", "early pw", &["staff"]).await;
    let late = lab.person("late", "late pw", &["staff"]).await;
    let early_code = lab.code_for(&early);
    let late_code = lab.code_for(&late);
    lab.advance(Duration::from_secs(window * STEP_SECS));
    lab.try_login("early", early.password(), early_code)
        .await
        .expect("accepted `window` steps later");
    lab.advance(Duration::from_secs(STEP_SECS));
    let refused = lab.try_login("late", late.password(), late_code).await;
    assert_eq!(
        refused.unwrap_err(),
        ErrorCode::InvalidCredentials,
        "one step more is too late"
    );
    assert!(
        lab.refused_login_record("late").await["status_detail"]
            .as_str()
            .unwrap()
            .starts_with("wrong_code"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_lock_the_token_and_then_the_right_code_hears_token_locked() {
    let lab = Lab::start(POLICY, |s| s.max_token_failures = 3).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    for _ in 0..3 {
        let wrong = other_code(&lab.code_for(&alice));
        let refused = lab.try_login("alice", alice.password(), wrong).await;
        assert_eq!(
            refused.unwrap_err(),
            ErrorCode::InvalidCredentials,
            "a wrong code is only wrong"
        );
    }
    let refused = lab.try_login("alice", alice.password(), lab.code_for(&alice)).await;
    assert_eq!(refused.unwrap_err(), ErrorCode::TokenLocked);
    let locked = lab
        .audit_record(|r| r["class_uid"] == 3001 && r["activity_id"] == 9)
        .await;
    assert_eq!(locked["user"]["uid"], alice.id.as_str());
    // A password guesser with a wrong code still learns nothing.
    let wrong = other_code(&lab.code_for(&alice));
    let refused = lab.try_login("alice", alice.password(), wrong).await;
    assert_eq!(refused.unwrap_err(), ErrorCode::InvalidCredentials);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_code_works_once_and_only_for_its_person() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let bob = lab.person("bob", "bob pw", &[]).await;
    let code = lab.temp_code(&alice).await;
    let refused = lab.try_login("bob", bob.password(), code.clone()).await;
    assert_eq!(refused.unwrap_err(), ErrorCode::InvalidCredentials, "bound to alice");
    let grant = lab.try_login("alice", alice.password(), code.clone()).await.unwrap();
    assert_eq!(grant.user, "alice");
    let again = lab.try_login("alice", alice.password(), code).await;
    assert_eq!(again.unwrap_err(), ErrorCode::InvalidCredentials);
    assert_eq!(
        lab.refused_login_record("alice").await["status_detail"],
        "wrong_temporary_code"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_is_not_a_username_is_refused_before_the_directory() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let refused = lab.try_login("al ice", typed("pw"), typed("123456")).await;
    assert_eq!(refused.unwrap_err(), ErrorCode::InvalidCredentials);
    let record = lab.refused_login_record("al ice").await;
    assert!(
        record["status_detail"].as_str().unwrap().starts_with("bad_username"),
        "{}",
        record["status_detail"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_failed_logins_close_the_connection() {
    let lab = Lab::start(POLICY, |s| s.max_login_attempts_per_connection = 2).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let client = lab.client().await;
    for _ in 0..2 {
        let refused = refusal_of(client.login("alice", typed("not it"), lab.code_for(&alice)).await);
        assert_eq!(refused.unwrap_err(), ErrorCode::InvalidCredentials);
    }
    let (code, reason) = closed_by_gateway(&client).await;
    assert_eq!(code, CLOSE_TOO_MANY_FAILURES);
    assert!(reason.contains("too many failed logins"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_beyond_the_slots_and_queue_is_told_busy() {
    let gate = Arc::new(Gate::default());
    let guarded = gate.clone();
    let lab = Lab::start_with_directory(
        POLICY,
        |s| {
            s.max_logins_in_progress = 1;
            s.login_queue = 0;
        },
        move |local| guarded.guard(local),
    )
    .await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let bob = lab.person("bob", "bob pw", &[]).await;
    let first = lab.client().await;
    let code = lab.code_for(&alice);
    let in_progress = tokio::spawn(async move {
        let grant = first.login("alice", Sensitive::new("alice pw".into()), code).await;
        (first, grant)
    });
    gate.arrived().await;
    let busy = lab.try_login("bob", bob.password(), lab.code_for(&bob)).await;
    assert_eq!(busy.unwrap_err(), ErrorCode::Busy);
    let record = lab
        .audit_record(|r| r["class_uid"] == 3002 && r["status_detail"] == "busy")
        .await;
    assert_eq!(record["user"]["name"], "bob");
    gate.open();
    let (_first, grant) = in_progress.await.unwrap();
    assert_eq!(grant.unwrap().user, "alice", "the login holding the slot completes");
    lab.try_login("bob", bob.password(), lab.code_for(&bob))
        .await
        .expect("with the slot free, bob gets in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_does_not_log_in_by_the_deadline_is_closed() {
    let lab = Lab::start(POLICY, |s| s.login_deadline_secs = 1).await;
    let client = lab.client().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), client.closed()).await;
    assert!(client.closed_by_login_deadline(), "closed for the login deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_opened_before_login_is_refused() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let client = lab.client().await;
    assert_eq!(open_refusal(&client, "echo").await, ErrorCode::NotAuthenticated);
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    client
        .login("alice", alice.password(), lab.code_for(&alice))
        .await
        .expect("the connection can still log in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_clock_drifts_off_the_databases_says_try_later_and_checks_nothing() {
    let lab = Lab::start(POLICY, |settings| {
        settings.clock_check_secs = 1;
        settings.max_clock_skew_ms = 60_000;
    })
    .await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    lab.login(&alice).await;
    // Eleven minutes fast: beyond the bound at the next check, within a second. Until then a
    // wrong password is refused as such; once the check has run, before anything is checked.
    lab.advance(Duration::from_secs(660));
    let mut answer = Ok(());
    for _ in 0..20 {
        answer = match lab
            .try_login("alice", typed("not her password"), lab.code_for(&alice))
            .await
        {
            Err(ErrorCode::TryLater) => {
                answer = Ok(());
                break;
            }
            Err(other) => Err(other),
            Ok(_) => panic!("a wrong password logged in"),
        };
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(answer, Ok(()), "the clock check never noticed");
    let refused = lab.try_login("alice", alice.password(), lab.code_for(&alice)).await;
    assert_eq!(
        refused.unwrap_err(),
        ErrorCode::TryLater,
        "no code is checked on a wrong clock"
    );
    let skew = lab
        .audit_record(|r| r["class_uid"] == 3002 && r["status_detail"] == "clock_skew")
        .await;
    assert_eq!(skew["user"]["name"], "alice", "{skew}");
    let token = lab.store().live_token_for_user(&alice.id).await.unwrap().unwrap();
    assert_eq!(token.failures, 0, "nothing counted against the token");
}
