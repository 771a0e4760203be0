//! VM inventory and allocation at the scale of the move home: `rampart vm import` of VMS
//! machines from CSV, then `rampart vm allocate --csv` for PEOPLE found in a real slapd, through
//! a provisioner over HTTPS, each timed as the operator sees it; then `rampart report capacity`.
//!
//! `cargo build --release --bins && cargo run --release -p rampart-benches --bin vm-capacity -- [VMS] [PEOPLE]`
//! (defaults 732 and 700).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_certs::CertificateAuthority;
use rampart_directory::{Directory, LdapDirectory};
use rampart_provisioner::{Provisioner, ProvisionerServer, ProvisionerSettings};
use rampart_store::{KeyRing, SqliteStore, Store};
use rampart_tests::slapd::{SERVICE_PASSWORD, Slapd, generated_people_ldif, generated_person};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let vms: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(732);
    let people: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(700);
    anyhow::ensure!(people <= vms, "PEOPLE must not exceed VMS");
    let rampart = std::env::current_exe()?.with_file_name("rampart");
    anyhow::ensure!(
        rampart.exists(),
        "{} is missing: run `cargo build --release --bins` first",
        rampart.display()
    );
    let slapd = Slapd::start_with(None, &generated_people_ldif(people), false);
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    std::fs::write(dir.path().join("pw"), SERVICE_PASSWORD)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&state).await?);
    let keys = Arc::new(KeyRing::load_or_create(&state.join("master.key"))?);
    let directory: Arc<dyn Directory> =
        Arc::new(LdapDirectory::new(slapd.ldap_config(&dir.path().join("pw"), 16)).map_err(anyhow::Error::msg)?);
    let provisioner = Provisioner::new(store.clone(), keys, directory, ProvisionerSettings::default());
    let (operator, api_key) =
        rampart_provisioner::service::new_operator("bench", rampart_store::OperatorRole::Admin, "bench", 0)?;
    store.insert_operator(&operator).await?;
    let ca = CertificateAuthority::create("Rampart Bench")?;
    ca.save(&dir.path().join("ca"))?;
    let cert = ca.issue_server(&["127.0.0.1".into()])?;
    let server = ProvisionerServer::bind(
        "127.0.0.1:0".parse()?,
        cert.cert_chain()?,
        cert.private_key()?,
        provisioner,
    )?;
    let url = format!("https://{}", server.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let run = |args: &[&str]| -> (Output, Duration) {
        let started = Instant::now();
        let output = Command::new(&rampart)
            .args(args)
            .env("RAMPART_URL", &url)
            .env("RAMPART_API_KEY", &api_key)
            .env("RAMPART_CA", dir.path().join("ca").join("ca.pem"))
            .output()
            .expect("run rampart");
        let elapsed = started.elapsed();
        assert!(
            output.status.success(),
            "rampart {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (output, elapsed)
    };
    run(&[
        "vm",
        "pool",
        "create",
        "desktops",
        "--capacity",
        &vms.to_string(),
        "--port",
        "3389",
    ]);

    let inventory = dir.path().join("inventory.csv");
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
    let (_, import_time) = run(&["vm", "import", "--pool", "desktops", inventory.to_str().unwrap()]);

    let csv = dir.path().join("people.csv");
    let mut text = String::from("username\n");
    for i in 0..people {
        text.push_str(&format!("{}\n", generated_person(i).0));
    }
    std::fs::write(&csv, text)?;
    let (_, allocate_time) = run(&[
        "-o",
        "json",
        "vm",
        "allocate",
        "--pool",
        "desktops",
        "--csv",
        csv.to_str().unwrap(),
    ]);

    let (report, report_time) = run(&["-o", "json", "report", "capacity"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout)?;
    let pool = &report["pools"][0]["pool"];
    println!("vm-capacity: {vms} VMs, {people} people in slapd {}", slapd.url);
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
    let _ = stop.send(());
    let _ = serving.await;
    Ok(())
}
