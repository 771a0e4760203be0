//! Throwaway PostgreSQL clusters for tests: each test starts its own real server, never the machine's.
//!
//! [`Cluster::start`] runs `initdb` into a fresh folder under the temp directory, starts `postgres` on a
//! free `127.0.0.1` port with its Unix socket in that folder, and waits until it accepts connections.
//! [`Cluster::start_standby`] adds a streaming replica (optionally synchronous); [`Cluster::kill9`] and
//! [`Cluster::promote`] stage a failover. Dropping a [`Cluster`] stops its server and deletes its folder.
//! [`shared()`] gives one server per test binary in which each test makes its own database with
//! [`Cluster::fresh_database`].
//!
//! The server binaries come from `pg_config --bindir`, else the highest `/usr/lib/postgresql/*/bin`.
//! PostgreSQL refuses to run as root; when the tests run as root, every server-side program (`initdb`,
//! `postgres`, `pg_ctl`, `pg_basebackup`) is run as the `postgres` system user through
//! `setpriv --reuid=postgres --regid=postgres --init-groups` (which `exec`s, so the postmaster is
//! this process's direct child), and the cluster's folder is given to that user. Client programs
//! (`psql`, `createdb`, `pg_isready`) run as the caller.
//!
//! If `RAMPART_TEST_ARTIFACTS` is set, each server's log is copied to
//! `$RAMPART_TEST_ARTIFACTS/postgres/<cluster name>.log` when the cluster goes away.

mod binaries;
mod cluster;
mod shared;

pub use binaries::bindir;
pub use cluster::Cluster;
pub use shared::shared;

/// Why a test cluster could not be started or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No folder holds both `initdb` and `postgres`.
    #[error(
        "no PostgreSQL server binaries (initdb and postgres) found ({looked}): \
         install the postgresql package; scripts/test does"
    )]
    NoBinaries {
        /// The places that were tried.
        looked: String,
    },
    /// Running as root but the server cannot be run as the `postgres` user.
    #[error(
        "running as root, which PostgreSQL refuses, and it cannot be run as the `postgres` system user \
         instead: {0}; install the postgresql package (it creates that user); scripts/test does"
    )]
    NoPostgresUser(String),
    /// A file or process operation failed.
    #[error("{what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// A PostgreSQL program (or `chown`) exited unsuccessfully.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// How it exited.
        status: String,
        /// Its standard error and output, trimmed.
        output: String,
    },
    /// Something did not happen in time (or the server exited while waiting for it).
    #[error("{what}; last lines of the server log {log}:\n{log_tail}")]
    Server {
        /// What went wrong.
        what: String,
        /// The server's log file.
        log: String,
        /// The end of that log.
        log_tail: String,
    },
    /// The shared cluster failed to start; the reason is the error that start gave.
    #[error("the shared test cluster could not start: {0}")]
    Shared(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, cause: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            cause,
        }
    }
}
