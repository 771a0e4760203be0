//! Choosing among several PostgreSQL hosts, against real clusters this test starts: a store
//! works only on the one host that accepts writes; a standby alone is refused (no stale reads,
//! no writes), and so are two writable hosts (an old primary back without fencing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_pgtest::Cluster;
use rampart_store::{PgSettings, PgStore, StoreError, parse_hosts};

fn settings() -> PgSettings {
    PgSettings {
        connect_timeout: std::time::Duration::from_secs(3),
        ..PgSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writable_hosts_are_refused_by_name() {
    let (a, b) = tokio::task::spawn_blocking(|| {
        let (a, b) = (Cluster::start().unwrap(), Cluster::start().unwrap());
        a.create_database("twin").unwrap();
        b.create_database("twin").unwrap();
        (a, b)
    })
    .await
    .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{},127.0.0.1:{}/twin", a.port(), b.port());
    let err = PgStore::migrate(parse_hosts(&url, None).unwrap(), settings())
        .await
        .err()
        .unwrap();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        message.contains("more than one PostgreSQL host accepts writes"),
        "{message}"
    );
    assert!(
        message.contains(&a.port().to_string()) && message.contains(&b.port().to_string()),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_alone_is_not_used() {
    let (mut primary, standby, url) = tokio::task::spawn_blocking(|| {
        let primary = Cluster::start().unwrap();
        let url = primary.fresh_database().unwrap();
        let standby = primary.start_standby(false).unwrap();
        (primary, standby, url)
    })
    .await
    .unwrap();
    let both = url.replacen(
        &format!("127.0.0.1:{}", primary.port()),
        &format!("127.0.0.1:{},127.0.0.1:{}", primary.port(), standby.port()),
        1,
    );
    let (store, _, _) = PgStore::migrate(parse_hosts(&both, None).unwrap(), settings())
        .await
        .unwrap();
    assert!(store.primary().ends_with(&primary.port().to_string()));
    store.close().await;
    primary.kill9().unwrap();
    let err = PgStore::connect(parse_hosts(&both, None).unwrap(), settings())
        .await
        .err()
        .unwrap();
    let message = err.to_string();
    assert!(message.contains("no PostgreSQL host accepts writes"), "{message}");
    assert!(message.contains("is a standby"), "{message}");
}
