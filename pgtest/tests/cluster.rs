//! Starts real PostgreSQL clusters: a plain one, the shared one, a synchronous standby failover,
//! and a server shut down and started again.

use std::time::{Duration, Instant};

use rampart_pgtest::{Cluster, Error, shared};

#[test]
fn starts_a_cluster_and_creates_a_database() -> Result<(), Error> {
    let cluster = Cluster::start()?;
    assert_ne!(cluster.port(), 5432, "must not be the system server");
    assert_eq!(
        cluster.url("app"),
        format!("postgres://postgres@127.0.0.1:{}/app", cluster.port())
    );
    assert!(cluster.data_dir().join("PG_VERSION").is_file());

    cluster.create_database("app")?;
    assert_eq!(cluster.psql_in("app", "SELECT 1")?, "1");
    assert_eq!(cluster.psql("SELECT 1, 'two'")?, "1|two");
    assert_eq!(cluster.psql("SHOW max_connections")?, "200");
    assert_eq!(cluster.psql("SHOW listen_addresses")?, "127.0.0.1");

    let error = cluster.psql("SELECT * FROM missing_table").err();
    assert!(
        matches!(error, Some(Error::Command { ref output, .. }) if output.contains("missing_table")),
        "{error:?}"
    );

    let root = cluster.data_dir().parent().map(ToOwned::to_owned);
    drop(cluster);
    assert!(root.is_some_and(|root| !root.exists()), "the folder is deleted on drop");
    Ok(())
}

#[test]
fn shared_cluster_gives_each_test_its_own_database() -> Result<(), Error> {
    let first = shared()?.fresh_database()?;
    let second = shared()?.fresh_database()?;
    assert_ne!(first, second);
    let port = shared()?.port();
    assert!(
        first.starts_with(&format!("postgres://postgres@127.0.0.1:{port}/t_")),
        "{first}"
    );
    let db = second.rsplit('/').next().unwrap_or_default();
    assert_eq!(shared()?.psql_in(db, "SELECT current_database()")?, db);
    Ok(())
}

#[test]
fn synchronous_standby_takes_over_after_the_primary_is_killed() -> Result<(), Error> {
    let mut primary = Cluster::start()?;
    primary.psql("CREATE TABLE t (v text)")?;
    let standby = primary.start_standby(true)?;
    assert_eq!(
        primary.psql("SELECT application_name, sync_state FROM pg_stat_replication")?,
        "standby1|sync"
    );
    assert_eq!(standby.psql("SELECT pg_is_in_recovery()")?, "t");

    // The commit waits for the standby's flush; replay follows a moment later.
    primary.psql("INSERT INTO t VALUES ('before')")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while standby.psql("SELECT count(*) FROM t")? != "1" {
        assert!(Instant::now() < deadline, "the row never reached the standby");
        std::thread::sleep(Duration::from_millis(20));
    }

    primary.kill9()?;
    assert!(primary.psql("SELECT 1").is_err(), "the primary is gone");
    standby.promote()?;
    assert_eq!(standby.psql("SELECT pg_is_in_recovery()")?, "f");
    standby.psql("INSERT INTO t VALUES ('after')")?;
    assert_eq!(
        standby.psql("SELECT string_agg(v, ',' ORDER BY v) FROM t")?,
        "after,before"
    );
    Ok(())
}

#[test]
fn a_shut_down_server_starts_again_on_its_port_with_its_data() -> Result<(), Error> {
    let mut cluster = Cluster::start()?;
    cluster.psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')")?;
    let port = cluster.port();
    cluster.shut_down();
    assert!(cluster.psql("SELECT 1").is_err(), "the server is down");
    cluster.start_again()?;
    assert_eq!(cluster.port(), port);
    assert_eq!(cluster.psql("SELECT v FROM kept")?, "before");
    Ok(())
}
