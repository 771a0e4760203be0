//! One PostgreSQL server in its own temporary folder: start, databases, standbys, failover, teardown.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::Error;
use crate::binaries::{self, client_command, server_command};

/// How long starting, replication and promotion may take before giving up.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The server's log (its standard error), beside the data folder so base backups leave it out.
const LOG_FILE: &str = "postgres.log";
/// Tries at starting the server when another process took the free port first.
const PORT_ATTEMPTS: u32 = 5;
/// Lines of the server log put in errors.
const LOG_TAIL_LINES: usize = 40;
/// Longest folder path used for the Unix socket (`<folder>/.s.PGSQL.<port>` must fit in 107 bytes).
const MAX_SOCKET_DIR: usize = 80;

/// Everyone may connect, without a password, over the socket and from `127.0.0.1`, replication
/// included.
const PG_HBA: &str = "\
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 trust
host    all          all   127.0.0.1/32  trust
local   replication  all                 trust
host    replication  all   127.0.0.1/32  trust
";

/// Stops the server and deletes the folder once the test process is gone, for clusters that are
/// never dropped (statics, aborts, a killed test binary). It ends by itself when the folder
/// disappears (the cluster was dropped). Arguments: test pid, folder, cluster name, then the
/// `pg_ctl` command (behind `setpriv` when root). Ctrl-C reaches the whole process group; the
/// watchdog ignores it so that it can still clean up.
const WATCHDOG: &str = r#"trap '' INT HUP
test_pid=$1 dir=$2 name=$3
shift 3
while kill -0 "$test_pid" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
[ -d "$dir" ] || exit 0
"$@" stop -D "$dir/data" -m immediate -w -t 10 >/dev/null 2>&1
if [ -n "$RAMPART_TEST_ARTIFACTS" ]; then
  mkdir -p "$RAMPART_TEST_ARTIFACTS/postgres" && cp "$dir/postgres.log" "$RAMPART_TEST_ARTIFACTS/postgres/$name.log"
fi
rm -rf "$dir"
"#;

/// One running PostgreSQL server, owned by the test that started it.
///
/// It listens on `127.0.0.1` on a port of its own (never 5432's system server), trusts every
/// connection, and has its data, Unix socket and log in a temporary folder. Dropping it stops the
/// server (immediate shutdown), reaps it, copies its log to `$RAMPART_TEST_ARTIFACTS/postgres/` if
/// that is set, and deletes the folder.
#[derive(Debug)]
pub struct Cluster {
    name: String,
    bindir: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    /// The postmaster itself (`setpriv` execs it), until it is stopped or killed.
    postmaster: Option<Child>,
    watchdog: Option<Child>,
    /// Standbys made from this server so far, for their `application_name`s.
    standbys: AtomicU32,
    /// Deleted last, when the fields drop after [`Drop::drop`] stopped the server.
    root: TempDir,
}

impl Cluster {
    /// Initialises a new cluster (`initdb`), starts its server and waits until it accepts connections.
    ///
    /// Takes a second or two. The superuser is `postgres`; there is no password.
    pub fn start() -> Result<Cluster, Error> {
        Cluster::start_as("primary")
    }

    /// [`Cluster::start`], with `role` in the folder's (and the artifact log's) name.
    pub(crate) fn start_as(role: &str) -> Result<Cluster, Error> {
        let mut cluster = Cluster::new(role, binaries::bindir()?)?;
        let mut initdb = server_command(&cluster.bindir, "initdb", cluster.root.path())?;
        initdb.arg("-D").arg(&cluster.data);
        initdb.args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"]);
        binaries::run(&mut initdb)?;
        write_file(&cluster.data.join("pg_hba.conf"), PG_HBA, false)?;
        cluster.run_server()?;
        Ok(cluster)
    }

    /// The TCP port the server listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for database `db` as the superuser: `postgres://postgres@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The data folder (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's log file.
    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// The cluster's name: its temporary folder's, e.g. `rampart-pg-primary-AbC123`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates database `name` (`createdb`), owned by `postgres`.
    pub fn create_database(&self, name: &str) -> Result<(), Error> {
        let mut createdb = client_command(&self.bindir, "createdb", self.root.path());
        createdb.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "--",
            name,
        ]);
        binaries::run(&mut createdb).map(drop)
    }

    /// Creates a database with a name no other call in this process gets (`t_<counter>_<pid>`) and
    /// returns its [`url`](Cluster::url).
    pub fn fresh_database(&self) -> Result<String, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!("t_{}_{}", COUNTER.fetch_add(1, Ordering::Relaxed), std::process::id());
        self.create_database(&name)?;
        Ok(self.url(&name))
    }

    /// Runs `sql` in database `postgres` with `psql -Atc` and returns what it printed, without the
    /// final newline: unaligned rows, `|` between columns. Stops at the first error.
    pub fn psql(&self, sql: &str) -> Result<String, Error> {
        self.psql_in("postgres", sql)
    }

    /// [`Cluster::psql`] in database `db`.
    pub fn psql_in(&self, db: &str, sql: &str) -> Result<String, Error> {
        let mut psql = client_command(&self.bindir, "psql", self.root.path());
        psql.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
        ]);
        psql.args(["-U", "postgres", "-d", db, "-At", "-c", sql]);
        let out = binaries::run(&mut psql)?;
        Ok(out.strip_suffix('\n').unwrap_or(&out).to_owned())
    }

    /// Makes a streaming replica of this server (`pg_basebackup -R -X stream`), starts it as a hot
    /// standby and waits until this server sees it streaming.
    ///
    /// The standby's `application_name` is `standby<N>` (`standby1` for the first one made from this
    /// server). With `synchronous`, this server's `synchronous_standby_names` becomes that name
    /// (`ALTER SYSTEM`, then a reload), so commits here wait for the standby's flush, and the call
    /// returns once `pg_stat_replication` says `sync`. The standby itself never waits for a
    /// synchronous standby, so it can take writes right after [`Cluster::promote`].
    pub fn start_standby(&self, synchronous: bool) -> Result<Cluster, Error> {
        let app = format!("standby{}", self.standbys.fetch_add(1, Ordering::Relaxed) + 1);
        let mut standby = Cluster::new(&app, self.bindir.clone())?;
        let mut backup = server_command(&self.bindir, "pg_basebackup", standby.root.path())?;
        backup.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-D"]);
        backup
            .arg(&standby.data)
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"]);
        binaries::run(&mut backup)?;
        // `-R` wrote a `primary_conninfo` without an application_name; a later line wins.
        let conninfo = format!(
            "\n# rampart-pgtest\nprimary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name={app}'\n\
             synchronous_standby_names = ''\n",
            self.port
        );
        write_file(&standby.data.join("postgresql.auto.conf"), &conninfo, true)?;
        standby.run_server()?;

        if synchronous {
            self.psql(&format!("ALTER SYSTEM SET synchronous_standby_names = '{app}'"))?;
            self.psql("SELECT pg_reload_conf()")?;
        }
        let query =
            format!("SELECT state || ' ' || sync_state FROM pg_stat_replication WHERE application_name = '{app}'");
        let what = format!(
            "the primary on port {} did not see standby {app} streaming{}",
            self.port,
            if synchronous { " synchronously" } else { "" }
        );
        standby.wait_until(&what, || {
            let state = self.psql(&query)?;
            Ok(if synchronous {
                state == "streaming sync"
            } else {
                state.starts_with("streaming ")
            })
        })?;
        Ok(standby)
    }

    /// Kills the postmaster with SIGKILL, as a crash would, and reaps it. Its backends notice and
    /// exit by themselves. Does nothing if the server is not running.
    pub fn kill9(&mut self) -> Result<(), Error> {
        let Some(mut postmaster) = self.postmaster.take() else {
            return Ok(());
        };
        let killed = postmaster
            .kill()
            .map_err(|e| Error::io(format!("could not kill the postmaster of {}", self.name), e));
        let reaped = postmaster
            .wait()
            .map_err(|e| Error::io(format!("could not reap the postmaster of {}", self.name), e));
        killed.and(reaped).map(drop)
    }

    /// Stops the server (immediate shutdown, as an outage would), keeping its data, port and
    /// folder for [`Cluster::start_again`]. Does nothing if the server is not running.
    pub fn shut_down(&mut self) {
        self.stop();
    }

    /// Starts the server again on its data folder and port after [`Cluster::shut_down`] or
    /// [`Cluster::kill9`], and waits until it accepts connections. Does nothing if it runs.
    pub fn start_again(&mut self) -> Result<(), Error> {
        if self.postmaster.is_some() {
            return Ok(());
        }
        self.spawn_postmaster()?;
        self.wait_ready()
    }

    /// Promotes this standby (`pg_ctl promote -w`) and waits until it is out of recovery.
    pub fn promote(&self) -> Result<(), Error> {
        let mut promote = server_command(&self.bindir, "pg_ctl", self.root.path())?;
        promote
            .arg("promote")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "30"]);
        binaries::run(&mut promote)?;
        self.wait_until(&format!("{} did not leave recovery", self.name), || {
            Ok(self.psql("SELECT pg_is_in_recovery()")? == "f")
        })
    }

    /// A folder for a new cluster (no data folder yet), given to `postgres` when we are root, and its
    /// watchdog.
    fn new(role: &str, bindir: PathBuf) -> Result<Cluster, Error> {
        // The `postgres` user must reach the folder: root's TMPDIR may be private, so root uses /tmp.
        let temp = std::env::temp_dir();
        let base = if binaries::as_postgres()? || temp.as_os_str().len() > MAX_SOCKET_DIR - 30 {
            PathBuf::from("/tmp")
        } else {
            temp
        };
        let root = tempfile::Builder::new()
            .prefix(&format!("rampart-pg-{role}-"))
            .tempdir_in(&base)
            .map_err(|e| Error::io(format!("could not create a folder in {}", base.display()), e))?;
        let path = root.path().to_path_buf();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(format!("could not make {} traversable", path.display()), e))?;
        let log = path.join(LOG_FILE);
        File::create(&log).map_err(|e| Error::io(format!("could not create {}", log.display()), e))?;
        binaries::give_to_postgres(&path)?;

        let mut cluster = Cluster {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bindir,
            data: path.join("data"),
            log,
            port: 0,
            postmaster: None,
            watchdog: None,
            standbys: AtomicU32::new(0),
            root,
        };
        cluster.watchdog = Some(cluster.spawn_watchdog()?);
        Ok(cluster)
    }

    fn spawn_watchdog(&self) -> Result<Child, Error> {
        let mut watchdog = Command::new("sh");
        binaries::prepare(&mut watchdog, self.root.path());
        watchdog.arg("-c").arg(WATCHDOG).arg("rampart-pgtest-watchdog");
        watchdog
            .arg(std::process::id().to_string())
            .arg(self.root.path())
            .arg(&self.name);
        watchdog.args(binaries::server_argv(&self.bindir, "pg_ctl")?);
        watchdog
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io("could not start the cleanup watchdog (sh)", e))
    }

    /// Picks a free port, writes the settings and starts the postmaster on the data folder, until it
    /// accepts connections. Tries another port when someone else took the chosen one meanwhile.
    fn run_server(&mut self) -> Result<(), Error> {
        let mut attempt = 1;
        loop {
            self.port = free_port()?;
            write_file(
                &self.data.join("postgresql.conf"),
                &settings(self.port, self.root.path()),
                true,
            )?;
            binaries::give_to_postgres(self.root.path())?;
            let log_start = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
            self.spawn_postmaster()?;
            match self.wait_ready() {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= PORT_ATTEMPTS || !self.port_taken_since(log_start) => return Err(e),
                Err(_) => attempt += 1,
            }
        }
    }

    fn spawn_postmaster(&mut self) -> Result<(), Error> {
        let open_log = |e| Error::io(format!("could not open {}", self.log.display()), e);
        let log = OpenOptions::new().append(true).open(&self.log).map_err(open_log)?;
        let log2 = log.try_clone().map_err(open_log)?;
        let mut postgres = server_command(&self.bindir, "postgres", self.root.path())?;
        postgres.arg("-D").arg(&self.data).stdout(log).stderr(log2);
        let child = postgres
            .spawn()
            .map_err(|e| Error::io(format!("could not run `{}`", binaries::describe(&postgres)), e))?;
        self.postmaster = Some(child);
        Ok(())
    }

    /// Waits until `pg_isready` succeeds; fails at once if the postmaster exits.
    fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let exited = match self.postmaster.as_mut() {
                None => Some("not running".to_owned()),
                Some(child) => child
                    .try_wait()
                    .map_err(|e| Error::io("could not check on the postmaster", e))?
                    .map(|status| format!("exited ({status})")),
            };
            if let Some(exited) = exited {
                self.postmaster = None;
                return Err(self.server_error(format!("the server {} {exited} while starting", self.name)));
            }
            let mut ready = client_command(&self.bindir, "pg_isready", self.root.path());
            ready.args([
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ]);
            ready.args(["-t", "2"]);
            if binaries::output(&mut ready)?.status.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.server_error(format!(
                    "the server {} did not accept connections on port {} within {} s",
                    self.name,
                    self.port,
                    TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the log says, after byte `from`, that the server could not listen on its port.
    fn port_taken_since(&self, from: u64) -> bool {
        let log = fs::read(&self.log).unwrap_or_default();
        let new = log
            .get(usize::try_from(from).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        let new = String::from_utf8_lossy(new);
        new.contains("could not create any TCP/IP sockets") || new.contains("Address already in use")
    }

    /// Polls `done` until it says yes, for up to [`TIMEOUT`]; `what` (with this server's log) if not.
    fn wait_until(&self, what: &str, mut done: impl FnMut() -> Result<bool, Error>) -> Result<(), Error> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if done()? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.server_error(format!("{what} within {} s", TIMEOUT.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn server_error(&self, what: String) -> Error {
        let log = fs::read(&self.log).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        Error::Server {
            what,
            log: self.log.display().to_string(),
            log_tail: if tail.is_empty() { "(empty)".to_owned() } else { tail },
        }
    }

    /// Stops the server if it runs: an immediate shutdown (the postmaster ends its backends first),
    /// SIGKILL if that fails; then reaps it.
    fn stop(&mut self) {
        let Some(mut postmaster) = self.postmaster.take() else {
            return;
        };
        if matches!(postmaster.try_wait(), Ok(None)) {
            let stopped = server_command(&self.bindir, "pg_ctl", self.root.path()).is_ok_and(|mut pg_ctl| {
                pg_ctl
                    .arg("stop")
                    .arg("-D")
                    .arg(&self.data)
                    .args(["-m", "immediate", "-w", "-t", "10"]);
                binaries::output(&mut pg_ctl).is_ok_and(|out| out.status.success())
            });
            if !stopped {
                let _ = postmaster.kill();
            }
        }
        let _ = postmaster.wait();
    }

    /// Copies the log to `$RAMPART_TEST_ARTIFACTS/postgres/<name>.log` when that variable is set.
    fn save_log(&self) {
        let Some(artifacts) = std::env::var_os("RAMPART_TEST_ARTIFACTS").filter(|dir| !dir.is_empty()) else {
            return;
        };
        let dir = Path::new(&artifacts).join("postgres");
        if fs::create_dir_all(&dir).is_ok() {
            let _ = fs::copy(&self.log, dir.join(format!("{}.log", self.name)));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        self.stop();
        self.save_log();
        // `root` (a TempDir) deletes the folder when the fields drop.
    }
}

/// The settings appended to `postgresql.conf` (later lines win, so appending again on a retry, or
/// on a standby whose file came from its primary, overrides).
fn settings(port: u16, socket_dir: &Path) -> String {
    let socket_dir = socket_dir.to_string_lossy().replace('\'', "''");
    format!(
        "\n# rampart-pgtest\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{socket_dir}'\n\
         synchronous_commit = on\n\
         max_connections = 200\n\
         wal_level = replica\n\
         max_wal_senders = 10\n\
         hot_standby = on\n\
         logging_collector = off\n\
         log_destination = 'stderr'\n\
         log_min_messages = warning\n"
    )
}

/// A TCP port on 127.0.0.1 that nobody listened on a moment ago.
fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("could not find a free port on 127.0.0.1", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("could not find a free port on 127.0.0.1", e))?
        .port();
    Ok(port)
}

/// Writes (or with `append`, appends) `text` to `path`, keeping the file's owner.
fn write_file(path: &Path, text: &str, append: bool) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|e| Error::io(format!("could not open {}", path.display()), e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::io(format!("could not write {}", path.display()), e))
}
