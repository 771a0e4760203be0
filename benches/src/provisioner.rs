//! A provisioner over HTTPS whose directory is a real slapd with generated people, and the
//! `rampart` CLI pointed at it: what the CLI benchmarks (`issue-tokens`, `vm-capacity`) time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_certs::CertificateAuthority;
use rampart_directory::{Directory, LdapDirectory};
use rampart_provisioner::{Provisioner, ProvisionerServer, ProvisionerSettings};
use rampart_store::{KeyRing, OperatorRole, SqliteStore, Store};
use rampart_tests::slapd::{SERVICE_PASSWORD, Slapd, generated_people_ldif};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A running provisioner for `people` generated people; stopped when dropped.
#[derive(Debug)]
pub struct BenchProvisioner {
    /// Temporary folder: state, CA, inputs and outputs.
    pub dir: tempfile::TempDir,
    /// The directory.
    pub slapd: Slapd,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    api_key: String,
    rampart: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl BenchProvisioner {
    /// Starts slapd with `people` generated people and a provisioner with an operator of `role`;
    /// needs the release `rampart` binary beside the benchmark.
    pub async fn start(people: usize, role: OperatorRole) -> anyhow::Result<Self> {
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
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(SqliteStore::open(&state).await?);
        let keys = std::sync::Arc::new(KeyRing::load_or_create(&state.join("master.key"))?);
        let directory: std::sync::Arc<dyn Directory> = std::sync::Arc::new(
            LdapDirectory::new(slapd.ldap_config(&dir.path().join("pw"), 16)).map_err(anyhow::Error::msg)?,
        );
        let provisioner = Provisioner::new(
            store.clone(),
            keys,
            directory,
            ProvisionerSettings::default(),
            rampart_core::clock::Clock::system(),
        );
        let (operator, api_key) = rampart_provisioner::service::new_operator("bench", role, "bench", 0)?;
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
        Ok(Self {
            dir,
            slapd,
            url,
            api_key,
            rampart,
            stop: Some(stop),
            serving: Some(serving),
        })
    }

    /// Runs `rampart ARGS` against the provisioner; panics unless it succeeds. Returns its
    /// output and how long it took.
    pub fn rampart(&self, args: &[&str]) -> (Output, Duration) {
        let started = Instant::now();
        let output = tokio::task::block_in_place(|| {
            Command::new(&self.rampart)
                .args(args)
                .env("RAMPART_URL", &self.url)
                .env("RAMPART_API_KEY", &self.api_key)
                .env("RAMPART_CA", self.dir.path().join("ca").join("ca.pem"))
                .output()
                .expect("run rampart")
        });
        let elapsed = started.elapsed();
        assert!(
            output.status.success(),
            "rampart {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (output, elapsed)
    }

    /// Stops the provisioner and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serving) = self.serving.take() {
            serving.await??;
        }
        Ok(())
    }
}
