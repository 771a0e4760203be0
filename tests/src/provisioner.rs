//! A real `rampart-provisioner` process per test, sharing a gateway's state directory (one
//! SQLite file, one master key) and CA, set up with `rampart-provisioner init`; and the
//! `rampart` CLI pointed at it through `RAMPART_URL`, `RAMPART_API_KEY` and `RAMPART_CA`.

use crate::bin;
use crate::gateway::GatewayProc;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running provisioner, killed when dropped.
#[derive(Debug)]
pub struct ProvisionerProc {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The first admin's API key.
    pub admin_key: String,
    /// The CA certificate file clients trust.
    pub ca_file: PathBuf,
    /// The state directory (shared with the gateway).
    pub state: PathBuf,
    /// Where its log goes.
    pub log_file: PathBuf,
}

impl ProvisionerProc {
    /// Initialises and starts a provisioner on `gateway`'s state and CA. `directory` is a
    /// `[directory]` table (empty: the local directory) and `settings` lines for `[settings]`.
    pub fn start_for(gateway: &GatewayProc, directory: &str, settings: &str) -> Self {
        let ca_dir = gateway.dir.path().join("ca");
        if !ca_dir.join("ca.pem").exists() {
            gateway.ca.save(&ca_dir).unwrap();
        }
        Self::start(&gateway.state, &ca_dir, directory, settings)
    }

    /// Initialises and starts a provisioner on `state` with the CA in `ca_dir`.
    pub fn start(state: &Path, ca_dir: &Path, directory: &str, settings: &str) -> Self {
        Self::start_with_store(state, ca_dir, directory, settings, None)
    }

    /// [`ProvisionerProc::start`] on a shared PostgreSQL store (its URL and key-encryption key
    /// file), initialised with `init --store-url --kek-file` as an operator would.
    pub fn start_with_store(
        state: &Path,
        ca_dir: &Path,
        directory: &str,
        settings: &str,
        store: Option<(&str, &Path)>,
    ) -> Self {
        std::fs::create_dir_all(state).unwrap();
        let config = state.join("provisioner.toml");
        let store_table = store.map_or_else(String::new, |(url, kek)| {
            format!("[store]\nurl = \"{url}\"\nkek_file = \"{}\"\n", kek.display())
        });
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\nstate_dir = \".\"\ncert = \"tls/provisioner.pem\"\n\
                 key = \"tls/provisioner.key\"\n\n[settings]\n{settings}\n\n{store_table}\n{directory}\n"
            ),
        )
        .unwrap();
        let mut init = Command::new(bin("rampart-provisioner"));
        init.args(["init", "--json", "--state-dir"])
            .arg(state)
            .arg("--ca-dir")
            .arg(ca_dir);
        if let Some((url, kek)) = store {
            init.arg("--store-url").arg(url).arg("--kek-file").arg(kek);
        }
        let init = init.stdin(Stdio::null()).output().unwrap();
        assert!(init.status.success(), "init failed: {}", crate::output_text(&init));
        let report: Value = serde_json::from_slice(&init.stdout).unwrap();
        let log_file = state.join("provisioner.log");
        let mut proc = Self {
            child: Self::spawn(&config, &log_file),
            url: String::new(),
            admin_key: report["admin_api_key"].as_str().unwrap().to_owned(),
            ca_file: PathBuf::from(report["ca_cert"].as_str().unwrap()),
            state: state.to_owned(),
            log_file,
        };
        proc.wait_ready();
        proc
    }

    fn spawn(config: &Path, log_file: &Path) -> Child {
        Command::new(bin("rampart-provisioner"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log_file).unwrap())
            .spawn()
            .unwrap()
    }

    /// Stops the provisioner with SIGTERM (a clean shutdown) and waits for it.
    pub fn stop(&mut self) {
        if self.child.try_wait().unwrap().is_some() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the provisioner did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the provisioner and runs it again on the same config (a new address); the log
    /// before the restart is kept as `provisioner.before-restart.log`.
    pub fn restart(&mut self) {
        self.stop();
        let _ = std::fs::rename(&self.log_file, self.state.join("provisioner.before-restart.log"));
        self.child = Self::spawn(&self.state.join("provisioner.toml"), &self.log_file);
        self.url.clear();
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let proc = self;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = proc.log();
            if let Some(addr) = log
                .lines()
                .find(|l| l.contains("provisioner serving HTTPS"))
                .and_then(|l| l.split("listen=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
            {
                proc.url = format!("https://{addr}");
                break;
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!("rampart-provisioner exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "provisioner did not start: {log}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The provisioner's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// `rampart ARGS` as the admin.
    pub fn rampart(&self, args: &[&str]) -> Output {
        self.rampart_as(&self.admin_key, args)
    }

    /// `rampart ARGS` with `api_key`.
    pub fn rampart_as(&self, api_key: &str, args: &[&str]) -> Output {
        Command::new(bin("rampart"))
            .args(args)
            .env("RAMPART_URL", &self.url)
            .env("RAMPART_API_KEY", api_key)
            .env("RAMPART_CA", &self.ca_file)
            .env_remove("RAMPART_LOG_FORMAT")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `rampart --output json ARGS` as the admin; panics unless it succeeds.
    pub fn rampart_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = self.rampart(&all);
        assert!(
            out.status.success(),
            "rampart {args:?} failed: {}",
            crate::output_text(&out)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A raw API call: `(status, body)`; `api_key` `None` sends no key.
    pub async fn call(&self, method: &str, path: &str, api_key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let ca = rampart_certs::load_certs(&self.ca_file).unwrap();
        let tls = rampart_certs::client_config(ca, &[b"http/1.1"]).unwrap();
        let http = reqwest::Client::builder().use_preconfigured_tls(tls).build().unwrap();
        let mut request = http.request(method.parse().unwrap(), format!("{}{path}", self.url));
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

/// The `secret` parameter of an otpauth URI.
pub fn secret_of(uri: &str) -> String {
    let secret = uri
        .split(['?', '&'])
        .find_map(|part| part.strip_prefix("secret="))
        .unwrap()
        .to_owned();
    crate::leaks::remember("seed", &secret);
    secret
}

impl Drop for ProvisionerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
