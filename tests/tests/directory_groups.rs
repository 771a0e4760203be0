//! Listing a directory group's people (`Directory::group_members`, for enrolling a whole group)
//! against a real OpenLDAP `slapd`: `group_search` and `member_of` modes, disabled people, odd
//! member values, hostile group names, and 700 members fetched with paged results past the
//! server's 500-entry size limit. Also group scoping: with `member_of`, a same-named group
//! outside `group_base` grants nothing, for enrolment and at the gateway, and `check-config`
//! refuses `member_of` without a `group_base`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_directory::ldap::LdapConfig;
use rampart_directory::{Directory, DirectoryError, DirectoryUser, LdapDirectory};
use rampart_tests::slapd::{
    ALICE, BASE, BOB, CAROL, SERVICE_DN, SERVICE_PASSWORD, Slapd, SlapdOptions, dn_of, member_of_lines,
};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A group name made of RFC 4515 filter metacharacters.
const ODD_GROUP: &str = "R&D (EU)*";

fn uuid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

fn username(i: usize) -> String {
    format!("member{i:04}")
}

/// `count` generated people, all in `big`, the even ones also in `even`, `member0001` also in
/// [`ODD_GROUP`]; the groups themselves. With `member_of`, the people carry `memberOf` values.
fn generated(count: usize, member_of: bool) -> String {
    let mut ldif = String::new();
    for i in 0..count {
        let mut groups = vec!["big"];
        if i % 2 == 0 {
            groups.push("even");
        }
        if i == 1 {
            groups.push(ODD_GROUP);
        }
        let member_of = if member_of {
            member_of_lines(&groups)
        } else {
            String::new()
        };
        ldif.push_str(&format!(
            "dn: uid={u},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {u}\ncn: Member {i}\nsn: Generated\n\
             entryUUID: {id}\n{member_of}\n",
            u = username(i),
            id = uuid(i)
        ));
    }
    let members = |pick: &dyn Fn(usize) -> bool| -> String {
        (0..count)
            .filter(|i| pick(*i))
            .map(|i| format!("member: uid={},ou=people,{BASE}\n", username(i)))
            .collect()
    };
    ldif.push_str(&format!(
        "dn: cn=big,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: big\n{}\n",
        members(&|_| true)
    ));
    ldif.push_str(&format!(
        "dn: cn=even,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: even\n{}\n",
        members(&|i| i % 2 == 0)
    ));
    ldif.push_str(&format!(
        "dn: cn={ODD_GROUP},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {ODD_GROUP}\n{}\n",
        members(&|i| i == 1)
    ));
    ldif
}

/// A group whose members are one person and things that are not people who can log in: a
/// disabled person, a dangling DN, a group, and an account outside `user_base`.
fn mixed_group() -> String {
    format!(
        "dn: cn=mixed,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: mixed\n\
         member: uid={one},ou=people,{BASE}\nmember: {carol}\nmember: uid=ghost,ou=people,{BASE}\n\
         member: cn=vpn-users,ou=groups,{BASE}\nmember: {SERVICE_DN}\n\n",
        one = username(3),
        carol = dn_of(&CAROL)
    )
}

/// An LDAP directory over `slapd` in `mode`, groups under `ou=groups`.
fn directory(slapd: &Slapd, dir: &tempfile::TempDir, mode: &str) -> LdapDirectory {
    let password_file = dir.path().join("bind-password");
    std::fs::write(&password_file, format!("{SERVICE_PASSWORD}\n")).unwrap();
    let config = serde_json::json!({
        "urls": [slapd.url],
        "bind_dn": SERVICE_DN,
        "bind_password_file": password_file,
        "user_base": format!("ou=people,{BASE}"),
        "group_mode": mode,
        "operation_timeout_secs": 5,
        "disabled_when": [{"attribute": "employeeType", "equals": "disabled"}],
        "group_base": format!("ou=groups,{BASE}"),
    });
    let config: LdapConfig = serde_json::from_value(config).unwrap();
    LdapDirectory::new(config).unwrap()
}

async fn members(d: &LdapDirectory, group: &str) -> Vec<DirectoryUser> {
    d.group_members(group)
        .await
        .unwrap_or_else(|e| panic!("group_members({group:?}): {e}"))
}

fn names(people: &[DirectoryUser]) -> Vec<&str> {
    people.iter().map(|p| p.username.as_str()).collect()
}

/// What both modes must agree on, over the fixture plus `generated(4, …)`.
async fn check_common(d: &LdapDirectory) {
    let staff = members(d, "staff").await;
    assert_eq!(names(&staff), ["alice"], "disabled carol is left out");
    let alice = &staff[0];
    assert_eq!(alice.stable_id, ALICE.uuid);
    assert_eq!(alice.display_name, "alice Example");
    assert_eq!(alice.groups, ["staff", "vpn-users"], "all of her groups");
    assert_eq!(
        members(d, "STAFF").await,
        staff,
        "group names ignore case, as in policy.toml"
    );
    assert_eq!(names(&members(d, "vpn-users").await), ["alice"]);

    let payments = members(d, "payments").await;
    assert_eq!(names(&payments), ["bob"], "groupOfUniqueNames");
    assert_eq!(payments[0].stable_id, BOB.uuid);

    let even = members(d, "even").await;
    assert_eq!(names(&even), ["member0000", "member0002"]);
    assert_eq!(even[0].groups, ["big", "even"]);
    let odd = members(d, ODD_GROUP).await;
    assert_eq!(
        names(&odd),
        ["member0001"],
        "metacharacters in the name are escaped, not interpreted"
    );
    assert_eq!(odd[0].groups, [ODD_GROUP, "big"]);
    assert_eq!(odd[0].stable_id, uuid(1));

    // Every member looks exactly as a login or lookup sees them.
    for person in staff.iter().chain(&payments).chain(&even).chain(&odd) {
        assert_eq!(d.lookup(&person.username).await.unwrap().as_ref(), Some(person));
    }

    for unknown in ["no-such-group", "*", "staff)(cn=*", "*)(|(cn=*", "sta*", "", "  "] {
        match d.group_members(unknown).await {
            Err(DirectoryError::UnknownGroup(name)) => assert_eq!(name, unknown),
            other => panic!("{unknown:?} must be an unknown group, got {other:?}"),
        }
    }
    let err = d.group_members("no-such-group").await.unwrap_err();
    assert_eq!(err.to_string(), "no such group: no-such-group");
}

#[tokio::test]
async fn group_search_lists_the_enabled_people_with_all_their_groups() {
    let slapd = Slapd::start_opts(SlapdOptions {
        extra_ldif: format!("{}{}", generated(4, false), mixed_group()),
        ..SlapdOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let d = directory(&slapd, &dir, "group_search");
    check_common(&d).await;

    // Only the person comes back: not the disabled one, the dangling DN, the nested group or
    // the account outside user_base.
    let mixed = members(&d, "mixed").await;
    assert_eq!(names(&mixed), ["member0003"]);
    assert_eq!(mixed[0].groups, ["big", "mixed"]);
}

#[tokio::test]
async fn member_of_lists_the_same_people() {
    let slapd = Slapd::start_opts(SlapdOptions {
        extra_ldif: generated(4, true),
        member_of: true,
        ..SlapdOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    check_common(&directory(&slapd, &dir, "member_of")).await;
}

#[tokio::test]
async fn seven_hundred_members_are_paged_past_the_size_limit() {
    const COUNT: usize = 700;
    let slapd = Slapd::start_opts(SlapdOptions {
        extra_ldif: generated(COUNT, true),
        member_of: true,
        ..SlapdOptions::default()
    });
    let group_dn = format!("cn=big,ou=groups,{BASE}");
    rampart_tests::require_tool("ldapsearch", "ldap-utils");
    let unpaged = std::process::Command::new("ldapsearch")
        .args(["-x", "-LLL", "-H", &slapd.url, "-D", SERVICE_DN, "-w", SERVICE_PASSWORD])
        .args([
            "-b",
            &format!("ou=people,{BASE}"),
            &format!("(memberOf={group_dn})"),
            "1.1",
        ])
        .output()
        .unwrap();
    assert_eq!(
        unpaged.status.code(),
        Some(4),
        "a plain search must hit the 500-entry size limit: {}",
        String::from_utf8_lossy(&unpaged.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    for mode in ["group_search", "member_of"] {
        let d = directory(&slapd, &dir, mode);
        let started = Instant::now();
        let big = members(&d, "big").await;
        let elapsed = started.elapsed();
        eprintln!("{mode}: {} members in {elapsed:?}", big.len());
        assert_eq!(big.len(), COUNT, "{mode}: every member, none cut off by the size limit");
        for (i, person) in big.iter().enumerate() {
            assert_eq!(person.username, username(i), "{mode}: sorted by username");
            assert_eq!(person.stable_id, uuid(i), "{mode}");
            let expected: &[&str] = match i {
                1 => &[ODD_GROUP, "big"],
                _ if i % 2 == 0 => &["big", "even"],
                _ => &["big"],
            };
            assert_eq!(person.groups, expected, "{mode}: {}", person.username);
        }
        let ids: HashSet<_> = big.iter().map(|p| p.stable_id.as_str()).collect();
        assert_eq!(ids.len(), COUNT);
        assert!(
            elapsed < Duration::from_secs(20),
            "{mode}: {COUNT} members took {elapsed:?}"
        );
        assert_eq!(members(&d, "even").await.len(), COUNT / 2, "{mode}");
    }

    // The member_of listing was one search fetched in several pages.
    let pages = slapd
        .log()
        .lines()
        .filter(|l| l.contains(" SRCH ") && l.contains(&format!("(uid=*))(memberOf={group_dn}))")))
        .count();
    assert!(
        pages >= 2,
        "expected the member search in several pages, saw {pages} requests"
    );
}

/// Dave is in the real `payments-ops` under `ou=groups`; Mallory only in a self-service list of
/// the same name under `ou=lists`. Both carry `memberOf` values (as the overlay would write).
fn lookalike_groups() -> String {
    let person = |uid: &str, i: usize, group_dn: &str| {
        format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid} Example\nsn: Example\n\
             userPassword: {uid}-Passw0rd-fixture\nentryUUID: {id}\nmemberOf: {group_dn}\n\n",
            id = uuid(900 + i)
        )
    };
    let real = format!("cn=payments-ops,ou=groups,{BASE}");
    let list = format!("cn=payments-ops,ou=lists,{BASE}");
    format!(
        "{dave}{mallory}dn: ou=lists,{BASE}\nobjectClass: organizationalUnit\nou: lists\n\n\
         dn: {real}\nobjectClass: groupOfNames\ncn: payments-ops\nmember: uid=dave,ou=people,{BASE}\n\n\
         dn: {list}\nobjectClass: groupOfNames\ncn: payments-ops\nmember: uid=mallory,ou=people,{BASE}\n\n",
        dave = person("dave", 1, &real),
        mallory = person("mallory", 2, &list),
    )
}

/// In `member_of` mode a group used to be the first RDN of any `memberOf` value, so Mallory's
/// self-service list `cn=payments-ops,ou=lists,…` made her a member of the policy group
/// `payments-ops`; with no `group_base` the enrolment search looked under the whole domain.
/// Now only groups under `group_base` count, for a login and for enrolment alike.
#[tokio::test]
async fn member_of_counts_only_groups_under_the_group_base() {
    let slapd = Slapd::start_opts(SlapdOptions {
        extra_ldif: lookalike_groups(),
        member_of: true,
        ..SlapdOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let d = directory(&slapd, &dir, "member_of");
    let dave = d.lookup("dave").await.unwrap().unwrap();
    assert_eq!(dave.groups, ["payments-ops"]);
    let mallory = d.lookup("mallory").await.unwrap().unwrap();
    assert!(
        mallory.groups.is_empty(),
        "a same-named list elsewhere is no group: {:?}",
        mallory.groups
    );
    assert_eq!(names(&members(&d, "payments-ops").await), ["dave"]);
}

/// The same at the gateway: Mallory logs in (she is a person with a token) but the payments
/// resource, allowed to `payments-ops`, refuses her; Dave reaches it.
#[tokio::test(flavor = "multi_thread")]
async fn a_same_named_group_elsewhere_does_not_reach_a_resource() {
    use rampart_tests::gateway::{GatewayProc, GatewaySpec, open_flow, open_refusal, spawn_echo, totp_code};
    let slapd = Slapd::start_opts(SlapdOptions {
        extra_ldif: lookalike_groups(),
        member_of: true,
        ..SlapdOptions::default()
    });
    let echo = spawn_echo().await;
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("bind-password");
    std::fs::write(&password_file, format!("{SERVICE_PASSWORD}\n")).unwrap();
    let directory = format!(
        "[directory]\nkind = \"ldap\"\nurls = [\"{url}\"]\nbind_dn = \"{SERVICE_DN}\"\nbind_password_file = \"{pw}\"\n\
         user_base = \"ou=people,{BASE}\"\ngroup_mode = \"member_of\"\ngroup_base = \"ou=groups,{BASE}\"\n",
        url = slapd.url,
        pw = password_file.display(),
    );
    let policy = format!("[[resource]]\nname = \"payments\"\ntarget = \"{echo}\"\nallow_groups = [\"payments-ops\"]\n");
    let gw = GatewayProc::start(
        GatewayProc::new_ca(),
        &GatewaySpec {
            directory: &directory,
            policy: &policy,
            ..GatewaySpec::default()
        },
    );
    for (uid, i, reaches) in [("dave", 1, true), ("mallory", 2, false)] {
        let password = format!("{uid}-Passw0rd-fixture");
        rampart_tests::leaks::remember("password", &password);
        let secret = gw.enrol(&uuid(900 + i), uid).await;
        let client = rampart_client::GatewayClient::connect(&gw.addr, &gw.ca_pem)
            .await
            .unwrap();
        client
            .login(
                uid,
                rampart_core::secret::Sensitive::new(password),
                totp_code(&secret, 0).await,
            )
            .await
            .unwrap_or_else(|e| panic!("{uid} cannot log in: {e}"));
        if reaches {
            open_flow(&client, "payments", b"ping").await;
        } else {
            let refusal = open_refusal(&client, "payments").await;
            assert_eq!(refusal, rampart_core::ErrorCode::Forbidden, "{uid}");
        }
    }

    // `check-config` used to accept `member_of` without `group_base` without a word; the same
    // config without it is now refused, saying why.
    let config = std::fs::read_to_string(gw.config_path()).unwrap();
    let unscoped = config.replace(&format!("group_base = \"ou=groups,{BASE}\"\n"), "");
    assert_ne!(unscoped, config, "the test's config names a group base");
    let path = gw.config_path().with_file_name("unscoped.toml");
    std::fs::write(&path, unscoped).unwrap();
    let checked = std::process::Command::new(rampart_tests::bin("rampart-gateway"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = rampart_tests::output_text(&checked);
    assert_eq!(checked.status.code(), Some(78), "{text}");
    assert!(
        text.contains("directory.group_base: required with group_mode = \"member_of\" too: only groups under it count"),
        "{text}"
    );
}
