//! How pools and VMs are shown: tables, and what an action or a reclaim did.

use crate::client::{CliError, exit};
use crate::view::out;
use crate::view::{Output, Table, json, time};
use rampart_api::vms::{PoolInfo, ReclaimReport, VmInfo};

pub(super) fn pool_table(pools: &[PoolInfo]) -> Table {
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

pub(super) fn vm_table(vms: &[VmInfo]) -> Table {
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

pub(super) fn print_vms(output: Output, vms: &[VmInfo], empty: &str) -> Result<(), CliError> {
    match output {
        Output::Json => json(&vms)?,
        Output::Table => vm_table(vms).print(empty),
    }
    Ok(())
}

/// What `vm reclaim --release` did; exits 10 when an idle VM was left alone (used or changed
/// since it was found idle).
pub(super) fn print_reclaimed(output: Output, report: &ReclaimReport, days: u32) -> Result<(), CliError> {
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

pub(super) fn print_vm(output: Output, vm: &VmInfo, what: &str) -> Result<(), CliError> {
    match output {
        Output::Json => json(vm)?,
        Output::Table => match &vm.holder {
            Some(holder) if vm.state == "allocated" => out!("{} ({}) {what}: held by {holder}.", vm.id, vm.address),
            _ => out!("{} ({}) {what}: now {}.", vm.id, vm.address, vm.state),
        },
    }
    Ok(())
}
