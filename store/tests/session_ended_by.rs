//! Who ended a session is kept with the end: an operator's kill (one session or all of a
//! person's), a token change made by an operator, and the session limit's rule all reach the
//! feed of session ends, so every gateway's session-end record names the same actor; ending an
//! ended session again keeps the first ender.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rampart_store::{EndedBy, TokenState};

fn enders(ended: &[rampart_store::EndedSession]) -> Vec<(String, Option<EndedBy>)> {
    ended.iter().map(|e| (e.id.clone(), e.ended_by.clone())).collect()
}

async fn every_end_names_who_ended_it(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    for (id, hash) in [("s1", 0x01u8), ("s2", 0x02), ("s3", 0x03), ("s4", 0x04)] {
        let mut s = session(id, &[hash; 32]);
        s.token_id = Some("t1".to_owned());
        store.create_session(&s).await.unwrap();
    }
    let start = store.session_end_seq().await.unwrap();

    let kill = EndedBy::Operator("desk-ann".to_owned());
    store
        .end_session_by("s1", "admin_kill", Some(&kill), NOW + 1)
        .await
        .unwrap();
    // A second end keeps the first time, reason and ender.
    store
        .end_session_by("s1", "idle", Some(&EndedBy::Rule("idle".to_owned())), NOW + 2)
        .await
        .unwrap();
    store
        .end_session_by("s2", "idle", Some(&EndedBy::Rule("idle".to_owned())), NOW + 3)
        .await
        .unwrap();
    store.end_session("s3", "logout", NOW + 4).await.unwrap();
    let ended = store.sessions_ended_after(start).await.unwrap();
    assert_eq!(
        enders(&ended),
        [
            ("s1".to_owned(), Some(kill.clone())),
            ("s2".to_owned(), Some(EndedBy::Rule("idle".to_owned()))),
            ("s3".to_owned(), None),
        ]
    );
    assert_eq!(ended[0].reason, "admin_kill");

    // A revocation by an operator names them on the sessions it ends.
    let cursor = ended.last().unwrap().seq;
    store
        .end_token("t1", TokenState::Revoked, "helpdesk-bob", "left the bank", NOW + 10)
        .await
        .unwrap();
    let ended = store.sessions_ended_after(cursor).await.unwrap();
    assert_eq!(
        enders(&ended),
        [("s4".to_owned(), Some(EndedBy::Operator("helpdesk-bob".to_owned())))]
    );

    // A kill of everyone's sessions names the operator too.
    let cursor = ended[0].seq;
    let mut later = session("s5", &[0x05; 32]);
    later.created_at = NOW + 20;
    store.create_session(&later).await.unwrap();
    let ids = store
        .end_user_sessions_by("u1", "admin_kill", Some(&kill), NOW + 30)
        .await
        .unwrap();
    assert_eq!(ids, ["s5"]);
    let ended = store.sessions_ended_after(cursor).await.unwrap();
    assert_eq!(enders(&ended), [("s5".to_owned(), Some(kill))]);
}

async fn the_session_limit_names_its_rule(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    let start = store.session_end_seq().await.unwrap();
    let first = session("s1", &[0x01; 32]);
    store.create_session(&first).await.unwrap();
    let mut second = session("s2", &[0x02; 32]);
    second.created_at = NOW + 1;
    let ended = store
        .create_session_within(&second, 1, "session_limit", NOW + 1)
        .await
        .unwrap();
    assert_eq!(ended, ["s1"]);
    let fed = store.sessions_ended_after(start).await.unwrap();
    assert_eq!(
        enders(&fed),
        [("s1".to_owned(), Some(EndedBy::Rule("session_limit".to_owned())))]
    );
}

#[test]
fn the_stored_form_reads_back_and_reads_well() {
    for ender in [
        EndedBy::Operator("desk-ann".to_owned()),
        EndedBy::Rule("idle".to_owned()),
        EndedBy::Person("alice".to_owned()),
    ] {
        assert_eq!(EndedBy::from_stored(&ender.to_stored()), Some(ender.clone()));
    }
    assert_eq!(EndedBy::Operator("desk-ann".into()).to_string(), "operator desk-ann");
    assert_eq!(EndedBy::from_stored("nobody"), None);
    assert_eq!(EndedBy::from_stored("wizard:merlin"), None);
}

both_backends!(every_end_names_who_ended_it, the_session_limit_names_its_rule);
