//! `/readyz` is cheap and says nothing to strangers: against a real gateway and slapd, a burst
//! of readiness requests costs the directory a handful of searches, callers without a key are
//! limited and told which checks pass but never why one fails, and operators get the details.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::faults::Frozen;
use rampart_tests::gateway::LdapLab;
use std::time::Duration;

/// Searches slapd logged for the readiness probe's name.
fn probe_searches(lab: &LdapLab) -> usize {
    lab.slapd
        .log()
        .lines()
        .filter(|l| l.contains("SRCH") && l.contains("rampart-readiness-probe"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_readiness_requests_cost_a_handful_of_searches_and_tell_strangers_no_detail() {
    // Before: every /readyz ran an LDAP search for whoever asked, without a key and without
    // limit, and answered with the error text of a failing check.
    let lab = LdapLab::start("", "").await;
    let monitor = lab.gw.operator("monitor", "auditor").await;
    let before = probe_searches(&lab);
    let mut answered = 0;
    let mut limited = 0;
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..200 {
        let key = (i % 2 == 0).then(|| monitor.clone());
        let (ca, url) = (lab.gw.ca_pem.clone(), lab.gw.admin_url.clone());
        requests.spawn(async move {
            let mut request = rampart_tests::https_client(&ca).get(format!("{url}/readyz"));
            if let Some(key) = &key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.unwrap();
            (
                key.is_some(),
                response.status().as_u16(),
                response.text().await.unwrap(),
            )
        });
    }
    while let Some(joined) = requests.join_next().await {
        let (keyed, status, body) = joined.unwrap();
        match (keyed, status) {
            (true, 200) => assert!(body.contains("\"detail\":\"answers\""), "{body}"),
            (false, 200) => {
                assert!(!body.contains("detail"), "no detail without a key: {body}");
                answered += 1;
            }
            (false, 429) => limited += 1,
            other => panic!("unexpected answer {other:?}: {body}"),
        }
    }
    let searches = probe_searches(&lab) - before;
    println!(
        "200 /readyz requests: {searches} directory searches; without a key {answered} answered, {limited} limited"
    );
    assert!(searches <= 3, "{searches} LDAP searches for 200 readiness requests");
    assert!(answered >= 1 && answered + limited == 100);

    // A hung directory: strangers learn that the directory check fails, not why.
    let frozen = Frozen::freeze(lab.slapd.pid().unwrap());
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, ready) = lab.gw.admin("GET", "/readyz", None).await;
    assert_eq!(status, 503, "{ready}");
    let text = ready.to_string();
    assert!(
        !text.contains("detail") && !text.contains("LDAP") && !text.contains("127.0.0.1"),
        "{text}"
    );
    let directory = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "directory")
        .cloned();
    assert_eq!(directory.unwrap()["ok"], false, "{ready}");
    let (status, ready) = lab.gw.admin("GET", "/readyz", Some(&monitor)).await;
    drop(frozen);
    assert_eq!(status, 503, "{ready}");
    let detail = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "directory")
        .and_then(|c| c["detail"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(!detail.is_empty(), "operators see why: {ready}");
}
