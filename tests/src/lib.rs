//! Test kit for end-to-end tests: runs the real `rampart` and `rampart-connect` binaries as
//! processes on 127.0.0.1 ephemeral ports, computes codes with the independent `oathtool`,
//! and collects every output so tests can check that no secret leaked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod console;
pub mod faults;
pub mod gateway;
pub mod leaks;
pub mod pg;
pub mod provisioner;
pub mod slapd;
pub mod terminal;

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Path of a workspace binary built next to this test (run `cargo build --workspace --bins
/// --features rampart-admin-cli/dev`: the end-to-end tests use `rampart dev`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins --features rampart-admin-cli/dev` (scripts/test does) \
         before the end-to-end tests",
        path.display()
    );
    path
}

/// Fails with install instructions when a required tool is missing; never skips.
pub fn require_tool(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is required: install it with `apt-get install {package}` (scripts/test does)"
    );
}

/// A running `rampart dev`, killed when dropped.
#[derive(Debug)]
pub struct Dev {
    child: Child,
    /// Temporary folder holding the state directory and outputs.
    pub dir: tempfile::TempDir,
    /// Parsed `dev.json`.
    pub info: Value,
}

impl Dev {
    /// Starts `rampart dev` with `extra` arguments and waits for `dev.json`.
    pub fn start(extra: &[&str]) -> Self {
        let dir = leaks::service_dir();
        let state = dir.path().join("state");
        let stdout = std::fs::File::create(dir.path().join("dev.stdout")).unwrap();
        let stderr = std::fs::File::create(dir.path().join("dev.stderr")).unwrap();
        let child = Command::new(bin("rampart"))
            .arg("dev")
            .arg("--state-dir")
            .arg(&state)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--provisioner-listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut dev = Self {
            child,
            dir,
            info: Value::Null,
        };
        let info_path = state.join("dev.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let parsed = std::fs::read_to_string(&info_path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            if let Some(info) = parsed {
                dev.info = info;
                leaks::remember("password", &dev.field("password"));
                leaks::remember("seed", &dev.secret());
                break;
            }
            if let Ok(Some(status)) = dev.child.try_wait() {
                panic!("rampart dev exited with {status}: {}", dev.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "rampart dev did not write dev.json: {}",
                dev.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dev
    }

    /// A string field of `dev.json`.
    pub fn field(&self, key: &str) -> String {
        self.info[key]
            .as_str()
            .unwrap_or_else(|| panic!("dev.json has no {key}"))
            .to_owned()
    }

    /// The base32 secret inside the printed otpauth URI.
    pub fn secret(&self) -> String {
        let uri = self.field("otpauth_uri");
        let query = uri.split_once('?').unwrap().1;
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("secret="))
            .unwrap()
            .to_owned()
    }

    /// The gateway's log (standard error of `rampart dev`).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dev.stderr")).unwrap_or_default()
    }

    /// The flow log, one JSON value per line.
    pub fn flows(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.field("flow_log")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("flow line is JSON"))
            .collect()
    }

    /// Waits until the flow log has at least `n` records.
    pub fn wait_flows(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let flows = self.flows();
            if flows.len() >= n || Instant::now() > deadline {
                return flows;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every audit record `rampart dev` has written so far, oldest first. Each line of each
    /// audit file must be one JSON object: a line that is not fails the test.
    pub fn audit_records(&self) -> Vec<Value> {
        audit_records(Path::new(&self.field("audit_dir")))
    }

    /// Waits until `count` audit records satisfy `wanted` (10 s at most); returns them.
    pub fn wait_audit(&self, count: usize, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<Value> = self.audit_records().into_iter().filter(|r| wanted(r)).collect();
            if found.len() >= count || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs the `rampart` CLI against this dev's provisioner and gateway admin API with its
    /// admin key (in the environment, never on the command line).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin("rampart"))
            .args(args)
            .env("RAMPART_URL", self.field("provisioner_url"))
            .env("RAMPART_GATEWAY_ADMIN", self.field("admin_url"))
            .env("RAMPART_API_KEY", self.field("admin_api_key"))
            .env("RAMPART_CA", self.field("ca_cert"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A fresh client home folder inside the temp dir.
    pub fn home(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `rampart-connect login` with the password on standard input.
    pub fn login(&self, home: &Path, user: &str, password: &str, code: &str) -> Output {
        let mut cmd = Command::new(bin("rampart-connect"));
        cmd.arg("--gateway")
            .arg(self.field("gateway"))
            .arg("--ca")
            .arg(self.field("ca_cert"))
            .arg("--home")
            .arg(home)
            .args(["login", "--user", user, "--otp", code, "--password-stdin"]);
        run_with_stdin(cmd, &format!("{password}\n"))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "rampart dev did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `rampart-connect forward`, killed when dropped.
#[derive(Debug)]
pub struct Forward {
    child: Child,
    /// Local addresses, in the order of the mappings.
    pub locals: Vec<String>,
    stderr_path: PathBuf,
}

impl Forward {
    /// Starts `forward` with `127.0.0.1:0=RESOURCE` per resource and reads the bound ports.
    pub fn start(home: &Path, resources: &[&str]) -> Self {
        let stderr_path = home.with_extension("forward.stderr");
        let mut child = Command::new(bin("rampart-connect"))
            .arg("--home")
            .arg(home)
            .arg("forward")
            .args(resources.iter().map(|r| format!("127.0.0.1:0={r}")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut locals = Vec::new();
        while locals.len() < resources.len() {
            let line = lines.next().and_then(Result::ok).unwrap_or_else(|| {
                panic!(
                    "forward exited early: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            });
            let addr = line
                .strip_prefix("forwarding ")
                .and_then(|l| l.split(" -> ").next())
                .unwrap();
            locals.push(addr.to_owned());
        }
        Self {
            child,
            locals,
            stderr_path,
        }
    }

    /// What the forward printed on standard error.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every record in the audit files of `dir`, oldest first by time. Each line must be one JSON
/// object: a line that is not fails the test.
pub fn audit_records(dir: &Path) -> Vec<Value> {
    let mut records = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return records;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let record: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{} line {}: not one JSON record: {e}", path.display(), i + 1));
            assert!(record.is_object(), "{} line {}", path.display(), i + 1);
            records.push(record);
        }
    }
    records.sort_by_key(|r| r["time"].as_i64().unwrap_or(0));
    records
}

/// The TOTP code for `secret` at `unix_time`, from the independent `oathtool`.
pub fn oathtool_code(secret: &str, unix_time: u64) -> String {
    require_tool("oathtool", "oathtool");
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-N", &format!("@{unix_time}"), secret])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oathtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    leaks::remember("code", &code);
    code
}

/// A code for `secret` that matches none of the steps a gateway accepts now (T−1 to T+2).
pub fn wrong_code(secret: &str) -> String {
    let t = now();
    let valid: Vec<String> = [t - 30, t, t + 30, t + 60]
        .iter()
        .map(|&at| oathtool_code(secret, at))
        .collect();
    (1..)
        .map(|i| oathtool_code(secret, t - 3600 * i))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// Runs `cmd` with `input` on its standard input and collects its output.
pub fn run_with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Sends `data` to `addr`, half-closes, and returns everything received until EOF or reset
/// (a refused forward resets the local connection; callers compare what came back).
pub fn echo_round_trip(addr: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reader = tcp.try_clone().unwrap();
    let receiver = std::thread::spawn(move || {
        let mut back = Vec::new();
        let _ = reader.read_to_end(&mut back);
        back
    });
    if tcp.write_all(data).is_ok() {
        let _ = tcp.shutdown(std::net::Shutdown::Write);
    }
    receiver.join().unwrap()
}

/// `len` pseudo-random bytes (not secret; just not compressible or repetitive).
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf).unwrap();
    buf
}

/// Text of a process output, both streams.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Panics if any of `secrets` appears in `haystack`, naming where without printing the secret.
pub fn assert_no_secrets(haystack: &str, secrets: &[&str], place: &str) {
    for (i, secret) in secrets.iter().enumerate() {
        assert!(!secret.is_empty());
        assert!(!haystack.contains(secret), "secret #{i} appears in {place}");
    }
}

/// An HTTPS client that trusts only `ca_pem` (the organisation CA).
pub fn https_client(ca_pem: &str) -> reqwest::Client {
    let ca = rampart_certs::certs_from_pem(ca_pem).unwrap();
    let tls = rampart_certs::client_config(ca, &[b"http/1.1"]).unwrap();
    reqwest::Client::builder().use_preconfigured_tls(tls).build().unwrap()
}

/// Sum of the samples of metric `name` in Prometheus/OpenMetrics text whose labels include every
/// `(label, value)` pair of `labels` (0 when none match), e.g.
/// `metric_sum(&text, "rampart_gateway_logins_total", &[("result", "busy")])`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let wanted = labels
                .iter()
                .all(|(k, v)| label_text.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
            (metric == name && wanted).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// `rampart-connect --home HOME`, with no client settings inherited from the environment.
pub fn rampart_connect(home: &Path) -> Command {
    let mut cmd = Command::new(bin("rampart-connect"));
    cmd.arg("--home").arg(home).stdin(Stdio::null());
    cmd.env_remove("RAMPART_GATEWAY")
        .env_remove("RAMPART_CA")
        .env_remove("RAMPART_CONNECT_CA")
        .env_remove("RAMPART_PASSWORD");
    cmd
}

/// Waits up to `limit` for `child` to exit; its status, or `None` if it is still running.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Starts a long-running `rampart-connect` subcommand (`forward`, `socks`) and reads the
/// address its first output line gives after `prefix`; its standard error goes to the file
/// returned.
pub fn start_listening(home: &Path, args: &[&str], prefix: &str) -> (Child, String, PathBuf) {
    let log = home.with_extension(format!("{}.stderr", args[0]));
    let mut child = rampart_connect(home)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap_or_else(|| {
            panic!(
                "{args:?} printed nothing: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
        .unwrap();
    let addr = line
        .strip_prefix(prefix)
        .and_then(|rest| rest.split([' ', ';']).next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, addr, log)
}
