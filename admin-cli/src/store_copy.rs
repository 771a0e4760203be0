//! `rampart store copy`: moves a one-host installation's SQLite store into an empty PostgreSQL
//! database (people, tokens, history, operators, sessions, pools, VMs, allocations, seal keys)
//! in one transaction, and prints each table's rows on both sides. With `--kek-file` it also
//! imports the installation's `master.key` into the database, wrapped by the key-encryption key,
//! so every enrolled token keeps working; without it, it prints that step. The source is only
//! read; the database password is never printed (the target is shown as host, port and name).

use crate::client::{CliError, exit};
use crate::view::out;
use crate::view::{Output, Table, json};
use clap::{Args, Subcommand};
use rampart_store::copy::{CopyReport, copy_sqlite_to_postgres, master_key_beside, sqlite_file};
use rampart_store::prelude::*;
use rampart_store::seal::LocalKek;
use rampart_store::{KeyRing, PASSWORD_ENV, PgSettings, PgStore, SealError, StoreError, parse_hosts};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Who imported the keys, in the store's `seal_keys.created_by`.
const ACTOR: &str = "store-copy";

/// Store subcommands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a one-host installation's SQLite store into an empty PostgreSQL database.
    ///
    /// Stop the gateway and the provisioner of the installation first: the copy reads one
    /// snapshot, and anything they write afterwards stays behind. The target must be migrated
    /// (`rampart-provisioner migrate`) and hold no rows yet; the copy is one transaction, so it
    /// either copies everything or nothing. Prints each table's rows in SQLite and in
    /// PostgreSQL. Sealed seeds open only with the installation's keys: give --kek-file to
    /// import its master.key now, or run `rampart-provisioner keys import` afterwards.
    Copy(CopyArgs),
}

/// `rampart store copy` arguments.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The SQLite store: `sqlite:STATE_DIR`, `sqlite:FILE.db` or a plain path. Opened read-only.
    #[arg(long, value_name = "sqlite:PATH")]
    from: String,
    /// The PostgreSQL database: postgres://USER@HOST:PORT[,HOST:PORT…]/DATABASE (the first
    /// host that accepts writes is used).
    #[arg(long, value_name = "URL", env = rampart_store::URL_ENV, hide_env_values = true)]
    to: String,
    /// A file holding the database password (its first line); or RAMPART_STORE_PASSWORD.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// The key-encryption key file every node will hold: also import the installation's
    /// seed-sealing keys (master.key) into the database, wrapped by it.
    #[arg(long, value_name = "FILE")]
    kek_file: Option<PathBuf>,
    /// The key file to import (default: master.key beside the SQLite store).
    #[arg(long, value_name = "FILE", requires = "kek_file")]
    master_key: Option<PathBuf>,
}

/// Runs a store subcommand.
pub async fn run(output: Output, command: StoreCommand) -> Result<(), CliError> {
    match command {
        StoreCommand::Copy(args) => copy(output, args).await,
    }
}

/// Keys imported into the database.
#[derive(Debug, Serialize)]
struct KeysImported {
    /// The key file read.
    from: String,
    /// Key ids added by this run.
    imported: Vec<u32>,
    /// Every key id in the database now.
    in_store: Vec<u32>,
    /// The key that seals new seeds.
    current: u32,
}

/// What `store copy -o json` prints.
#[derive(Debug, Serialize)]
struct CopyOutput<'a> {
    #[serde(flatten)]
    report: &'a CopyReport,
    total_rows: u64,
    keys: Option<KeysImported>,
    next_step: Option<String>,
}

async fn copy(output: Output, args: CopyArgs) -> Result<(), CliError> {
    let db_file = sqlite_file(&args.from).map_err(store_error)?;
    let password = password(args.password_file.as_deref())?;
    let hosts = parse_hosts(args.to.trim(), password.as_deref()).map_err(store_error)?;
    // Everything the key import needs is checked before anything is written.
    let import = match &args.kek_file {
        Some(kek_file) => {
            let kek = LocalKek::from_file(kek_file).map_err(|err| seal_error("--kek-file", &err))?;
            let key_file = args.master_key.clone().unwrap_or_else(|| master_key_beside(&db_file));
            if !key_file.is_file() {
                return Err(CliError::failure(format!(
                    "no key file at {}: name the installation's master.key with --master-key",
                    key_file.display()
                )));
            }
            Some((Arc::new(kek), key_file))
        }
        None => None,
    };

    let report = copy_sqlite_to_postgres(&db_file, &hosts).await.map_err(store_error)?;

    let (keys, next_step) = match import {
        Some((kek, key_file)) => (
            Some(import_keys(args.to.trim(), password.as_deref(), kek, &key_file).await?),
            None,
        ),
        None => (None, next_step(&report, &master_key_beside(&db_file))),
    };
    match output {
        Output::Json => json(&CopyOutput {
            report: &report,
            total_rows: report.total_rows(),
            keys,
            next_step,
        })?,
        Output::Table => {
            let mut table = Table::new(&["TABLE", "SQLITE", "POSTGRESQL"]);
            for count in &report.tables {
                table.row(vec![
                    count.table.clone(),
                    count.source_rows.to_string(),
                    count.target_rows.to_string(),
                ]);
            }
            table.print("no tables");
            out!(
                "Copied {} rows from {} into {} (schema version {}).",
                report.total_rows(),
                report.source,
                report.target,
                report.schema_version
            );
            if let Some(keys) = keys {
                out!(
                    "Imported {} key(s) from {}; the database holds keys {:?} (current {}).",
                    keys.imported.len(),
                    keys.from,
                    keys.in_store,
                    keys.current
                );
            }
            if let Some(step) = next_step {
                out!("{step}");
            }
        }
    }
    Ok(())
}

/// Wraps the key file's keys with the key-encryption key into the database, then checks that
/// every copied seed is sealed under a key the database now holds.
async fn import_keys(
    url: &str,
    password: Option<&str>,
    kek: Arc<LocalKek>,
    key_file: &Path,
) -> Result<KeysImported, CliError> {
    let failed = |err: SealError| {
        CliError::failure(format!(
            "the data was copied, but importing the keys from {} failed: {err} (fix it and run \
             `rampart-provisioner keys import --config provisioner.toml --from {}`)",
            key_file.display(),
            key_file.display()
        ))
    };
    let hosts = parse_hosts(url, password).map_err(store_error)?;
    let store = PgStore::connect(hosts, PgSettings::default())
        .await
        .map_err(store_error)?;
    let now = unix_now();
    let imported = KeyRing::import_file(&store, kek.as_ref(), key_file, ACTOR, now)
        .await
        .map_err(failed)?;
    let ring = KeyRing::from_store(Arc::new(store.clone()), kek, ACTOR, now)
        .await
        .map_err(failed)?;
    let in_store = ring.key_ids();
    let mut missing: Vec<u32> = store
        .sealed_seeds()
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|(_, sealed)| sealed.key_id)
        .filter(|id| !in_store.contains(id))
        .collect();
    store.close().await;
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        return Err(CliError::failure(format!(
            "the data and keys {in_store:?} were copied, but seeds are sealed under key(s) {missing:?}, which {} does \
             not hold: import the key file that has them with `rampart-provisioner keys import`",
            key_file.display()
        )));
    }
    Ok(KeysImported {
        from: key_file.display().to_string(),
        imported,
        in_store,
        current: ring.current_key_id(),
    })
}

/// What to do after a copy without `--kek-file`, if anything.
fn next_step(report: &CopyReport, key_file: &Path) -> Option<String> {
    if key_file.is_file() {
        return Some(format!(
            "Next: import the seed-sealing keys, or no copied token opens: rampart-provisioner keys import --config \
             provisioner.toml --from {}",
            key_file.display()
        ));
    }
    if report.source_rows("seal_keys").unwrap_or(0) > 0 {
        return Some(
            "The seal keys were copied wrapped by the installation's key-encryption key: give every node that same \
             key ([store] kek_file or RAMPART_KEK)."
                .to_owned(),
        );
    }
    if report.source_rows("tokens").unwrap_or(0) > 0 {
        return Some(format!(
            "No master.key at {}: import the key file this installation sealed its seeds with \
             (rampart-provisioner keys import --config provisioner.toml --from FILE), or no copied token opens.",
            key_file.display()
        ));
    }
    None
}

/// The password from `--password-file` (its first line) or `RAMPART_STORE_PASSWORD`.
fn password(file: Option<&Path>) -> Result<Option<String>, CliError> {
    let Some(file) = file else {
        return Ok(std::env::var(PASSWORD_ENV).ok().filter(|password| !password.is_empty()));
    };
    let text = std::fs::read_to_string(file)
        .map_err(|err| CliError::failure(format!("--password-file {}: {err}", file.display())))?;
    let password = text.lines().next().unwrap_or_default().trim_end().to_owned();
    if password.is_empty() {
        return Err(CliError::failure(format!(
            "--password-file {} is empty",
            file.display()
        )));
    }
    Ok(Some(password))
}

/// A store failure with the exit code it maps to: a target that is not empty is a conflict
/// (5), an unreachable database unavailable (6), anything else a failure (1).
fn store_error(err: StoreError) -> CliError {
    let code = match err {
        StoreError::Conflict(_) => exit::CONFLICT,
        StoreError::Unavailable(_) => exit::UNAVAILABLE,
        _ => exit::FAILURE,
    };
    CliError {
        message: err.to_string(),
        code,
    }
}

fn seal_error(what: &str, err: &SealError) -> CliError {
    CliError::failure(format!("{what}: {err}"))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}
