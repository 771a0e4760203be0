//! `rampart vm`: VM pools for the service desk — pools, inventory import, allocations (one
//! person, a directory group or a CSV, with a progress bar and a per-row report), release,
//! reassignment, maintenance, retirement, reclaiming idle VMs — and `rampart report capacity`.

mod inventory;

use crate::client::{CliError, Client, exit, segment};
use crate::view::out;
use crate::view::{Output, Table, json, time};
use clap::Subcommand;
use futures::StreamExt;
use inventory::parse_inventory;
use rampart_provisioner::api::GroupMembers;
use rampart_provisioner::vm_api::{
    AddVms, AddVmsResponse, AllocateRequest, CapacityReport, NewVm, PoolDetail, PoolInfo, PoolRequest, ReassignRequest,
    ReclaimQuery, ReclaimReport, VmInfo, VmReason,
};
use serde::Serialize;
use std::path::PathBuf;

/// Rows sent per inventory request.
const IMPORT_CHUNK: usize = 500;
/// Allocation requests in flight during a bulk run.
const ALLOCATIONS_IN_FLIGHT: usize = 8;

/// VM subcommands.
#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Pools: create, list, show.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// Add VMs from a CSV file with `id` and `address` columns; bad rows are reported by line.
    Import {
        /// The pool.
        #[arg(long)]
        pool: String,
        /// The inventory file.
        file: PathBuf,
    },
    /// Add one VM.
    Add {
        /// The pool.
        #[arg(long)]
        pool: String,
        /// VM id.
        id: String,
        /// Host name or IP address.
        address: String,
    },
    /// Retire a VM nobody holds (runs the pool's destroy hook).
    Retire {
        /// VM id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Take a free VM out of service, or put it back with --done.
    Maintenance {
        /// VM id.
        id: String,
        /// Back into service.
        #[arg(long)]
        done: bool,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Give VMs of a pool to people: one username, a directory --group, or a --csv with a
    /// username column.
    Allocate {
        /// The pool.
        #[arg(long)]
        pool: String,
        /// One person.
        #[arg(required_unless_present_any = ["group", "csv"], conflicts_with_all = ["group", "csv"])]
        user: Option<String>,
        /// A particular VM (one person only).
        #[arg(long, requires = "user")]
        vm: Option<String>,
        /// Everyone in this directory group.
        #[arg(long, conflicts_with = "csv")]
        group: Option<String>,
        /// Everyone in this CSV file (a username column).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Allow a second VM in the pool for a person who holds one.
        #[arg(long)]
        allow_second: bool,
    },
    /// Take a VM back from its holder (runs the pool's reset hook).
    Release {
        /// VM id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Give an allocated VM to someone else.
    Reassign {
        /// VM id.
        id: String,
        /// The new holder.
        user: String,
    },
    /// VMs by pool, state or holder.
    List {
        /// Only this pool.
        #[arg(long)]
        pool: Option<String>,
        /// Only this state (provisioning, free, allocated, maintenance, retired).
        #[arg(long)]
        state: Option<String>,
        /// Only VMs this person holds.
        #[arg(long)]
        user: Option<String>,
    },
    /// Allocated VMs whose holder made no connection for --days days; --release takes them back.
    Reclaim {
        /// Days without a connection (at least 1).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        days: u32,
        /// Only this pool.
        #[arg(long)]
        pool: Option<String>,
        /// Release them (default: only list).
        #[arg(long)]
        release: bool,
    },
}

/// Pool subcommands.
#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Create a pool.
    Create {
        /// Name.
        name: String,
        /// Machines it is meant to hold.
        #[arg(long)]
        capacity: u32,
        /// A port its machines serve (repeat for several), e.g. 3389.
        #[arg(long = "port", required = true)]
        ports: Vec<u16>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Command run (sh -c) to prepare each new VM; RAMPART_VM_ID, RAMPART_VM_ADDRESS,
        /// RAMPART_POOL and RAMPART_HOOK are set, with PATH, HOME, LANG and LC_ALL only.
        #[arg(long)]
        provision_hook: Option<String>,
        /// Command run when a VM is released.
        #[arg(long)]
        reset_hook: Option<String>,
        /// Command run when a VM is retired.
        #[arg(long)]
        destroy_hook: Option<String>,
        /// Seconds a hook may run (default 300).
        #[arg(long)]
        hook_timeout: Option<u32>,
    },
    /// Every pool with its numbers.
    List,
    /// One pool and its VMs.
    Show {
        /// Name.
        name: String,
    },
}

/// Runs a VM subcommand.
pub async fn run(client: &Client, output: Output, command: VmCommand) -> Result<(), CliError> {
    match command {
        VmCommand::Pool(command) => pool(client, output, command).await,
        VmCommand::Import { pool, file } => import(client, output, &pool, &file).await,
        VmCommand::Add { pool, id, address } => {
            let added: AddVmsResponse = client
                .post(
                    &format!("/v1/pools/{}/vms", segment(&pool)),
                    &AddVms {
                        vms: vec![NewVm {
                            id: id.clone(),
                            address,
                        }],
                    },
                )
                .await?;
            match output {
                Output::Json => json(&added)?,
                Output::Table if added.provisioning > 0 => out!("Added {id}; its provision hook is running."),
                Output::Table => out!("Added {id}; it is free."),
            }
            Ok(())
        }
        VmCommand::Retire { id, reason } => vm_action(client, output, &id, "retire", &reason, "retired").await,
        VmCommand::Maintenance { id, done, reason } => {
            let (action, said) = if done {
                ("in-service", "back in service")
            } else {
                ("maintenance", "in maintenance")
            };
            vm_action(client, output, &id, action, &reason, said).await
        }
        VmCommand::Release { id, reason } => vm_action(client, output, &id, "release", &reason, "released").await,
        VmCommand::Reassign { id, user } => {
            let vm: VmInfo = client
                .post(
                    &format!("/v1/vms/{}/reassign", segment(&id)),
                    &ReassignRequest { username: user },
                )
                .await?;
            print_vm(output, &vm, "reassigned")
        }
        VmCommand::Allocate {
            pool,
            user,
            vm,
            group,
            csv,
            allow_second,
        } => match (user, group, csv) {
            (Some(user), _, _) => {
                let got = allocate_one(client, &pool, &user, vm, allow_second).await?;
                print_vm(output, &got, "allocated")
            }
            (None, Some(group), _) => {
                let members: GroupMembers = client.get(&format!("/v1/directory/groups/{}", segment(&group))).await?;
                let people = members.usernames.into_iter().map(|u| (0, u)).collect();
                allocate_many(client, output, &pool, people, Vec::new(), allow_second).await
            }
            (None, None, Some(path)) => {
                let file = std::fs::File::open(&path)
                    .map_err(|e| CliError::failure(format!("cannot open {}: {e}", path.display())))?;
                let parsed = crate::enrol::rows::parse_csv(file).map_err(|e| CliError::failure(e.to_string()))?;
                let people = parsed.rows.into_iter().map(|r| (r.line, r.username)).collect();
                let bad = parsed
                    .bad
                    .into_iter()
                    .map(|b| (b.line, String::new(), b.reason))
                    .collect();
                allocate_many(client, output, &pool, people, bad, allow_second).await
            }
            (None, None, None) => Err(CliError::failure("name a person, --group or --csv")),
        },
        VmCommand::List { pool, state, user } => {
            let mut query = Vec::new();
            for (key, value) in [("pool", pool), ("state", state), ("user", user)] {
                if let Some(value) = value {
                    query.push(format!("{key}={}", segment(&value)));
                }
            }
            let vms: Vec<VmInfo> = client.get(&format!("/v1/vms?{}", query.join("&"))).await?;
            print_vms(output, &vms, "No VMs match.")
        }
        VmCommand::Reclaim {
            days,
            pool,
            release: false,
        } => {
            let pool = pool.map(|p| format!("&pool={}", segment(&p))).unwrap_or_default();
            let vms: Vec<VmInfo> = client.get(&format!("/v1/reclaim?days={days}{pool}")).await?;
            if output == Output::Table {
                out!(
                    "Idle (use --release to take them back): VMs with no connection from their holder for {days} days"
                );
            }
            print_vms(output, &vms, "None.")
        }
        VmCommand::Reclaim {
            days,
            pool,
            release: true,
        } => {
            let report: ReclaimReport = client.post("/v1/reclaim", &ReclaimQuery { days, pool }).await?;
            print_reclaimed(output, &report, days)
        }
    }
}

async fn pool(client: &Client, output: Output, command: PoolCommand) -> Result<(), CliError> {
    match command {
        PoolCommand::Create {
            name,
            capacity,
            ports,
            description,
            provision_hook,
            reset_hook,
            destroy_hook,
            hook_timeout,
        } => {
            let created: PoolInfo = client
                .post(
                    "/v1/pools",
                    &PoolRequest {
                        name,
                        description,
                        ports,
                        capacity,
                        provision_hook,
                        reset_hook,
                        destroy_hook,
                        hook_timeout_secs: hook_timeout,
                    },
                )
                .await?;
            match output {
                Output::Json => json(&created)?,
                Output::Table => out!(
                    "Pool {} created: capacity {}, ports {:?}.",
                    created.name,
                    created.capacity,
                    created.ports
                ),
            }
            Ok(())
        }
        PoolCommand::List => {
            let pools: Vec<PoolInfo> = client.get("/v1/pools").await?;
            match output {
                Output::Json => json(&pools)?,
                Output::Table => pool_table(&pools).print("No pools yet."),
            }
            Ok(())
        }
        PoolCommand::Show { name } => {
            let detail: PoolDetail = client.get(&format!("/v1/pools/{}", segment(&name))).await?;
            match output {
                Output::Json => json(&detail)?,
                Output::Table => {
                    pool_table(std::slice::from_ref(&detail.pool)).print("");
                    out!();
                    vm_table(&detail.vms).print("No VMs in this pool.");
                }
            }
            Ok(())
        }
    }
}

fn pool_table(pools: &[PoolInfo]) -> Table {
    let mut table = Table::new(&[
        "POOL",
        "CAPACITY",
        "FREE",
        "ALLOCATED",
        "MAINTENANCE",
        "PROVISIONING",
        "PORTS",
        "HOOKS",
        "DESCRIPTION",
    ]);
    for p in pools {
        table.row(vec![
            p.name.clone(),
            p.capacity.to_string(),
            p.free.to_string(),
            p.allocated.to_string(),
            p.maintenance.to_string(),
            p.provisioning.to_string(),
            p.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
            p.hooks.join(","),
            p.description.clone(),
        ]);
    }
    table
}

fn vm_table(vms: &[VmInfo]) -> Table {
    let mut table = Table::new(&["VM", "POOL", "ADDRESS", "STATE", "HOLDER", "SINCE", "LAST USE", "ERROR"]);
    for vm in vms {
        table.row(vec![
            vm.id.clone(),
            vm.pool.clone(),
            vm.address.clone(),
            vm.state.clone(),
            vm.holder.clone().unwrap_or_default(),
            time(vm.allocated_at),
            time(vm.last_flow_at),
            vm.error.clone().unwrap_or_default(),
        ]);
    }
    table
}

fn print_vms(output: Output, vms: &[VmInfo], empty: &str) -> Result<(), CliError> {
    match output {
        Output::Json => json(&vms)?,
        Output::Table => vm_table(vms).print(empty),
    }
    Ok(())
}

/// What `vm reclaim --release` did; exits 10 when an idle VM was left alone (used or changed
/// since it was found idle).
fn print_reclaimed(output: Output, report: &ReclaimReport, days: u32) -> Result<(), CliError> {
    match output {
        Output::Json => json(report)?,
        Output::Table => {
            out!("Released: VMs with no connection from their holder for {days} days");
            vm_table(&report.released).print("None.");
            for skipped in &report.skipped {
                let holder = skipped.holder.as_deref().unwrap_or("nobody");
                out!("  not released: {} (held by {holder}): {}", skipped.vm, skipped.reason);
            }
        }
    }
    if report.skipped.is_empty() {
        Ok(())
    } else {
        Err(CliError {
            message: format!(
                "{} of {} idle VM(s) not released",
                report.skipped.len(),
                report.skipped.len() + report.released.len()
            ),
            code: exit::PARTIAL,
        })
    }
}

fn print_vm(output: Output, vm: &VmInfo, what: &str) -> Result<(), CliError> {
    match output {
        Output::Json => json(vm)?,
        Output::Table => match &vm.holder {
            Some(holder) if vm.state == "allocated" => out!("{} ({}) {what}: held by {holder}.", vm.id, vm.address),
            _ => out!("{} ({}) {what}: now {}.", vm.id, vm.address, vm.state),
        },
    }
    Ok(())
}

async fn vm_action(
    client: &Client,
    output: Output,
    id: &str,
    action: &str,
    reason: &str,
    said: &str,
) -> Result<(), CliError> {
    let vm: VmInfo = client
        .post(
            &format!("/v1/vms/{}/{action}", segment(id)),
            &VmReason {
                reason: reason.to_owned(),
            },
        )
        .await?;
    print_vm(output, &vm, said)
}

async fn allocate_one(
    client: &Client,
    pool: &str,
    user: &str,
    vm: Option<String>,
    allow_second: bool,
) -> Result<VmInfo, CliError> {
    client
        .post(
            &format!("/v1/pools/{}/allocations", segment(pool)),
            &AllocateRequest {
                username: user.to_owned(),
                vm,
                allow_second,
            },
        )
        .await
}

/// One row of a bulk run's report.
#[derive(Debug, Serialize)]
struct RowResult {
    line: u64,
    username: String,
    vm: Option<String>,
    error: Option<String>,
}

async fn allocate_many(
    client: &Client,
    output: Output,
    pool: &str,
    people: Vec<(u64, String)>,
    bad: Vec<(u64, String, String)>,
    allow_second: bool,
) -> Result<(), CliError> {
    let bar = crate::view::progress_bar(people.len(), output, "people");
    let mut results: Vec<RowResult> = futures::stream::iter(people)
        .map(|(line, username)| {
            let bar = bar.clone();
            async move {
                let outcome = allocate_one(client, pool, &username, None, allow_second).await;
                bar.inc(1);
                match outcome {
                    Ok(vm) => RowResult {
                        line,
                        username,
                        vm: Some(vm.id),
                        error: None,
                    },
                    Err(e) => RowResult {
                        line,
                        username,
                        vm: None,
                        error: Some(e.message),
                    },
                }
            }
        })
        .buffer_unordered(ALLOCATIONS_IN_FLIGHT)
        .collect()
        .await;
    bar.finish_and_clear();
    results.extend(bad.into_iter().map(|(line, username, reason)| RowResult {
        line,
        username,
        vm: None,
        error: Some(reason),
    }));
    results.sort_by(|a, b| (a.line, &a.username).cmp(&(b.line, &b.username)));
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    match output {
        Output::Json => json(&results)?,
        Output::Table => {
            out!(
                "Allocated {} VM(s) in {pool}; {failed} refused.",
                results.len() - failed
            );
            for r in results.iter().filter(|r| r.error.is_some()) {
                let error = r.error.as_deref().unwrap_or("");
                match (r.line, r.username.is_empty()) {
                    (0, _) => out!("  {}: {error}", r.username),
                    (line, true) => out!("  line {line}: {error}"),
                    (line, false) => out!("  line {line} ({}): {error}", r.username),
                }
            }
        }
    }
    if failed > 0 {
        return Err(CliError {
            message: format!("{failed} of {} people got no VM", results.len()),
            code: exit::PARTIAL,
        });
    }
    Ok(())
}

/// An import that could not go on (the provisioner unreachable, a key refused): what is in
/// and where to resume, so nothing is added twice or forgotten.
fn stopped(e: CliError, line: u64, added: usize) -> CliError {
    CliError {
        message: format!(
            "{}\nstopped at line {line}: {added} VM(s) from earlier lines were added; \
             rows from line {line} on were not (run the import again with those rows)",
            e.message
        ),
        code: e.code,
    }
}

async fn import(client: &Client, output: Output, pool: &str, path: &PathBuf) -> Result<(), CliError> {
    let data = std::fs::read(path).map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?;
    let inventory = parse_inventory(&data).map_err(CliError::failure)?;
    let mut bad = inventory.bad.clone();
    let (mut added, mut provisioning) = (0, 0);
    for chunk in inventory.rows.chunks(IMPORT_CHUNK) {
        let body = AddVms {
            vms: chunk
                .iter()
                .map(|r| NewVm {
                    id: r.id.clone(),
                    address: r.address.clone(),
                })
                .collect(),
        };
        let path = format!("/v1/pools/{}/vms", segment(pool));
        match client.post::<_, AddVmsResponse>(&path, &body).await {
            Ok(done) => {
                added += done.added;
                provisioning += done.provisioning;
            }
            // All or none per request: find the refused rows one by one.
            Err(e) if e.code == exit::CONFLICT => {
                for row in chunk {
                    let one = AddVms {
                        vms: vec![NewVm {
                            id: row.id.clone(),
                            address: row.address.clone(),
                        }],
                    };
                    match client.post::<_, AddVmsResponse>(&path, &one).await {
                        Ok(done) => {
                            added += done.added;
                            provisioning += done.provisioning;
                        }
                        Err(e) if e.code == exit::CONFLICT => bad.push((row.line, e.message)),
                        Err(e) => return Err(stopped(e, row.line, added)),
                    }
                }
            }
            Err(e) => return Err(stopped(e, chunk.first().map_or(0, |r| r.line), added)),
        }
    }
    bad.sort();
    match output {
        Output::Json => json(&serde_json::json!({
            "added": added,
            "provisioning": provisioning,
            "refused": bad.iter().map(|(line, reason)| serde_json::json!({"line": line, "reason": reason})).collect::<Vec<_>>(),
        }))?,
        Output::Table => {
            out!("Added {added} VM(s) to {pool}; {provisioning} wait for their provision hook.");
            for (line, reason) in &bad {
                out!("  line {line}: {reason}");
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(CliError {
            message: format!("{} row(s) refused", bad.len()),
            code: exit::PARTIAL,
        })
    }
}

/// `rampart report capacity`.
pub async fn capacity(client: &Client, output: Output) -> Result<(), CliError> {
    let report: CapacityReport = client.get("/v1/reports/capacity").await?;
    match output {
        Output::Json => json(&report)?,
        Output::Table => {
            let mut table = Table::new(&[
                "POOL",
                "CAPACITY",
                "ALLOCATED",
                "FREE",
                "MAINTENANCE",
                "PROVISIONING",
                "PER DAY (7 d)",
                "DAYS LEFT",
            ]);
            for p in &report.pools {
                table.row(vec![
                    p.pool.name.clone(),
                    p.pool.capacity.to_string(),
                    p.pool.allocated.to_string(),
                    p.pool.free.to_string(),
                    p.pool.maintenance.to_string(),
                    p.pool.provisioning.to_string(),
                    format!("{:.1}", p.rate_per_day),
                    p.days_until_full.map_or_else(|| "-".to_owned(), |d| format!("{d:.1}")),
                ]);
            }
            table.print("No pools yet.");
        }
    }
    Ok(())
}
