//! `rampart dev --gateways 2 --store-url …`: a whole Rampart on one machine with two gateways on
//! a PostgreSQL store (a real primary and standby the test starts), so scale-out and database
//! failover can be tried without a second host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::pg::SharedStore;
use rampart_tests::{Dev, now, oathtool_code, output_text};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn dev_mode_runs_two_gateways_on_postgresql() {
    let store = SharedStore::start(true).await;
    let dev = tokio::task::block_in_place(|| Dev::start(&["--gateways", "2", "--store-url", &store.url]));
    let gateways = dev.info["gateways"].as_array().unwrap().clone();
    assert_eq!(gateways.len(), 2, "{}", dev.info);
    assert!(dev.field("store").starts_with("postgresql 127.0.0.1:"), "{}", dev.info);
    assert!(
        !dev.dir.path().join("state/rampart.db").exists(),
        "no SQLite store beside PostgreSQL"
    );
    let profile: Value = serde_json::from_str(&std::fs::read_to_string(dev.field("profile_file")).unwrap()).unwrap();
    assert_eq!(
        profile["gateways"].as_array().unwrap().len(),
        2,
        "the profile lists both: {profile}"
    );

    // Both gateways registered in the shared store, as either one tells (each registers as it
    // starts serving, just after dev.json is written).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let listed = loop {
        let out = dev.cli(&["-o", "json", "gateways", "list"]);
        assert!(out.status.success(), "{}", output_text(&out));
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        if listed["gateways"].as_array().unwrap().len() == 2 || std::time::Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let nodes = listed["gateways"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{listed}");
    assert!(nodes.iter().all(|g| g["state"] == "up"), "{listed}");

    // The demo person logs in at the first gateway with a code from the token dev issued.
    let code = oathtool_code(&dev.secret(), now());
    let home = dev.home("employee");
    let login = dev.login(&home, "demo", &dev.field("password"), &code);
    assert!(login.status.success(), "{}", output_text(&login));
    let sessions = dev.cli(&["-o", "json", "sessions", "list"]);
    let sessions: Value = serde_json::from_slice(&sessions.stdout).unwrap();
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1, "{sessions}");
}
