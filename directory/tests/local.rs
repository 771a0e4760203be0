//! The local directory against a real SQLite store.
#![allow(clippy::unwrap_used, clippy::panic)]

use rampart_core::secret::Sensitive;
use rampart_directory::{Directory, DirectoryError, LocalDirectory, RejectReason, hash_password};
use rampart_store::{SqliteStore, Store, UserRecord};
use std::sync::Arc;

async fn directory_with(users: &[(&str, &str, bool)]) -> (tempfile::TempDir, LocalDirectory) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    for (i, (name, password, enabled)) in users.iter().enumerate() {
        store
            .upsert_user(&UserRecord {
                id: format!("id-{i}"),
                username: (*name).into(),
                display_name: name.to_uppercase(),
                password_hash: Some(hash_password(password).unwrap()),
                enabled: *enabled,
                groups: vec!["staff".into()],
                created_at: 0,
            })
            .await
            .unwrap();
    }
    (dir, LocalDirectory::new(store).unwrap())
}

fn pw(s: &str) -> Sensitive<String> {
    Sensitive::new(s.to_owned())
}

fn reason(result: Result<rampart_directory::DirectoryUser, DirectoryError>) -> RejectReason {
    match result {
        Err(DirectoryError::Rejected(rejection)) => rejection.reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn right_password_gives_the_stable_id_and_groups() {
    let (_dir, d) = directory_with(&[("alice", "s3cret-pass", true)]).await;
    let user = d.authenticate("alice", &pw("s3cret-pass")).await.unwrap();
    assert_eq!(user.stable_id, "id-0");
    assert_eq!(user.groups, ["staff"]);
}

#[tokio::test]
async fn every_refusal_has_its_reason() {
    let (_dir, d) = directory_with(&[("alice", "s3cret-pass", true), ("bob", "bob-pass", false)]).await;
    assert_eq!(
        reason(d.authenticate("alice", &pw("wrong")).await),
        RejectReason::WrongPassword
    );
    assert_eq!(
        reason(d.authenticate("nobody", &pw("x")).await),
        RejectReason::UnknownUser
    );
    assert_eq!(
        reason(d.authenticate("bob", &pw("bob-pass")).await),
        RejectReason::Disabled
    );
    for blank in ["", " ", "\t\n"] {
        assert_eq!(
            reason(d.authenticate("alice", &pw(blank)).await),
            RejectReason::EmptyPassword
        );
    }
}

#[tokio::test]
async fn refusals_after_the_lookup_name_the_person_reached() {
    let (_dir, d) = directory_with(&[("alice", "s3cret-pass", true), ("bob", "bob-pass", false)]).await;
    let reached = |result: Result<rampart_directory::DirectoryUser, DirectoryError>| match result {
        Err(DirectoryError::Rejected(rejection)) => rejection.person.map(|p| (p.stable_id, p.username)),
        other => panic!("expected a rejection, got {other:?}"),
    };
    let alice = Some(("id-0".to_owned(), "alice".to_owned()));
    assert_eq!(reached(d.authenticate("alice", &pw("wrong")).await), alice);
    assert_eq!(
        reached(d.authenticate("bob", &pw("bob-pass")).await),
        Some(("id-1".to_owned(), "bob".to_owned()))
    );
    assert_eq!(reached(d.authenticate("nobody", &pw("x")).await), None);
    assert_eq!(
        reached(d.authenticate("alice", &pw(" ")).await),
        None,
        "refused before the lookup"
    );
}

#[tokio::test]
async fn lookup_hides_disabled_accounts() {
    let (_dir, d) = directory_with(&[("alice", "a-pass", true), ("bob", "b-pass", false)]).await;
    assert!(d.lookup("alice").await.unwrap().is_some());
    assert!(d.lookup("bob").await.unwrap().is_none());
    assert!(d.lookup("carol").await.unwrap().is_none());
}

async fn directory_with_groups(users: &[(&str, bool, &[&str])]) -> (tempfile::TempDir, LocalDirectory) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    for (name, enabled, groups) in users {
        store
            .upsert_user(&UserRecord {
                id: format!("id-{name}"),
                username: (*name).into(),
                display_name: name.to_uppercase(),
                password_hash: None,
                enabled: *enabled,
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                created_at: 0,
            })
            .await
            .unwrap();
    }
    (dir, LocalDirectory::new(store).unwrap())
}

#[tokio::test]
async fn group_members_are_the_enabled_people_of_the_group_with_all_their_groups() {
    let (_dir, d) = directory_with_groups(&[
        ("dave", true, &["vpn-users", "staff"]),
        ("alice", true, &["staff"]),
        ("bob", false, &["staff"]),
        ("carol", true, &["payments"]),
    ])
    .await;
    let staff = d.group_members("staff").await.unwrap();
    let names: Vec<_> = staff.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "dave"], "sorted by username; disabled bob left out");
    assert_eq!(staff[1].stable_id, "id-dave");
    assert_eq!(staff[1].display_name, "DAVE");
    assert_eq!(
        staff[1].groups,
        ["staff", "vpn-users"],
        "every group, not only the one asked for"
    );
    assert_eq!(d.group_members("payments").await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_unknown_or_empty_local_group_has_no_members() {
    let (_dir, d) = directory_with_groups(&[("alice", true, &["staff"]), ("bob", false, &["retired"])]).await;
    assert!(d.group_members("nobody-here").await.unwrap().is_empty());
    assert!(d.group_members("retired").await.unwrap().is_empty());
}
