//! Bulk token issue: `rampart enrol` issuing tokens with QR images to people in a real slapd,
//! through a provisioner over HTTPS, timed from the operator's point of view (one command).
//!
//! `cargo build --release --bins && cargo run --release -p rampart-benches --bin issue-tokens -- [PEOPLE]`
//! (default 1000). Prints the time of the first run (everything issued: directory lookups,
//! sealing, SQLite commits, QR PNGs, journal and manifests) and of a second run over a fresh
//! folder (nothing reissued: everyone is already enrolled).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_certs::CertificateAuthority;
use rampart_directory::{Directory, LdapDirectory};
use rampart_provisioner::{Provisioner, ProvisionerServer, ProvisionerSettings};
use rampart_store::{KeyRing, SqliteStore, Store};
use rampart_tests::slapd::{SERVICE_PASSWORD, Slapd, generated_people_ldif, generated_person};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let people: usize = std::env::args().nth(1).map_or(Ok(1000), |a| a.parse())?;
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
        rampart_provisioner::service::new_operator("bench", rampart_store::OperatorRole::Helpdesk, "bench", 0)?;
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

    let csv = dir.path().join("people.csv");
    let mut text = String::from("username,email,group\n");
    for i in 0..people {
        let (uid, _, _) = generated_person(i);
        text.push_str(&format!("{uid},{uid}@bank.example,staff\n"));
    }
    std::fs::write(&csv, text)?;

    let enrol = |out: &Path| {
        let started = Instant::now();
        let output = Command::new(&rampart)
            .args(["--output", "json", "enrol", "--csv"])
            .arg(&csv)
            .arg("--out")
            .arg(out)
            .env("RAMPART_URL", &url)
            .env("RAMPART_API_KEY", &api_key)
            .env("RAMPART_CA", dir.path().join("ca").join("ca.pem"))
            .output()
            .expect("run rampart");
        let elapsed = started.elapsed();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("summary");
        (elapsed, summary)
    };
    let (first, summary) = tokio::task::block_in_place(|| enrol(&dir.path().join("out1")));
    let issued = summary["issued"].as_u64().unwrap_or(0);
    let images = std::fs::read_dir(dir.path().join("out1").join("qr"))?.count();
    anyhow::ensure!(
        issued == people as u64 && images == people,
        "issued {issued}, {images} images"
    );
    let (second, summary) = tokio::task::block_in_place(|| enrol(&dir.path().join("out2")));
    anyhow::ensure!(summary["issued"] == 0, "a rerun issued tokens: {summary}");

    println!("issue-tokens: {people} people in slapd, `rampart enrol` over HTTPS");
    println!(
        "  first run (issue + QR PNGs + manifest): {:.3} s  ({:.0} tokens/s; goal < 2 s for 1000)",
        first.as_secs_f64(),
        people as f64 / first.as_secs_f64()
    );
    println!(
        "  second run (all skipped):               {:.3} s",
        second.as_secs_f64()
    );
    let _ = stop.send(());
    serving.await??;
    Ok(())
}
