//! One PostgreSQL server per test binary, started on first use, in which each test makes its own database.

use std::sync::OnceLock;

use crate::{Cluster, Error};

/// The test binary's shared cluster, started by the first caller (the others wait for it).
///
/// Each test should work in its own database: `shared()?.fresh_database()?` gives the URL of a new
/// one. Do not [`kill9`](Cluster::kill9) or promote it; start a [`Cluster`] of your own for that.
///
/// A static is never dropped, so the server outlives the last test: its watchdog (a small `sh`
/// loop started with every cluster) sees the test process gone within a second, then stops the
/// server (`pg_ctl stop -m immediate`), copies its log to `$RAMPART_TEST_ARTIFACTS/postgres/` if
/// that is set, and deletes its folder.
///
/// This blocks for a second or two the first time; from async tests that is acceptable, or call it
/// in `spawn_blocking`. If the server could not start, every call returns [`Error::Shared`] with
/// the reason.
pub fn shared() -> Result<&'static Cluster, Error> {
    static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| Cluster::start_as("shared").map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|reason| Error::Shared(reason.clone()))
}
