//! The lab every test runs in, after quinn-proto's `Pair`: one real gateway on 127.0.0.1 with
//! its store, local directory, flow log and audit trail in a temporary folder, a manual wall
//! clock the test moves, echo targets, and people enrolled with known seeds so the test can
//! compute their codes at any moment of that clock. Tokio timers (login deadline, delays,
//! session checks) stay real, so the lab's settings make them short.

use rampart_audit::{AuditConfig, AuditLog, AuditWriter};
use rampart_certs::CertificateAuthority;
use rampart_client::GatewayClient;
use rampart_core::ErrorCode;
use rampart_core::policy::Policy;
use rampart_core::protocol::SessionGrant;
use rampart_core::secret::Sensitive;
use rampart_core::temp_code::temp_code_hash;
use rampart_core::totp::{SEED_LEN, TotpParams, generate_totp};
use rampart_directory::{Directory, LocalDirectory, hash_password};
use rampart_gateway::flowlog::FlowLogWriter;
use rampart_gateway::{Clock, ClockHand, FlowLog, Gateway, GatewayParts, GatewaySettings};
use rampart_store::{
    AllocationRequest, KeyRing, PoolRecord, SqliteStore, Store, TempCodeRecord, TokenRecord, UserRecord, VmRecord,
    VmState,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod client;
mod gate;
mod records;
mod targets;

pub use client::{closed_by_gateway, echo_through, open_refusal, random_bytes, refusal_of};
pub use gate::Gate;
use records::{audit_records, eventually, read_lines};
use targets::{Silent, closed_port, silent_port, spawn_echo};

/// Seconds in one TOTP step of the lab's tokens.
pub const STEP_SECS: u64 = 30;
/// Longest a test waits for something the gateway does on its own (a record, a close).
pub const PATIENCE: Duration = Duration::from_secs(5);

/// The organisation CA and the gateway's certificate for 127.0.0.1, made once per test binary
/// (certificates do not depend on the manual clock).
struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

static PKI: LazyLock<Pki> = LazyLock::new(|| {
    let ca = CertificateAuthority::create("Rampart Heart Lab").unwrap();
    let cert = ca.issue_server(&["127.0.0.1".into(), "localhost".into()]).unwrap();
    Pki {
        ca_pem: ca.cert_pem().to_owned(),
        chain: cert.cert_chain().unwrap(),
        key: cert.private_key().unwrap(),
    }
});

/// argon2id hashes of the passwords labs enrol, made once per test binary: hashing is the
/// costliest part of enrolling, and a hash with another lab's salt checks the same.
static HASHES: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Mutex::default);

async fn password_hash(password: &str) -> String {
    if let Some(hash) = HASHES.lock().unwrap().get(password) {
        return hash.clone();
    }
    let typed = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&typed).unwrap())
        .await
        .unwrap();
    HASHES.lock().unwrap().insert(password.to_owned(), hash.clone());
    hash
}

/// Someone enrolled in the lab's directory (and, unless said otherwise, with a token).
#[derive(Clone)]
pub struct Person {
    /// The username.
    pub name: String,
    /// The directory's stable id.
    pub id: String,
    /// The directory password.
    pub password: String,
    seed: Option<Vec<u8>>,
}

/// Names only: never the password or the seed.
impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Person {
    /// The password, as the client sends it.
    pub fn password(&self) -> Sensitive<String> {
        Sensitive::new(self.password.clone())
    }
}

/// Settings for a lab: short timers, a clock check that never interferes with a moved clock
/// (it runs at start only), small login delays.
pub fn lab_settings() -> GatewaySettings {
    GatewaySettings {
        login_deadline_secs: 5,
        connect_timeout_secs: 1,
        failed_login_delay_ms: 10,
        session_check_secs: 1,
        directory_recheck_secs: 3600,
        clock_check_secs: 3600,
        max_clock_skew_ms: 600_000,
        ..GatewaySettings::default()
    }
}

/// A gateway running for one test.
#[derive(Debug)]
pub struct Lab {
    /// `127.0.0.1:PORT` of the gateway.
    pub addr: String,
    /// The settings it runs with.
    pub settings: GatewaySettings,
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    clock: Clock,
    hand: ClockHand,
    echo: String,
    closed: String,
    _silent: Option<Silent>,
    shutdown: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<()>>,
}

impl Lab {
    /// A gateway with `policy` (where `{echo}` stands for an echo target, `{echo_port}` for
    /// its port, `{closed}` for a port nobody listens on and `{silent}` for one that never
    /// answers) and the lab settings changed by `tweak`, on a manual clock half-way through a
    /// TOTP step near the real time.
    pub async fn start(policy: &str, tweak: impl FnOnce(&mut GatewaySettings)) -> Self {
        Self::start_with_directory(policy, tweak, |local| local).await
    }

    /// [`Lab::start`] with the local directory wrapped by `wrap`.
    pub async fn start_with_directory(
        policy: &str,
        tweak: impl FnOnce(&mut GatewaySettings),
        wrap: impl FnOnce(Arc<dyn Directory>) -> Arc<dyn Directory>,
    ) -> Self {
        let mut settings = lab_settings();
        tweak(&mut settings);
        assert!(
            settings.problems().is_empty(),
            "lab settings: {:?}",
            settings.problems()
        );
        let dir = lab_dir();
        let state = dir.path();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(state).await.unwrap());
        let keys = Arc::new(KeyRing::load_or_create(&state.join("master.key")).unwrap());
        let directory = wrap(Arc::new(LocalDirectory::new(store.clone()).unwrap()));

        let echo = spawn_echo().await;
        let closed = closed_port().await;
        let silent = if policy.contains("{silent}") {
            Some(silent_port().await)
        } else {
            None
        };
        let echo_port = echo.rsplit_once(':').unwrap().1.to_owned();
        let text = policy
            .replace("{echo}", &echo)
            .replace("{echo_port}", &echo_port)
            .replace("{closed}", &closed)
            .replace("{silent}", silent.as_ref().map_or("", |s| s.addr.as_str()));
        let policy = Policy::parse(&text).unwrap_or_else(|e| panic!("lab policy: {e}"));

        let real_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
        let step_ms = i64::try_from(STEP_SECS * 1000).unwrap();
        let (clock, hand) = Clock::manual(real_ms - real_ms % step_ms + step_ms / 2);

        let audit_settings = AuditConfig::default().settings(state, "gateway").unwrap();
        let (audit, audit_writer) = AuditLog::open(&audit_settings, "heart", clock.clone()).unwrap();
        let (flows, flow_writer) = FlowLog::open(&state.join("flows.jsonl")).await.unwrap();
        let gateway = Gateway::bind(GatewayParts {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: None,
            cert_chain: PKI.chain.clone(),
            key: PKI.key.clone_key(),
            store: store.clone(),
            keys: keys.clone(),
            directory,
            policy,
            policy_file: None,
            flows,
            audit,
            settings: settings.clone(),
            clock: clock.clone(),
        })
        .unwrap();
        let addr = gateway.local_addr().unwrap().to_string();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(run(gateway, stopped, flow_writer, audit_writer));
        let lab = Self {
            addr,
            settings,
            dir,
            store,
            keys,
            clock,
            hand,
            echo,
            closed,
            _silent: silent,
            shutdown: Some(shutdown),
            running: Some(running),
        };
        // A connection is accepted only once the gateway serves, which is after its clock
        // check: from then on the test may move the clock as it likes.
        drop(lab.client().await);
        lab
    }

    /// Enrols `name` in the directory with `password` and `groups`, with a token whose seed
    /// the lab keeps (pending until its first code, as the provisioner issues it).
    pub async fn person(&self, name: &str, password: &str, groups: &[&str]) -> Person {
        let mut person = self.person_without_token(name, password, groups).await;
        let mut seed = vec![0u8; SEED_LEN];
        SystemRandom::new().fill(&mut seed).unwrap();
        let token_id = format!("tok-{}", person.id);
        self.store
            .insert_token(&TokenRecord::pending(
                token_id.clone(),
                person.id.clone(),
                TotpParams::default(),
                self.keys.seal(&token_id, &seed).unwrap(),
                self.clock.now(),
            ))
            .await
            .unwrap();
        person.seed = Some(seed);
        person
    }

    /// Enrols `name` in the directory only: no token.
    pub async fn person_without_token(&self, name: &str, password: &str, groups: &[&str]) -> Person {
        let id = format!("uid-{name}");
        let hash = password_hash(password).await;
        self.store
            .upsert_user(&UserRecord {
                id: id.clone(),
                username: name.into(),
                display_name: name.into(),
                password_hash: Some(hash),
                enabled: true,
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                created_at: self.clock.now(),
            })
            .await
            .unwrap();
        Person {
            name: name.into(),
            id,
            password: password.into(),
            seed: None,
        }
    }

    /// Disables `person` in the directory, keeping the rest of their entry.
    pub async fn disable(&self, person: &Person) {
        let mut record = self.store.user_by_username(&person.name).await.unwrap().unwrap();
        record.enabled = false;
        self.store.upsert_user(&record).await.unwrap();
    }

    /// The code `person`'s authenticator shows now, on the lab's clock.
    pub fn code_for(&self, person: &Person) -> Sensitive<String> {
        self.code_at(person, 0)
    }

    /// The code `person`'s authenticator shows `offset_steps` TOTP steps from now on the lab's
    /// clock (a phone ahead for a positive offset, behind for a negative one).
    pub fn code_at(&self, person: &Person, offset_steps: i64) -> Sensitive<String> {
        let seed = person.seed.as_ref().expect("the person has a token");
        let at = self.clock.now() + offset_steps * i64::try_from(STEP_SECS).unwrap();
        Sensitive::new(generate_totp(seed, &TotpParams::default(), u64::try_from(at).unwrap()).unwrap())
    }

    /// A temporary one-time code for `person`, stored the way the service desk issues one
    /// (hashed, bound to the person, valid for an hour of the lab's clock).
    pub async fn temp_code(&self, person: &Person) -> Sensitive<String> {
        let mut bytes = [0u8; 10];
        SystemRandom::new().fill(&mut bytes).unwrap();
        let code: String = bytes.iter().map(|b| char::from(b'0' + b % 10)).collect();
        let now = self.clock.now();
        self.store
            .insert_temp_code(&TempCodeRecord {
                id: format!("temp-{}-{now}", person.id),
                user_id: person.id.clone(),
                code_hash: temp_code_hash(&person.id, &code),
                created_at: now,
                expires_at: now + 3600,
                created_by: "desk".into(),
            })
            .await
            .unwrap();
        Sensitive::new(code)
    }

    /// A pool `name` serving `port`, with one VM on 127.0.0.1 allocated to `holder`.
    pub async fn vm_for(&self, holder: &Person, pool: &str, port: u16) {
        let now = self.clock.now();
        self.store
            .create_pool(&PoolRecord {
                name: pool.into(),
                description: String::new(),
                ports: vec![port],
                capacity: 1,
                provision_hook: None,
                reset_hook: None,
                destroy_hook: None,
                hook_timeout_secs: 60,
                created_at: now,
                created_by: "lab".into(),
            })
            .await
            .unwrap();
        let vm = VmRecord {
            id: format!("{pool}-1"),
            pool: pool.into(),
            address: "127.0.0.1".into(),
            state: VmState::Free,
            holder_id: None,
            holder_name: None,
            allocated_at: None,
            last_flow_at: None,
            error: None,
            hook_output: None,
            created_at: now,
            updated_at: now,
        };
        self.store.add_vms(&[vm], "lab", now).await.unwrap();
        self.store
            .allocate_vm(
                &AllocationRequest {
                    pool: pool.into(),
                    user_id: holder.id.clone(),
                    username: holder.name.clone(),
                    vm_id: None,
                    allow_second: false,
                    actor: "lab".into(),
                },
                now,
            )
            .await
            .unwrap();
    }

    /// A new connection to the gateway (hello answered, not logged in).
    pub async fn client(&self) -> GatewayClient {
        GatewayClient::connect(&self.addr, &PKI.ca_pem).await.unwrap()
    }

    /// `person` logged in with their current code on a new connection.
    pub async fn login(&self, person: &Person) -> (GatewayClient, SessionGrant) {
        let client = self.client().await;
        let grant = client
            .login(&person.name, person.password(), self.code_for(person))
            .await
            .unwrap_or_else(|e| panic!("{} cannot log in: {e}", person.name));
        (client, grant)
    }

    /// One login on a fresh connection: the grant, or the code of the refusal.
    pub async fn try_login(
        &self,
        username: &str,
        password: Sensitive<String>,
        code: Sensitive<String>,
    ) -> Result<SessionGrant, ErrorCode> {
        let client = self.client().await;
        refusal_of(client.login(username, password, code).await)
    }

    /// Moves the gateway's wall clock forward.
    pub fn advance(&self, by: Duration) {
        self.hand.advance(by);
    }

    /// Sets the gateway's wall clock (unix milliseconds).
    pub fn set_time_ms(&self, ms: i64) {
        self.hand.set_ms(ms);
    }

    /// The gateway's wall clock, unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// `127.0.0.1:PORT` of the echo target.
    pub fn echo(&self) -> &str {
        &self.echo
    }

    /// The port of the echo target.
    pub fn echo_port(&self) -> u16 {
        self.echo.rsplit_once(':').unwrap().1.parse().unwrap()
    }

    /// `127.0.0.1:PORT` where nobody listens.
    pub fn closed(&self) -> &str {
        &self.closed
    }

    /// The store the gateway uses.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The first flow record matching `wanted`, waiting for the flow log's writer.
    pub async fn flow_record(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        let path = self.dir.path().join("flows.jsonl");
        eventually("a matching flow record", || {
            read_lines(&path).into_iter().find(|r| wanted(r))
        })
        .await
    }

    /// Every flow record written so far (all of them once the lab has stopped).
    pub fn flow_records(&self) -> Vec<Value> {
        read_lines(&self.dir.path().join("flows.jsonl"))
    }

    /// The first audit record matching `wanted`, waiting for the audit writer.
    pub async fn audit_record(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        let dir = self.dir.path().join("audit");
        eventually("a matching audit record", || {
            audit_records(&dir).into_iter().find(|r| wanted(r))
        })
        .await
    }

    /// The audit record of the refused login of the person or name `user`: its real reason
    /// is `status_detail`.
    pub async fn refused_login_record(&self, user: &str) -> Value {
        self.audit_record(|r| {
            r["class_uid"] == 3002 && r["activity_id"] == 1 && r["status"] == "Failure" && r["user"]["name"] == user
        })
        .await
    }

    /// The audit record of the end of session `session_id` (its reason is `status_detail`).
    pub async fn session_end_record(&self, session_id: &str) -> Value {
        self.audit_record(|r| r["class_uid"] == 3002 && r["activity_id"] == 2 && r["session"]["uid"] == session_id)
            .await
    }

    /// Stops the gateway: connections closed, flow log and audit trail flushed.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(running) = self.running.take() {
            tokio::time::timeout(Duration::from_secs(15), running)
                .await
                .expect("the gateway stopped in time")
                .unwrap();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

async fn run(gateway: Gateway, stopped: oneshot::Receiver<()>, flow_writer: FlowLogWriter, audit_writer: AuditWriter) {
    gateway
        .run(async move {
            let _ = stopped.await;
        })
        .await;
    flow_writer.finish().await;
    audit_writer.finish().await;
}

/// The lab's folder: in memory where the system offers it (`/dev/shm`), since the store and
/// the audit trail sync every write to disk and the tests need none of it to last.
fn lab_dir() -> tempfile::TempDir {
    let in_memory = Path::new("/dev/shm");
    if in_memory.is_dir()
        && let Ok(dir) = tempfile::Builder::new().prefix("rampart-heart-").tempdir_in(in_memory)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}
