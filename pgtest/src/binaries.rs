//! Finding the PostgreSQL programs and running them, as the `postgres` user when the tests run as root.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::Error;

/// The folder holding the PostgreSQL server programs (`initdb`, `postgres`, `pg_ctl`, …).
///
/// `pg_config --bindir` when it answers with a folder holding `initdb` and `postgres` (on Debian a
/// `pg_config` from `libpq-dev` alone points at `/usr/bin`, which has neither), else the
/// highest-numbered `/usr/lib/postgresql/<version>/bin` that has both.
pub fn bindir() -> Result<PathBuf, Error> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(find_bindir)
        .clone()
        .map_err(|looked| Error::NoBinaries { looked })
}

fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("postgres").is_file()
}

fn find_bindir() -> Result<PathBuf, String> {
    let mut looked = Vec::new();
    match Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
            looked.push(format!("`pg_config --bindir` gave {}, which lacks them", dir.display()));
        }
        Ok(out) => looked.push(format!("`pg_config --bindir` failed ({})", out.status)),
        Err(e) => looked.push(format!("no `pg_config` ({e})")),
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let dir = entry.path().join("bin");
            has_server(&dir).then_some((version, dir))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, dir)) => Ok(dir),
        None => {
            looked.push(format!("no {}/<version>/bin with them", root.display()));
            Err(looked.join("; "))
        }
    }
}

/// Whether server programs must be switched to the `postgres` user (we are root).
pub(crate) fn as_postgres() -> Result<bool, Error> {
    static ROOT: OnceLock<Result<bool, String>> = OnceLock::new();
    ROOT.get_or_init(|| {
        if effective_uid()? != 0 {
            return Ok(false);
        }
        // Fail early and clearly when there is nobody to switch to.
        match Command::new("id")
            .args(["-u", "postgres"])
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => Ok(true),
            Ok(out) => Err(format!(
                "`id -u postgres`: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("could not run `id -u postgres`: {e}")),
        }
    })
    .clone()
    .map_err(Error::NoPostgresUser)
}

/// This process's effective user id, from `/proc/self/status` (or `id -u` where there is no `/proc`).
fn effective_uid() -> Result<u32, String> {
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        // "Uid:\treal\teffective\tsaved\tfilesystem"
        let effective = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|id| id.parse().ok());
        if let Some(uid) = effective {
            return Ok(uid);
        }
    }
    let out = Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not learn this process's user id: `id -u`: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("could not learn this process's user id: `id -u` said {:?}", out.stdout))
}

/// `setpriv` switches user and group, sets the supplementary groups, and then `exec`s the program,
/// so a spawned postmaster is our direct child (`runuser` and `su` stay in between as its parent).
const AS_POSTGRES: [&str; 5] = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"];

/// The argument vector that runs server program `program` from `bindir`, through `setpriv` as the
/// `postgres` user when we are root.
pub(crate) fn server_argv(bindir: &Path, program: &str) -> Result<Vec<OsString>, Error> {
    let mut argv = Vec::new();
    if as_postgres()? {
        argv.extend(AS_POSTGRES.map(OsString::from));
    }
    argv.push(bindir.join(program).into_os_string());
    Ok(argv)
}

/// A command for a server program (`initdb`, `postgres`, `pg_ctl`, `pg_basebackup`), run in `cwd`.
///
/// `cwd` must be a folder the `postgres` user can enter: the programs fail when they cannot read
/// their working directory.
pub(crate) fn server_command(bindir: &Path, program: &str, cwd: &Path) -> Result<Command, Error> {
    let path = bindir.join(program);
    let mut command = if as_postgres()? {
        let mut command = Command::new(AS_POSTGRES[0]);
        command.args(&AS_POSTGRES[1..]).arg(path);
        command
    } else {
        Command::new(path)
    };
    prepare(&mut command, cwd);
    Ok(command)
}

/// A command for a client program (`psql`, `createdb`, `pg_isready`), run as the caller.
pub(crate) fn client_command(bindir: &Path, program: &str, cwd: &Path) -> Command {
    let mut command = Command::new(bindir.join(program));
    prepare(&mut command, cwd);
    command
}

/// Clears the caller's `PG*` settings (an inherited `PGSSLMODE` or `PGOPTIONS` would change what the
/// tests see) and detaches standard input.
pub(crate) fn prepare(command: &mut Command, cwd: &Path) {
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("PG")) {
            command.env_remove(name);
        }
    }
    command
        .env("PGCONNECT_TIMEOUT", "10")
        .current_dir(cwd)
        .stdin(Stdio::null());
}

/// `command` as one line, for messages.
pub(crate) fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `command` to completion; its standard output on success, else an error with what it printed.
pub(crate) fn run(command: &mut Command) -> Result<String, Error> {
    let output = output(command)?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(failed(command, &output))
}

/// Runs `command` to completion and returns whatever happened, failure included.
pub(crate) fn output(command: &mut Command) -> Result<Output, Error> {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::io(format!("could not run `{}`", describe(command)), e))
}

pub(crate) fn failed(command: &Command, output: &Output) -> Error {
    let mut printed = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !stdout.trim().is_empty() {
        printed.push('\n');
        printed.push_str(stdout.trim());
    }
    Error::Command {
        command: describe(command),
        status: output.status.to_string(),
        output: printed,
    }
}

/// Gives `path` (recursively) to the `postgres` user when we are root; nothing otherwise.
pub(crate) fn give_to_postgres(path: &Path) -> Result<(), Error> {
    if as_postgres()? {
        let mut chown = Command::new("chown");
        chown.args(["-R", "postgres:postgres"]).arg(path).stdin(Stdio::null());
        run(&mut chown)?;
    }
    Ok(())
}
