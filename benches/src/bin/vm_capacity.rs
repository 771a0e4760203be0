//! VM inventory and allocation at the scale of the move home: `rampart vm import` of VMS
//! machines from CSV, then `rampart vm allocate --csv` for PEOPLE found in a real slapd, through
//! a provisioner over HTTPS, each timed as the operator sees it; then `rampart report capacity`.
//!
//! `cargo build --release --bins && cargo run --release -p rampart-benches --bin vm-capacity -- [VMS] [PEOPLE]`
//! (defaults 732 and 700).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_benches::provisioner::BenchProvisioner;
use rampart_store::OperatorRole;
use rampart_tests::slapd::generated_person;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let vms: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(732);
    let people: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(700);
    anyhow::ensure!(people <= vms, "PEOPLE must not exceed VMS");
    let prov = BenchProvisioner::start(people, OperatorRole::Admin).await?;
    let dir = prov.dir.path().to_owned();
    prov.rampart(&[
        "vm",
        "pool",
        "create",
        "desktops",
        "--capacity",
        &vms.to_string(),
        "--port",
        "3389",
    ]);

    let inventory = dir.join("inventory.csv");
    let mut text = String::from("id,address\n");
    for i in 0..vms {
        text.push_str(&format!(
            "vdi-{i:04},10.{}.{}.{}\n",
            20 + i / 65_536,
            (i / 256) % 256,
            i % 256
        ));
    }
    std::fs::write(&inventory, text)?;
    let (_, import_time) = prov.rampart(&["vm", "import", "--pool", "desktops", inventory.to_str().unwrap()]);

    let csv = dir.join("people.csv");
    let mut text = String::from("username\n");
    for i in 0..people {
        text.push_str(&format!("{}\n", generated_person(i).0));
    }
    std::fs::write(&csv, text)?;
    let (_, allocate_time) = prov.rampart(&[
        "-o",
        "json",
        "vm",
        "allocate",
        "--pool",
        "desktops",
        "--csv",
        csv.to_str().unwrap(),
    ]);

    let (report, report_time) = prov.rampart(&["-o", "json", "report", "capacity"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout)?;
    let pool = &report["pools"][0]["pool"];
    println!("vm-capacity: {vms} VMs, {people} people in slapd {}", prov.slapd.url);
    println!(
        "  import {vms} VMs from CSV:          {:>7.2} s",
        import_time.as_secs_f64()
    );
    println!(
        "  allocate to {people} people (CSV):   {:>7.2} s  ({:.0} allocations/s)",
        allocate_time.as_secs_f64(),
        people as f64 / allocate_time.as_secs_f64()
    );
    println!(
        "  capacity report:                 {:>7.2} s",
        report_time.as_secs_f64()
    );
    println!(
        "  report: capacity {}, allocated {}, free {}, maintenance {}",
        pool["capacity"], pool["allocated"], pool["free"], pool["maintenance"]
    );
    anyhow::ensure!(
        pool["allocated"].as_u64() == Some(people as u64) && pool["free"].as_u64() == Some((vms - people) as u64),
        "the report does not match: {report}"
    );
    prov.stop().await
}
