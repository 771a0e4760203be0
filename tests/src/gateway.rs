//! A real `rampart-gateway` process per test: a fresh CA and certificate, a generated
//! `gateway.toml` and `policy.toml`, JSON logs captured to a file, and tokens enrolled straight
//! into its store the way the provisioner will.

use crate::bin;
use rampart_certs::CertificateAuthority;
use rampart_core::totp::{SEED_LEN, TotpParams, secret_base32};
use rampart_store::prelude::*;
use rampart_store::{KeyRing, OperatorRecord, OperatorRole, TokenRecord, UserRecord};
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
    /// Its `[store]` table, for the kit's own visits to its store.
    pub store_config: rampart_store::StoreConfig,
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
    /// Another gateway's state directory to share (one store, one master key), as gateways
    /// behind one name do; None: a state directory of its own.
    pub shared_state: Option<&'a std::path::Path>,
    /// Lines of a `[store]` table (empty: SQLite in the state directory), e.g. a PostgreSQL
    /// URL and a key-encryption key shared with other gateways on their own hosts.
    pub store: &'a str,
    /// Certificate and key files to serve with (e.g. from `rampart cert issue`); None: the
    /// kit issues them from the CA.
    pub cert_files: Option<(&'a std::path::Path, &'a std::path::Path)>,
}

impl GatewayProc {
    /// A CA for a gateway about to be started (so other services can use it first).
    pub fn new_ca() -> CertificateAuthority {
        CertificateAuthority::create("Rampart Test").unwrap()
    }

    /// Writes config and starts the gateway; waits until it listens.
    pub fn start(ca: CertificateAuthority, spec: &GatewaySpec<'_>) -> Self {
        static SHARED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = crate::leaks::service_dir();
        let state = spec
            .shared_state
            .map_or_else(|| dir.path().join("state"), std::path::Path::to_path_buf);
        // Gateways sharing a state directory share its audit folder: one stream each.
        let audit = match spec.shared_state {
            Some(_) => format!(
                "[audit]\nstream = \"gateway.shared{}\"\n",
                SHARED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
            None => String::new(),
        };
        match spec.cert_files {
            Some((cert, key)) => {
                std::fs::copy(cert, dir.path().join("gateway.pem")).unwrap();
                std::fs::copy(key, dir.path().join("gateway.key")).unwrap();
            }
            None => {
                let cert = ca.issue_server(&["127.0.0.1".into(), "localhost".into()]).unwrap();
                cert.save(&dir.path().join("gateway.pem"), &dir.path().join("gateway.key"))
                    .unwrap();
            }
        }
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(dir.path().join("policy.toml"), spec.policy).unwrap();
        let config = format!(
            "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ncert = \"gateway.pem\"\nkey = \"gateway.key\"\n\
             policy = \"policy.toml\"\n\n{audit}\n[settings]\n{}\n\n[store]\n{}\n\n{}\n",
            state.display(),
            spec.settings,
            spec.store,
            spec.directory
        );
        let store_config: rampart_store::StoreConfig = toml::from_str(spec.store).unwrap();
        std::fs::write(dir.path().join("gateway.toml"), config).unwrap();
        let ca_pem = ca.cert_pem().to_owned();
        let mut gw = Self {
            child: Self::spawn(dir.path()),
            dir,
            addr: String::new(),
            ca_pem,
            ca,
            state,
            admin_url: String::new(),
            store_config,
        };
        gw.wait_ready();
        gw
    }

    fn spawn(dir: &std::path::Path) -> Child {
        let log = std::fs::File::create(dir.join("gateway.log")).unwrap();
        Command::new(bin("rampart-gateway"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(dir.join("gateway.toml"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let events = self.log_events();
            let ready = events.iter().find(|e| e["message"] == "gateway ready");
            let admin = events.iter().find(|e| e["message"] == "admin listener serving HTTPS");
            if let (Some(ready), Some(admin)) = (ready, admin) {
                self.addr = ready["listen"].as_str().unwrap().to_owned();
                self.admin_url = format!("https://{}", admin["listen"].as_str().unwrap());
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("rampart-gateway exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "gateway did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the gateway with SIGTERM (connections are closed cleanly) and waits for it; does
    /// nothing when it has exited already (e.g. after [`GatewayProc::kill9`]).
    pub fn stop(&mut self) {
        if self.child.try_wait().unwrap().is_some() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the gateway did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the gateway and starts it again on the same addresses, state and config.
    pub fn restart(&mut self) {
        self.stop();
        let config_path = self.config_path();
        let admin = self.admin_url.trim_start_matches("https://").to_owned();
        let config = std::fs::read_to_string(&config_path)
            .unwrap()
            .replacen("listen = \"127.0.0.1:0\"", &format!("listen = \"{}\"", self.addr), 1)
            .replacen(
                "admin_listen = \"127.0.0.1:0\"",
                &format!("admin_listen = \"{admin}\""),
                1,
            );
        std::fs::write(&config_path, config).unwrap();
        let old_log = self.dir.path().join("gateway.log");
        let _ = std::fs::rename(&old_log, self.dir.path().join("gateway.before-restart.log"));
        self.child = Self::spawn(self.dir.path());
        self.wait_ready();
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
        let (store, keys) = self.open_store().await;
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
            .insert_token(&TokenRecord::pending(
                token_id.clone(),
                stable_id.into(),
                TotpParams::default(),
                keys.seal(&token_id, &seed).unwrap(),
                0,
            ))
            .await
            .unwrap();
        let secret = secret_base32(&seed);
        crate::leaks::remember("seed", &secret);
        secret
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
        let (store, _) = self.open_store().await;
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
        key
    }

    /// The gateway's store and seal keys, opened as another process would.
    pub async fn open_store(&self) -> (std::sync::Arc<dyn Store>, KeyRing) {
        let store = self.store_config.open(&self.state).await.unwrap();
        let keys = self
            .store_config
            .key_ring(store.clone(), &self.state, true, 0)
            .await
            .unwrap();
        (store, keys)
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

impl GatewayProc {
    /// Runs the `rampart` CLI against this gateway's admin API with `api_key` (passed in the
    /// environment, not on the command line) and the organisation CA.
    pub async fn cli(&self, api_key: &str, args: &[&str]) -> std::process::Output {
        let ca = self.dir.path().join("ca.pem");
        if !ca.exists() {
            std::fs::write(&ca, &self.ca_pem).unwrap();
        }
        tokio::process::Command::new(bin("rampart"))
            .arg("--gateway-admin")
            .arg(&self.admin_url)
            .arg("--ca")
            .arg(&ca)
            .args(args)
            .env("RAMPART_API_KEY", api_key)
            .env_remove("RAMPART_URL")
            .env_remove("RAMPART_GATEWAY_ADMIN")
            .env_remove("RAMPART_CA")
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap()
    }

    /// Replaces `policy.toml` atomically (temporary file, then rename), as an editor or a
    /// deployment tool should.
    pub fn write_policy(&self, text: &str) {
        let temp = self.dir.path().join(".policy.toml.tmp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, self.policy_path()).unwrap();
    }

    /// `GET /metrics` with `api_key`: the status and the raw exposition text.
    pub async fn metrics_text(&self, api_key: Option<&str>) -> (u16, String) {
        let client = crate::https_client(&self.ca_pem);
        let mut request = client.get(format!("{}/metrics", self.admin_url));
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// The flow log (`STATE/flows.jsonl`), one JSON value per record.
    pub fn flow_records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state.join("flows.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A TCP echo server on 127.0.0.1, served by the calling test's runtime; returns its address.
pub async fn spawn_echo() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A real slapd with the fixture directory, a gateway that checks passwords and groups there
/// (as the service account; `employeeType: disabled` disables), and an echo target. Policies
/// are written with `{echo}` standing for the echo target's address.
#[derive(Debug)]
pub struct LdapLab {
    /// The gateway (dropped before slapd).
    pub gw: GatewayProc,
    /// The directory.
    pub slapd: crate::slapd::Slapd,
    /// `127.0.0.1:PORT` of the echo target.
    pub echo: String,
    /// The `[directory]` table the gateway was given.
    pub directory: String,
    /// The policy the gateway was given (with the echo address filled in).
    pub policy_text: String,
    _secrets: tempfile::TempDir,
}

impl LdapLab {
    /// Alice enrolled at this gateway, set up from a generated profile and logged in: the
    /// temporary folder and her client home.
    pub async fn alice_logged_in(&self) -> (tempfile::TempDir, PathBuf) {
        use crate::slapd::ALICE;
        let secret = self.gw.enrol(ALICE.uuid, ALICE.uid).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("org-ca.pem");
        std::fs::write(&ca, &self.gw.ca_pem).unwrap();
        let line = Command::new(bin("rampart"))
            .arg("--ca")
            .arg(&ca)
            .args(["profile", "create", "--user", "alice", "--gateway", &self.gw.addr])
            .env_remove("RAMPART_URL")
            .output()
            .unwrap();
        assert!(line.status.success(), "{}", crate::output_text(&line));
        let home = dir.path().join("home");
        let line = String::from_utf8(line.stdout).unwrap();
        let out = crate::rampart_connect(&home)
            .args(["setup", line.trim()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", crate::output_text(&out));
        let mut login = crate::rampart_connect(&home);
        login.args([
            "login",
            "--password-stdin",
            "--otp",
            &crate::oathtool_code(&secret, crate::now()),
        ]);
        let out = crate::run_with_stdin(login, &format!("{}\n", ALICE.password));
        assert!(out.status.success(), "{}", crate::output_text(&out));
        (dir, home)
    }

    /// Starts slapd, the echo target and the gateway with `policy` (a template) and
    /// `settings` (lines of `[settings]`).
    pub async fn start(policy: &str, settings: &str) -> Self {
        Self::start_with_store(policy, settings, "").await
    }

    /// [`LdapLab::start`] with the gateway's `[store]` table.
    pub async fn start_with_store(policy: &str, settings: &str, store: &str) -> Self {
        Self::start_lab(policy, settings, store, "").await
    }

    /// slapd with the fixture people and `extra_ldif`, the echo target, and the gateway with
    /// `policy`, `settings` and the `[store]` table `store`.
    async fn start_lab(policy: &str, settings: &str, store: &str, extra_ldif: &str) -> Self {
        let slapd = crate::slapd::Slapd::start(None, extra_ldif);
        let echo = spawn_echo().await;
        let secrets = tempfile::tempdir().unwrap();
        let password_file = secrets.path().join("bind-password");
        std::fs::write(&password_file, format!("{}\n", crate::slapd::SERVICE_PASSWORD)).unwrap();
        let directory = format!(
            "[directory]\nkind = \"ldap\"\nurls = [\"{url}\"]\nbind_dn = \"{dn}\"\nbind_password_file = \"{pw}\"\n\
             user_base = \"ou=people,{base}\"\ngroup_base = \"ou=groups,{base}\"\nconnect_timeout_secs = 1\n\
             operation_timeout_secs = 2\n\n[[directory.disabled_when]]\nattribute = \"employeeType\"\nequals = \"disabled\"\n",
            url = slapd.url,
            dn = crate::slapd::SERVICE_DN,
            pw = password_file.display(),
            base = crate::slapd::BASE,
        );
        let policy = policy.replace("{echo}", &echo);
        let gw = GatewayProc::start(
            GatewayProc::new_ca(),
            &GatewaySpec {
                directory: &directory,
                policy: &policy,
                settings,
                store,
                ..GatewaySpec::default()
            },
        );
        Self {
            gw,
            slapd,
            echo,
            directory,
            policy_text: policy,
            _secrets: secrets,
        }
    }

    /// Another gateway with the same directory, policy and organisation CA, sharing the first
    /// one's store and master key, as a second gateway of one organisation does.
    pub fn second_gateway(&self, settings: &str) -> GatewayProc {
        self.another_gateway(settings, Some(&self.gw.state), "")
    }

    /// Another gateway with the same directory, policy and organisation CA, with its own state
    /// folder on its own "host" and the `[store]` table `store`.
    pub fn another_gateway(&self, settings: &str, shared_state: Option<&std::path::Path>, store: &str) -> GatewayProc {
        self.another_gateway_with_cert(settings, shared_state, store, None)
    }

    /// [`LdapLab::another_gateway`] serving the certificate and key files given (e.g. made by
    /// `rampart cert issue` from the organisation CA).
    pub fn another_gateway_with_cert(
        &self,
        settings: &str,
        shared_state: Option<&std::path::Path>,
        store: &str,
        cert_files: Option<(&std::path::Path, &std::path::Path)>,
    ) -> GatewayProc {
        let ca_dir = tempfile::tempdir().unwrap();
        self.gw.ca.save(ca_dir.path()).unwrap();
        let ca = CertificateAuthority::load(ca_dir.path()).unwrap();
        GatewayProc::start(
            ca,
            &GatewaySpec {
                directory: &self.directory,
                policy: &self.policy_text,
                settings,
                shared_state,
                store,
                cert_files,
            },
        )
    }

    /// `template` with `{echo}` replaced by the echo target's address.
    pub fn policy(&self, template: &str) -> String {
        template.replace("{echo}", &self.echo)
    }
}

/// The code for the TOTP step `offset` steps from now. For an earlier step, waits out a step
/// boundary that is about to pass, so the code is still inside the window when checked.
pub async fn totp_code(secret: &str, offset: i64) -> rampart_core::secret::Sensitive<String> {
    let into_step = crate::now() % 30;
    if offset < 0 && into_step >= 28 {
        tokio::time::sleep(Duration::from_millis((30 - into_step) * 1000 + 100)).await;
    }
    let at = i64::try_from(crate::now()).unwrap() + offset * 30;
    rampart_core::secret::Sensitive::new(crate::oathtool_code(secret, u64::try_from(at).unwrap()))
}

/// `person` logged in on a new connection kept open, with the code `offset` steps from now.
pub async fn login_person(
    gw: &GatewayProc,
    person: &crate::slapd::Person,
    secret: &str,
    offset: i64,
) -> (rampart_client::GatewayClient, rampart_core::protocol::SessionGrant) {
    let client = rampart_client::GatewayClient::connect(&gw.addr, &gw.ca_pem)
        .await
        .unwrap();
    let otp = totp_code(secret, offset).await;
    let grant = client
        .login(
            person.uid,
            rampart_core::secret::Sensitive::new(person.password.into()),
            otp,
        )
        .await
        .unwrap_or_else(|e| panic!("{} cannot log in: {e}", person.uid));
    (client, grant)
}

/// Sends `data` and reads the same number of bytes back, leaving the stream open.
pub async fn round_trip(send: &mut quinn::SendStream, recv: &mut quinn::RecvStream, data: &[u8]) {
    send.write_all(data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    tokio::time::timeout(Duration::from_secs(10), recv.read_exact(&mut back))
        .await
        .expect("the echo answered in time")
        .unwrap();
    assert!(back == data, "the echo sent back other bytes");
}

/// Opens `resource` and round-trips `data` on the new stream, which stays open.
pub async fn open_flow(
    client: &rampart_client::GatewayClient,
    resource: &str,
    data: &[u8],
) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut send, mut recv) = client
        .open(resource)
        .await
        .unwrap_or_else(|e| panic!("{resource} refused: {e}"));
    round_trip(&mut send, &mut recv, data).await;
    (send, recv)
}

/// The refusal of a new stream to `resource`.
pub async fn open_refusal(client: &rampart_client::GatewayClient, resource: &str) -> rampart_core::ErrorCode {
    match client.open(resource).await {
        Err(rampart_client::ClientError::Refused { code, .. }) => code,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("{resource} opened"),
    }
}

impl GatewayProc {
    /// One login of `user` with `password` and `code` over a fresh connection, closed after:
    /// `Ok` when accepted, the refusal's code when refused.
    pub async fn try_login(&self, user: &str, password: &str, code: &str) -> Result<(), rampart_core::ErrorCode> {
        let client = rampart_client::GatewayClient::connect(&self.addr, &self.ca_pem)
            .await
            .unwrap();
        let result = client
            .login(
                user,
                rampart_core::secret::Sensitive::new(password.into()),
                rampart_core::secret::Sensitive::new(code.into()),
            )
            .await;
        client.close().await;
        match result {
            Ok(_) => Ok(()),
            Err(rampart_client::ClientError::Refused { code, .. }) => Err(code),
            Err(other) => panic!("login failed unexpectedly: {other:?}"),
        }
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the gateway with SIGKILL, as a crash or a lost host would: no connection is
    /// closed, its clients just stop hearing from it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LdapLab {
    /// [`LdapLab::start`] with `extra_ldif` entries (e.g.
    /// [`generated_people_ldif`](crate::slapd::generated_people_ldif)) added to the fixture
    /// directory.
    pub async fn start_with_people(policy: &str, settings: &str, extra_ldif: &str) -> Self {
        Self::start_lab(policy, settings, "", extra_ldif).await
    }
}
