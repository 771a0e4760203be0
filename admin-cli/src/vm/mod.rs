//! `rampart vm`: VM pools for the service desk — pools, inventory import, allocations (one
//! person, a directory group or a CSV, with a progress bar and a per-row report), release,
//! reassignment, maintenance, retirement, reclaiming idle VMs — and `rampart report capacity`.
mod allocate;
mod capacity;
mod import;
mod inventory;
mod print;

use crate::client::{CliError, Client, segment};
use crate::view::out;
use crate::view::{Output, json};
use clap::Subcommand;
use rampart_api::provisioner::GroupMembers;
use rampart_api::vms::{
    AddVms, AddVmsResponse, NewVm, PoolDetail, PoolInfo, PoolRequest, ReassignRequest, ReclaimQuery, ReclaimReport,
    VmInfo, VmReason,
};
use std::path::PathBuf;

use allocate::{allocate_many, allocate_one};
use import::import;
use print::{pool_table, print_reclaimed, print_vm, print_vms, vm_table};

pub use capacity::capacity;

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
