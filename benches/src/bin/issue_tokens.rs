//! Bulk token issue: `rampart enrol` issuing tokens with QR images to people in a real slapd,
//! through a provisioner over HTTPS, timed from the operator's point of view (one command).
//!
//! `cargo build --release --bins && cargo run --release -p rampart-benches --bin issue-tokens -- [PEOPLE]`
//! (default 1000). Prints the time of the first run (everything issued: directory lookups,
//! sealing, SQLite commits, QR PNGs, journal and manifests) and of a second run over a fresh
//! folder (nothing reissued: everyone is already enrolled).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_benches::provisioner::BenchProvisioner;
use rampart_store::OperatorRole;
use rampart_tests::slapd::generated_person;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let people: usize = std::env::args().nth(1).map_or(Ok(1000), |a| a.parse())?;
    let prov = BenchProvisioner::start(people, OperatorRole::Helpdesk).await?;
    let dir = prov.dir.path().to_owned();
    let csv = dir.join("people.csv");
    let mut text = String::from("username,email,group\n");
    for i in 0..people {
        let (uid, _, _) = generated_person(i);
        text.push_str(&format!("{uid},{uid}@bank.example,staff\n"));
    }
    std::fs::write(&csv, text)?;

    let enrol = |out: &str| {
        let out = dir.join(out);
        let (output, elapsed) = prov.rampart(&[
            "--output",
            "json",
            "enrol",
            "--csv",
            csv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("summary");
        (elapsed, summary)
    };
    let (first, summary) = enrol("out1");
    let issued = summary["issued"].as_u64().unwrap_or(0);
    let images = std::fs::read_dir(dir.join("out1").join("qr"))?.count();
    anyhow::ensure!(
        issued == people as u64 && images == people,
        "issued {issued}, {images} images"
    );
    let (second, summary) = enrol("out2");
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
    prov.stop().await
}
