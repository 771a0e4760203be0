//! Registration codes and self-service enrolments on both backends: a code works only for its
//! person, only while live, and wrong tries spend it; a newer code withdraws the older; an
//! enrolment becomes the person's active token once, with its code redeemed and the confirming
//! step used, even when two confirmations race from two connections; an expired enrolment, or
//! one whose code was replaced, writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rampart_store::prelude::*;
use rampart_store::registration::{
    CodeCheck, CodeState, Confirmation, Confirmed, Delivery, Enrolment, MAX_REGISTRATION_FAILURES, RegistrationCode,
    registration_code_hash,
};
use rampart_store::{IssueMode, StoreError, TokenState};

const CODE: &str = "7K2M9QXD4HJNPRST";
const OTHER: &str = "0000111122223333";

fn code(id: &str, user_id: &str, typed: &str, created_at: i64) -> RegistrationCode {
    RegistrationCode {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        code_hash: registration_code_hash(user_id, typed),
        created_at,
        expires_at: created_at + 7 * 86_400,
        created_by: "desk-anna".to_owned(),
        delivery: Delivery::Letter,
    }
}

/// A confirmation at `step`, the seed sealed again for the token `token_of(enrolment)`.
fn confirmed(step: u64, enrolment: &str) -> Confirmed {
    Confirmed {
        step,
        sealed: key_ring().seal(&format!("token-of-{enrolment}"), SEED).unwrap(),
        mode: IssueMode::Replace,
    }
}

fn enrolment(id: &str, user_id: &str, code_id: &str, token_id: &str, now: i64) -> Enrolment {
    Enrolment {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        registration_code: code_id.to_owned(),
        token_id: token_id.to_owned(),
        params: rampart_core::totp::TotpParams::default(),
        sealed: key_ring().seal(token_id, SEED).unwrap(),
        created_at: now,
        expires_at: now + 900,
        failures: 0,
    }
}

async fn actions(store: &dyn Store, user_id: &str) -> Vec<String> {
    let events = store.token_events(Some(user_id), 100).await.unwrap();
    events.into_iter().map(|e| e.action).collect()
}

async fn a_code_works_for_its_person_only_and_wrong_passwords_spend_it(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    store.upsert_user(&user("u1", "alice", &[])).await.unwrap();
    store.upsert_user(&user("u2", "bob", &[])).await.unwrap();
    let unknown = store.issue_registration_code(&code("rc0", "nobody", CODE, NOW)).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    store
        .issue_registration_code(&code("rc1", "u1", CODE, NOW))
        .await
        .unwrap();

    let alice = registration_code_hash("u1", CODE);
    assert_eq!(
        store.check_registration_code("u1", &alice, NOW + 1).await.unwrap(),
        CodeCheck::Valid { code_id: "rc1".into() }
    );
    // The same code typed by bob is worthless: he holds no code at all.
    let as_bob = registration_code_hash("u2", CODE);
    assert_eq!(
        store.check_registration_code("u2", &as_bob, NOW + 1).await.unwrap(),
        CodeCheck::NoLiveCode
    );
    // A wrong code is not counted: anyone knowing the username could otherwise spend it.
    let wrong = registration_code_hash("u1", OTHER);
    for _ in 0..2 * MAX_REGISTRATION_FAILURES {
        assert_eq!(
            store.check_registration_code("u1", &wrong, NOW + 2).await.unwrap(),
            CodeCheck::Wrong {
                tries_left: MAX_REGISTRATION_FAILURES
            }
        );
    }
    // Wrong passwords given with the right code are, and the limit spends it.
    for left in (0..MAX_REGISTRATION_FAILURES).rev() {
        assert_eq!(
            store.fail_registration_code("u1", NOW + 3).await.unwrap(),
            CodeCheck::Wrong { tries_left: left }
        );
    }
    assert_eq!(
        store.check_registration_code("u1", &alice, NOW + 4).await.unwrap(),
        CodeCheck::NoLiveCode,
        "spent: the right code no longer works"
    );
    let codes = store.registration_codes("u1", 10, NOW + 4).await.unwrap();
    assert_eq!(codes.len(), 1);
    assert_eq!(
        (codes[0].state, codes[0].failures),
        (CodeState::Withdrawn, MAX_REGISTRATION_FAILURES)
    );
    assert_eq!(
        actions(store.as_ref(), "u1").await,
        ["registration_code_issued", "registration_code_spent"]
    );
}

async fn a_newer_code_withdraws_the_older_and_codes_expire(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    store.upsert_user(&user("u1", "alice", &[])).await.unwrap();
    store
        .issue_registration_code(&code("rc1", "u1", CODE, NOW))
        .await
        .unwrap();
    store
        .issue_registration_code(&code("rc2", "u1", OTHER, NOW + 10))
        .await
        .unwrap();
    let old = registration_code_hash("u1", CODE);
    let new = registration_code_hash("u1", OTHER);
    assert!(matches!(
        store.check_registration_code("u1", &old, NOW + 11).await.unwrap(),
        CodeCheck::Wrong { .. }
    ));
    assert_eq!(
        store.check_registration_code("u1", &new, NOW + 12).await.unwrap(),
        CodeCheck::Valid { code_id: "rc2".into() }
    );
    let week_later = NOW + 10 + 7 * 86_400;
    assert_eq!(
        store.check_registration_code("u1", &new, week_later).await.unwrap(),
        CodeCheck::NoLiveCode
    );
    let states: Vec<CodeState> = store
        .registration_codes("u1", 10, week_later)
        .await
        .unwrap()
        .iter()
        .map(|c| c.state)
        .collect();
    assert_eq!(states, [CodeState::Expired, CodeState::Withdrawn]);
}

async fn a_confirmed_enrolment_is_the_active_token_and_its_code_is_used(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    let old = user_with_token(store.as_ref(), "u1", "t-old").await;
    let alice = user("u1", "u1", &["staff"]);
    store
        .issue_registration_code(&code("rc1", "u1", CODE, NOW))
        .await
        .unwrap();
    store
        .start_enrolment(&enrolment("e1", "u1", "rc1", "t-new", NOW))
        .await
        .unwrap();
    // Starting again replaces the earlier enrolment: one per person.
    store
        .start_enrolment(&enrolment("e2", "u1", "rc1", "t-new2", NOW + 5))
        .await
        .unwrap();
    assert_eq!(store.enrolment("e1").await.unwrap(), None);
    assert_eq!(store.fail_enrolment("e2", NOW + 6).await.unwrap(), Some(4));
    assert!(
        store.token_by_id("t-new2").await.unwrap().is_none(),
        "not a token before it is confirmed"
    );

    let step = 56_666_668;
    assert_eq!(
        store
            .confirm_enrolment("e2", &alice, &confirmed(step, "e2"), NOW + 7)
            .await
            .unwrap(),
        Confirmation::Confirmed {
            replaced: Some(old.id.clone())
        }
    );
    let token = store.token_by_id("t-new2").await.unwrap().unwrap();
    assert_eq!((token.state, token.last_step), (TokenState::Active, Some(step)));
    assert_eq!(
        store.token_by_id("t-old").await.unwrap().unwrap().state,
        TokenState::Revoked
    );
    assert_eq!(store.enrolment("e2").await.unwrap(), None);
    let codes = store.registration_codes("u1", 10, NOW + 7).await.unwrap();
    assert_eq!(codes[0].state, CodeState::Used);
    // Once only.
    assert_eq!(
        store
            .confirm_enrolment("e2", &alice, &confirmed(step + 1, "e2"), NOW + 8)
            .await
            .unwrap(),
        Confirmation::Gone
    );
    let history = actions(store.as_ref(), "u1").await;
    assert_eq!(
        history[history.len() - 4..],
        ["enrolment_started", "replaced", "issued", "enrolled"],
        "{history:?}"
    );
}

async fn an_expired_or_orphaned_enrolment_writes_nothing(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    store.upsert_user(&user("u1", "alice", &[])).await.unwrap();
    let alice = user("u1", "alice", &[]);
    store
        .issue_registration_code(&code("rc1", "u1", CODE, NOW))
        .await
        .unwrap();
    store
        .start_enrolment(&enrolment("e1", "u1", "rc1", "t1", NOW))
        .await
        .unwrap();
    assert_eq!(
        store
            .confirm_enrolment("e1", &alice, &confirmed(1, "e1"), NOW + 901)
            .await
            .unwrap(),
        Confirmation::Gone,
        "expired"
    );
    assert_eq!(store.fail_enrolment("e1", NOW + 901).await.unwrap(), None);
    // Expired, it is removed with its sealed seed; one still running is kept.
    assert_eq!(
        store.purge_enrolments(NOW + 900).await.unwrap(),
        0,
        "not yet expired at its end"
    );
    assert_eq!(store.purge_enrolments(NOW + 901).await.unwrap(), 1);
    assert_eq!(store.enrolment("e1").await.unwrap(), None);
    // The desk issued a newer code meanwhile: the enrolment opened with the old one is void.
    store
        .start_enrolment(&enrolment("e2", "u1", "rc1", "t2", NOW + 1000))
        .await
        .unwrap();
    store
        .issue_registration_code(&code("rc2", "u1", OTHER, NOW + 1001))
        .await
        .unwrap();
    assert_eq!(
        store
            .confirm_enrolment("e2", &alice, &confirmed(1, "e2"), NOW + 1002)
            .await
            .unwrap(),
        Confirmation::Gone
    );
    assert!(store.token_by_id("t2").await.unwrap().is_none());
    assert!(
        store.enrolment("e2").await.unwrap().is_some(),
        "the refused confirmation deleted nothing"
    );
    // Wrong first codes drop it.
    for _ in 0..4 {
        store.fail_enrolment("e2", NOW + 1003).await.unwrap();
    }
    assert_eq!(store.fail_enrolment("e2", NOW + 1004).await.unwrap(), Some(0));
    assert_eq!(store.enrolment("e2").await.unwrap(), None);
    assert!(
        actions(store.as_ref(), "u1")
            .await
            .contains(&"enrolment_spent".to_owned())
    );
}

async fn two_confirmations_at_once_make_one_token(backend: Backend) {
    let (db, store) = fresh_store(backend).await;
    let other = db.open().await;
    store.upsert_user(&user("u1", "alice", &[])).await.unwrap();
    let alice = user("u1", "alice", &[]);
    store
        .issue_registration_code(&code("rc1", "u1", CODE, NOW))
        .await
        .unwrap();
    store
        .start_enrolment(&enrolment("e1", "u1", "rc1", "t1", NOW))
        .await
        .unwrap();
    let confirmation = confirmed(10, "e1");
    let (a, b) = tokio::join!(
        store.confirm_enrolment("e1", &alice, &confirmation, NOW + 1),
        other.confirm_enrolment("e1", &alice, &confirmation, NOW + 1)
    );
    let confirmed = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|c| matches!(c, Confirmation::Confirmed { .. }))
        .count();
    assert_eq!(confirmed, 1);
    let enrolled = actions(store.as_ref(), "u1")
        .await
        .iter()
        .filter(|a| *a == "enrolled")
        .count();
    assert_eq!(enrolled, 1);
}

async fn a_live_token_is_kept_under_dual_control_and_revoking_it_withdraws_codes(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    user_with_token(store.as_ref(), "u1", "t-old").await;
    let alice = user("u1", "u1", &[]);
    store
        .issue_registration_code(&code("rc1", "u1", CODE, NOW))
        .await
        .unwrap();
    store
        .start_enrolment(&enrolment("e1", "u1", "rc1", "t-new", NOW))
        .await
        .unwrap();
    let mut keep = confirmed(9, "e1");
    keep.mode = IssueMode::New;
    assert_eq!(
        store.confirm_enrolment("e1", &alice, &keep, NOW + 1).await.unwrap(),
        Confirmation::Gone,
        "a live token is not replaced when dual control holds replacements back"
    );
    assert_eq!(
        store.token_by_id("t-old").await.unwrap().unwrap().state,
        TokenState::Pending
    );
    assert!(store.enrolment("e1").await.unwrap().is_some(), "nothing was written");
    store
        .end_token("t-old", TokenState::Revoked, "desk-anna", "left", NOW + 2)
        .await
        .unwrap();
    assert_eq!(store.enrolment("e1").await.unwrap(), None);
    let codes = store.registration_codes("u1", 10, NOW + 2).await.unwrap();
    assert_eq!(codes[0].state, CodeState::Withdrawn);
    assert!(
        actions(store.as_ref(), "u1")
            .await
            .contains(&"registration_codes_withdrawn".to_owned())
    );
}

both_backends!(
    a_live_token_is_kept_under_dual_control_and_revoking_it_withdraws_codes,
    a_code_works_for_its_person_only_and_wrong_passwords_spend_it,
    a_newer_code_withdraws_the_older_and_codes_expire,
    a_confirmed_enrolment_is_the_active_token_and_its_code_is_used,
    an_expired_or_orphaned_enrolment_writes_nothing,
    two_confirmations_at_once_make_one_token,
);
