//! The readiness funnel on both backends: a campaign of 240 people at mixed steps, put in
//! through the store's own calls (registration codes, tokens activated, sessions, rehearsals
//! passed and failed), and the funnel read back counts exactly the people the test put at each
//! step; rehearsal sessions are no first connection, a failed rehearsal is no pass, a pending
//! token is no enrolment, and a group counts only its members.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rampart_store::prelude::*;
use rampart_store::readiness::{ReadinessRow, Rehearsal, RehearsalCheck, Step, funnel};
use rampart_store::registration::{Delivery, RegistrationCode, registration_code_hash};
use rampart_store::{SessionRecord, StoreError, TokenState};

const PEOPLE: usize = 240;
const CODE_AT: i64 = NOW + 10;
const ENROLLED_AT: i64 = NOW + 20;
const LOGIN_AT: i64 = NOW + 30;
const REHEARSED_AT: i64 = NOW + 40;
const LATER_AT: i64 = NOW + 50;
const READ_AT: i64 = NOW + 1_000;

/// What the test puts in for person `i`: the furthest step it means them to stand at (0: none,
/// 1..=5: the steps in order) and the twists along the way.
struct Plan {
    stage: usize,
    /// Enrolled at the desk: a token but never a registration code.
    desk: bool,
    in_campaign: bool,
}

fn plan(i: usize) -> Plan {
    let stage = i % 6;
    Plan {
        stage,
        desk: stage >= 2 && i.is_multiple_of(5),
        in_campaign: !i.is_multiple_of(3),
    }
}

fn session_for(id: &str, user_id: &str, at: i64) -> SessionRecord {
    let mut record = session(id, id.as_bytes());
    record.user_id = user_id.to_owned();
    record.username = user_id.to_owned();
    record.created_at = at;
    record.expires_at = at + 3_600;
    record
}

fn rehearsal(id: &str, user_id: &str, session_id: &str, at: i64, ok: &[bool]) -> Rehearsal {
    Rehearsal {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        session_id: Some(session_id.to_owned()),
        at,
        checks: ok
            .iter()
            .enumerate()
            .map(|(n, ok)| RehearsalCheck {
                resource: format!("resource-{n}"),
                ok: *ok,
                reason: (!ok).then(|| "the resource refused the connection".to_owned()),
            })
            .collect(),
        source: "192.0.2.7".to_owned(),
    }
}

/// Puts person `i` into the store as [`plan`] says.
async fn put(store: &dyn Store, i: usize) {
    let p = plan(i);
    let id = format!("u{i:03}");
    let groups: &[&str] = if p.in_campaign {
        &["campaign", "staff"]
    } else {
        &["staff"]
    };
    store
        .upsert_user(&user(&id, &format!("person{i:03}"), groups))
        .await
        .unwrap();
    if p.stage == 0 && i.is_multiple_of(12) {
        // A token issued but never activated is no enrolment.
        let sealed = key_ring().seal(&format!("t-{id}"), SEED).unwrap();
        store
            .insert_token(&token(&format!("t-{id}"), &id, sealed))
            .await
            .unwrap();
    }
    if p.stage >= 1 && !p.desk {
        let code = RegistrationCode {
            id: format!("rc-{id}"),
            user_id: id.clone(),
            code_hash: registration_code_hash(&id, "7K2M9QXD4HJNPRST"),
            created_at: CODE_AT,
            expires_at: CODE_AT + 86_400,
            created_by: "desk-anna".to_owned(),
            delivery: Delivery::Letter,
        };
        store.issue_registration_code(&code).await.unwrap();
    }
    if p.stage >= 2 {
        let sealed = key_ring().seal(&format!("t-{id}"), SEED).unwrap();
        store
            .insert_token(&token(&format!("t-{id}"), &id, sealed))
            .await
            .unwrap();
        store
            .set_token_state(&format!("t-{id}"), TokenState::Active, ENROLLED_AT)
            .await
            .unwrap();
    }
    if p.stage >= 3 {
        store
            .create_session(&session_for(&format!("s1-{id}"), &id, LOGIN_AT))
            .await
            .unwrap();
    }
    if p.stage == 3 && i % 4 == 3 {
        // A rehearsal where one resource did not open is no pass.
        store
            .record_rehearsal(&rehearsal(
                &format!("r0-{id}"),
                &id,
                &format!("s1-{id}"),
                REHEARSED_AT,
                &[true, false],
            ))
            .await
            .unwrap();
    }
    if p.stage >= 4 {
        store
            .record_rehearsal(&rehearsal(
                &format!("r1-{id}"),
                &id,
                &format!("s1-{id}"),
                REHEARSED_AT,
                &[true, true],
            ))
            .await
            .unwrap();
    }
    if p.stage == 4 && i.is_multiple_of(4) {
        // A second session only to rehearse again is no real connection.
        store
            .create_session(&session_for(&format!("s2-{id}"), &id, LATER_AT))
            .await
            .unwrap();
        store
            .record_rehearsal(&rehearsal(
                &format!("r2-{id}"),
                &id,
                &format!("s2-{id}"),
                LATER_AT + 5,
                &[false],
            ))
            .await
            .unwrap();
    }
    if p.stage == 5 {
        store
            .create_session(&session_for(&format!("s3-{id}"), &id, LATER_AT))
            .await
            .unwrap();
    }
}

/// What the test expects: people reaching each step and stuck at it, and not started, counted
/// from the plans.
fn expected(members: impl Fn(&Plan) -> bool) -> (Vec<usize>, Vec<usize>, usize) {
    let plans: Vec<Plan> = (0..PEOPLE).map(plan).filter(|p| members(p)).collect();
    let reached = (1..=5).map(|k| plans.iter().filter(|p| p.stage >= k).count()).collect();
    let stuck = (1..=5).map(|k| plans.iter().filter(|p| p.stage == k).count()).collect();
    let not_started = plans.iter().filter(|p| p.stage == 0).count();
    (reached, stuck, not_started)
}

fn counted(rows: &[ReadinessRow]) -> (Vec<usize>, Vec<usize>, usize) {
    let funnel = funnel(rows);
    assert_eq!(funnel.people, rows.len());
    (
        funnel.steps.iter().map(|s| s.reached).collect(),
        funnel.steps.iter().map(|s| s.stuck.len()).collect(),
        funnel.not_started.len(),
    )
}

async fn the_funnel_counts_what_was_put_in_for_a_campaign(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    for i in 0..PEOPLE {
        put(store.as_ref(), i).await;
    }

    let everyone = store.readiness(None, READ_AT).await.unwrap();
    assert_eq!(everyone.len(), PEOPLE);
    let (reached, stuck, not_started) = counted(&everyone);
    let (want_reached, want_stuck, want_not_started) = expected(|_| true);
    assert_eq!(reached, want_reached);
    assert_eq!(stuck, want_stuck);
    assert_eq!(not_started, want_not_started);
    // 240 people, 40 at each place: the funnel is not trivially flat.
    assert_eq!(reached, [200, 160, 120, 80, 40]);

    // Each person's row carries the times the test used, and nothing it did not put in.
    for (i, row) in everyone.iter().enumerate() {
        let p = plan(i);
        assert_eq!(row.username, format!("person{i:03}"), "sorted by username");
        let want = |from: usize, at: i64| (p.stage >= from).then_some(at);
        assert_eq!(row.code_issued_at, want(1, CODE_AT).filter(|_| !p.desk), "{row:?}");
        assert_eq!(row.enrolled_at, want(2, ENROLLED_AT), "{row:?}");
        assert_eq!(row.profile_set_up_at, want(3, LOGIN_AT), "{row:?}");
        assert_eq!(row.rehearsal_passed_at, want(4, REHEARSED_AT), "{row:?}");
        assert_eq!(row.first_connection_at, want(5, LATER_AT), "{row:?}");
        let furthest = row
            .furthest()
            .map(|s| Step::ALL.iter().position(|x| *x == s).unwrap() + 1);
        assert_eq!(furthest.unwrap_or(0), p.stage, "{row:?}");
        let groups: Vec<&str> = row.groups.iter().map(String::as_str).collect();
        assert_eq!(
            groups,
            if p.in_campaign {
                vec!["campaign", "staff"]
            } else {
                vec!["staff"]
            }
        );
    }

    // One group: only its members, counted the same way.
    let campaign = store.readiness(Some("campaign"), READ_AT).await.unwrap();
    assert_eq!(campaign.len(), (0..PEOPLE).filter(|i| plan(*i).in_campaign).count());
    assert!(campaign.iter().all(|row| row.groups.iter().any(|g| g == "campaign")));
    let (reached, stuck, not_started) = counted(&campaign);
    let (want_reached, want_stuck, want_not_started) = expected(|p| p.in_campaign);
    assert_eq!(
        (reached, stuck, not_started),
        (want_reached, want_stuck, want_not_started)
    );
    assert!(store.readiness(Some("nobody"), READ_AT).await.unwrap().is_empty());

    // Read as of before the rehearsals: nobody has rehearsed yet.
    let earlier = store.readiness(None, REHEARSED_AT - 1).await.unwrap();
    let (reached, _, _) = counted(&earlier);
    assert_eq!(reached, [200, 160, 120, 0, 0]);
}

async fn a_rehearsal_is_kept_with_what_each_resource_did(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    store.upsert_user(&user("u1", "alice", &["staff"])).await.unwrap();
    assert_eq!(store.latest_rehearsal("u1").await.unwrap(), None);
    let failed = rehearsal("r1", "u1", "s1", NOW, &[true, false]);
    store.record_rehearsal(&failed).await.unwrap();
    let passed = rehearsal("r2", "u1", "s1", NOW + 60, &[true, true]);
    store.record_rehearsal(&passed).await.unwrap();
    assert_eq!(store.latest_rehearsal("u1").await.unwrap(), Some(passed.clone()));
    let again = store.record_rehearsal(&passed).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let nobody = store
        .record_rehearsal(&rehearsal("r3", "nobody", "s1", NOW, &[true]))
        .await;
    assert!(matches!(nobody, Err(StoreError::NotFound)), "{nobody:?}");
    // Only the passed one counts, and the session it ran in is no first connection.
    let rows = store.readiness(None, NOW + 3_600).await.unwrap();
    assert_eq!(rows[0].rehearsal_passed_at, Some(NOW + 60));
    assert_eq!(rows[0].first_connection_at, None);
}

both_backends!(
    the_funnel_counts_what_was_put_in_for_a_campaign,
    a_rehearsal_is_kept_with_what_each_resource_did
);
