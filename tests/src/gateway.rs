//! A real `rampart-gateway` process per test: a fresh CA and certificate, a generated
//! `gateway.toml` and `policy.toml`, JSON logs captured to a file, and tokens enrolled straight
//! into its store the way the provisioner will.

use crate::bin;
use rampart_certs::CertificateAuthority;
use rampart_core::totp::{SEED_LEN, TotpParams, secret_base32};
use rampart_store::{KeyRing, SqliteStore, Store, TokenRecord, TokenState, UserRecord};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running gateway, killed when dropped.
#[derive(Debug)]
pub struct GatewayProc {
    child: Child,
    /// Temporary folder with config, state and logs.
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The organisation CA (PEM) clients trust.
    pub ca_pem: String,
    /// The CA itself, to issue more certificates (e.g. for slapd).
    pub ca: CertificateAuthority,
    /// State directory.
    pub state: PathBuf,
}

/// What to put in `gateway.toml` besides the basics.
#[derive(Debug, Default)]
pub struct GatewaySpec<'a> {
    /// The `[directory]` table, including its header (empty: local directory).
    pub directory: &'a str,
    /// `policy.toml`.
    pub policy: &'a str,
    /// Lines for the `[settings]` table.
    pub settings: &'a str,
}

impl GatewayProc {
    /// A CA for a gateway about to be started (so other services can use it first).
    pub fn new_ca() -> CertificateAuthority {
        CertificateAuthority::create("Rampart Test").unwrap()
    }

    /// Writes config and starts the gateway; waits until it listens.
    pub fn start(ca: CertificateAuthority, spec: &GatewaySpec<'_>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let cert = ca.issue_server(&["127.0.0.1".into(), "localhost".into()]).unwrap();
        cert.save(&dir.path().join("gateway.pem"), &dir.path().join("gateway.key"))
            .unwrap();
        std::fs::write(dir.path().join("policy.toml"), spec.policy).unwrap();
        let config = format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"state\"\ncert = \"gateway.pem\"\nkey = \"gateway.key\"\n\
             policy = \"policy.toml\"\n\n[settings]\n{}\n\n{}\n",
            spec.settings, spec.directory
        );
        std::fs::write(dir.path().join("gateway.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let child = Command::new(bin("rampart-gateway"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(dir.path().join("gateway.toml"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let ca_pem = ca.cert_pem().to_owned();
        let mut gw = Self {
            child,
            dir,
            addr: String::new(),
            ca_pem,
            ca,
            state,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(listen) = gw.log_events().iter().find(|e| e["message"] == "gateway ready") {
                gw.addr = listen["listen"].as_str().unwrap().to_owned();
                break;
            }
            if let Ok(Some(status)) = gw.child.try_wait() {
                panic!("rampart-gateway exited with {status}: {}", gw.log());
            }
            assert!(Instant::now() < deadline, "gateway did not start: {}", gw.log());
            std::thread::sleep(Duration::from_millis(25));
        }
        gw
    }

    /// The raw log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The log as JSON events.
    pub fn log_events(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Gives `stable_id` a pending token as the provisioner would; returns the base32 secret.
    pub async fn enrol(&self, stable_id: &str, username: &str) -> String {
        let store = SqliteStore::open(&self.state).await.unwrap();
        let keys = KeyRing::load_or_create(&self.state.join("master.key")).unwrap();
        store
            .upsert_user(&UserRecord {
                id: stable_id.into(),
                username: username.into(),
                display_name: username.into(),
                password_hash: None,
                enabled: true,
                groups: vec![],
                created_at: 0,
            })
            .await
            .unwrap();
        let seed = crate::random_bytes(SEED_LEN);
        let token_id = format!("tok-{stable_id}");
        store
            .insert_token(&TokenRecord {
                sealed: keys.seal(&token_id, &seed).unwrap(),
                id: token_id,
                user_id: stable_id.into(),
                state: TokenState::Pending,
                params: TotpParams::default(),
                last_step: None,
                failures: 0,
                created_at: 0,
                activated_at: None,
                last_used_at: None,
                drift_steps: 0,
            })
            .await
            .unwrap();
        store.close().await;
        secret_base32(&seed)
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
