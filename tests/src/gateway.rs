//! A real `rampart-gateway` process per test: a fresh CA and certificate, a generated
//! `gateway.toml` and `policy.toml`, JSON logs captured to a file, and tokens enrolled straight
//! into its store the way the provisioner will.

use crate::bin;
use rampart_certs::CertificateAuthority;
use rampart_core::totp::{SEED_LEN, TotpParams, secret_base32};
use rampart_store::{KeyRing, OperatorRecord, OperatorRole, SqliteStore, Store, TokenRecord, TokenState, UserRecord};
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
    /// `https://127.0.0.1:PORT` of the admin listener.
    pub admin_url: String,
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
            "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nstate_dir = \"state\"\ncert = \"gateway.pem\"\nkey = \"gateway.key\"\n\
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
            admin_url: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let events = gw.log_events();
            let ready = events.iter().find(|e| e["message"] == "gateway ready");
            let admin = events.iter().find(|e| e["message"] == "admin listener serving HTTPS");
            if let (Some(ready), Some(admin)) = (ready, admin) {
                gw.addr = ready["listen"].as_str().unwrap().to_owned();
                gw.admin_url = format!("https://{}", admin["listen"].as_str().unwrap());
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

impl GatewayProc {
    /// The gateway's config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    /// The policy file the gateway watches.
    pub fn policy_path(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    /// Creates an operator with `role` (`admin`, `helpdesk`, `auditor`) straight in the store,
    /// as `rampart-provisioner init` or `rampart operator create` would; returns the API key.
    pub async fn operator(&self, name: &str, role: &str) -> String {
        let store = SqliteStore::open(&self.state).await.unwrap();
        let key = format!("rk_{}", hex::encode(crate::random_bytes(32)));
        store
            .insert_operator(&OperatorRecord {
                id: format!("op-{name}"),
                name: name.into(),
                role: OperatorRole::parse(role).unwrap(),
                key_hash: rampart_store::access::key_hash(&key),
                created_at: 0,
                created_by: "test".into(),
                revoked_at: None,
            })
            .await
            .unwrap();
        store.close().await;
        key
    }

    /// Calls the admin API; returns the status and the body (JSON, or a string for text).
    pub async fn admin(&self, method: &str, path: &str, api_key: Option<&str>) -> (u16, Value) {
        let client = crate::https_client(&self.ca_pem);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = client.request(method, format!("{}{path}", self.admin_url));
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// Sends SIGHUP (policy reload).
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until a log event with `message` has appeared `count` times; returns them all.
    pub fn wait_log(&self, message: &str, count: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let found: Vec<Value> = self
                .log_events()
                .into_iter()
                .filter(|e| e["message"] == message)
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {count}× {message:?} in the gateway log within {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
