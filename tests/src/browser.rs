//! A real headless Chromium for end-to-end tests of the web console, driven over WebDriver by
//! its own `chromedriver`, with a screenshot of each page kept among the test artifacts.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The Chromium binary the browser runs (Debian package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server that starts it (Debian package `chromium-driver`).
pub const CHROMEDRIVER: &str = "chromedriver";
/// Viewport of [`Browser::set_phone_size`]: a common phone held upright.
pub const PHONE_SIZE: (u32, u32) = (390, 844);
/// How long [`Browser::wait_for`] and friends wait when a test gives no timeout of its own.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Screenshots taken so far in this process, per artifacts folder (so two browsers in one test
/// number their pages in one sequence, and a folder's old screenshots are cleared once).
static SHOTS: Mutex<Option<HashMap<PathBuf, u32>>> = Mutex::new(None);

/// One cookie as the browser stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserCookie {
    /// Cookie name.
    pub name: String,
    /// Cookie value.
    pub value: String,
    /// Sent only over HTTPS.
    pub secure: bool,
    /// Hidden from page scripts.
    pub http_only: bool,
    /// `Strict`, `Lax` or `None` as the browser reports it; `None` (the Rust value) when it
    /// reports nothing.
    pub same_site: Option<String>,
    /// Path attribute, when set.
    pub path: Option<String>,
}

/// A headless Chromium session with its own `chromedriver`, both stopped when dropped.
///
/// Every browser gets a fresh profile (`--user-data-dir` in a temporary folder), so no cookie,
/// cache or saved password carries over between tests. The session is opened with
/// `acceptInsecureCerts: true`: the test services serve certificates issued by a throwaway
/// per-test CA that Chromium does not know, so this browser does **not** check certificates.
/// Tests of certificate trust must use a client that does (for example
/// [`crate::https_client`]).
///
/// The methods are `async` because the end-to-end tests are `#[tokio::test]`s; a failing step
/// panics with the CSS selector, the page's URL and title, naming what was expected.
/// Screenshots go to `target/test-artifacts/<test-name>/<NN-name>.png` (or under
/// `RAMPART_TEST_ARTIFACTS` when it is set); the folder is printed once.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    driver: Child,
    port: u16,
    session: String,
    shots: PathBuf,
    /// Holds the chromedriver log and the Chromium profile.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts `chromedriver` and Chromium for the current test; screenshots are filed under the
    /// test's name (the name of the thread the test harness runs it on).
    pub async fn start() -> Self {
        let name = std::thread::current()
            .name()
            .filter(|n| *n != "main" && !n.starts_with("tokio-runtime"))
            .unwrap_or("browser")
            .to_owned();
        Self::start_as(&name).await
    }

    /// Starts `chromedriver` and Chromium, filing screenshots under `test_name`.
    pub async fn start_as(test_name: &str) -> Self {
        crate::require_tool("chromium", "chromium");
        crate::require_tool(CHROMEDRIVER, "chromium-driver");
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is required: install it with `apt-get install chromium` (scripts/test does)"
        );
        let dir = tempfile::Builder::new().prefix("browser-").tempdir().unwrap();
        let (driver, port) = start_driver(dir.path());
        let profile = dir.path().join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("acceptInsecureCerts".into(), json!(true));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let mut driver = DriverGuard(Some(driver));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "could not open a Chromium session: {e}\nchromedriver log:\n{}",
                    read_log(dir.path())
                )
            });
        let session = client
            .session_id()
            .await
            .unwrap()
            .expect("chromedriver gave no session id");
        let shots = artifacts_root().join(sanitize(test_name));
        Self {
            client,
            driver: driver.0.take().unwrap(),
            port,
            session,
            shots,
            dir,
        }
    }

    /// The WebDriver client, for what this kit does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client.goto(url).await {
            panic!("could not open {url}: {e}");
        }
    }

    /// The element `css` selects; waits up to [`DEFAULT_WAIT`] for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        self.wait_for(css, DEFAULT_WAIT).await
    }

    /// Waits up to `timeout` for an element matching `css`, and returns it.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        match self
            .client
            .wait()
            .at_most(timeout)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no `{css}` after {timeout:?} on {}: {e}", self.where_am_i().await),
        }
    }

    /// Waits up to `timeout` until the element `css` exists and its text contains `needle`;
    /// returns the whole text.
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return text;
            }
            if Instant::now() >= deadline {
                panic!(
                    "`{css}` did not show {needle:?} within {timeout:?} on {}; it shows {text:?}",
                    self.where_am_i().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clears the field `css` and types `text` into it, key by key as a person would.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("could not clear `{css}`: {e}"));
        // The message names only the field: the text may be a password.
        if let Err(e) = field.send_keys(text).await {
            panic!("could not type into `{css}`: {e}");
        }
    }

    /// Clicks the element `css` (waiting for it to appear first).
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        if let Err(e) = element.click().await {
            panic!("could not click `{css}` on {}: {e}", self.where_am_i().await);
        }
    }

    /// Submits the form `css` as its default button would (`requestSubmit`: the form's own
    /// validation and submit handlers run). Wait for what the next page shows afterwards.
    pub async fn submit(&self, css: &str) {
        let form = self.find(css).await;
        let arg = serde_json::to_value(&form).unwrap();
        if let Err(e) = self.client.execute("arguments[0].requestSubmit();", vec![arg]).await {
            panic!("could not submit `{css}` on {}: {e}", self.where_am_i().await);
        }
    }

    /// Presses Enter in the field `css`, which submits its form like a person would.
    pub async fn press_enter(&self, css: &str) {
        let field = self.find(css).await;
        if let Err(e) = field.send_keys("\u{E007}").await {
            panic!("could not press Enter in `{css}`: {e}");
        }
    }

    /// The visible text of the element `css` (waiting for it to appear first).
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        element
            .text()
            .await
            .unwrap_or_else(|e| panic!("could not read the text of `{css}`: {e}"))
    }

    /// An attribute of the element `css`, if it has it.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.find(css).await;
        element
            .attr(name)
            .await
            .unwrap_or_else(|e| panic!("could not read {name} of `{css}`: {e}"))
    }

    /// Whether any element matches `css` right now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// The current page's HTML as the browser holds it now.
    pub async fn page_source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// The current page's URL.
    pub async fn current_url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// The current page's title.
    pub async fn title(&self) -> String {
        self.client.title().await.unwrap()
    }

    /// Runs `script` in the page (`arguments[i]` are `args`) and returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        match self.client.execute(script, args).await {
            Ok(value) => value,
            Err(e) => panic!("script failed on {}: {e}", self.where_am_i().await),
        }
    }

    /// Every cookie the browser holds for the current page.
    pub async fn cookies(&self) -> Vec<BrowserCookie> {
        let all = self.client.get_all_cookies().await.unwrap();
        all.into_iter()
            .map(|c| BrowserCookie {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                secure: c.secure().unwrap_or(false),
                http_only: c.http_only().unwrap_or(false),
                same_site: c.same_site().map(|s| s.to_string()),
                path: c.path().map(str::to_owned),
            })
            .collect()
    }

    /// The cookie `name` for the current page, if the browser holds it.
    pub async fn cookie(&self, name: &str) -> Option<BrowserCookie> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    /// Resizes the window so the page is laid out at `width` × `height` CSS pixels.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        // The window is larger than the page by its frame; measure and correct once.
        self.client.set_window_size(width, height).await.unwrap();
        let inner = self
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await;
        let measured = |i: usize| inner[i].as_u64().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        let (dw, dh) = (width.saturating_sub(measured(0)), height.saturating_sub(measured(1)));
        if dw > 0 || dh > 0 {
            self.client.set_window_size(width + dw, height + dh).await.unwrap();
        }
    }

    /// Lays the page out as on a phone ([`PHONE_SIZE`]), for the mobile view.
    pub async fn set_phone_size(&self) {
        self.set_viewport(PHONE_SIZE.0, PHONE_SIZE.1).await;
    }

    /// Saves a PNG of the visible page as `NN-name.png` in this test's artifacts folder and
    /// returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!("screenshot failed on {}: {e}", self.where_am_i().await),
        };
        let number = next_shot(&self.shots);
        let path = self.shots.join(format!("{number:02}-{}.png", sanitize(name)));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("could not write {}: {e}", path.display()));
        path
    }

    /// The fresh Chromium profile folder (`--user-data-dir`) of this browser.
    pub fn profile_dir(&self) -> PathBuf {
        self.dir.path().join("profile")
    }

    /// What `chromedriver` printed so far.
    pub fn driver_log(&self) -> String {
        read_log(self.dir.path())
    }

    /// Ends the session (Chromium exits) and stops `chromedriver`.
    pub async fn close(self) {
        // Drop does the rest; closing here first lets errors surface.
        self.client.clone().close().await.unwrap();
    }

    /// The current URL and title, for failure messages.
    async fn where_am_i(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let title = self.client.title().await.unwrap_or_default();
        format!("{url} ({title:?})")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A plain request rather than the async client: drop may run outside the runtime, and
        // Chromium must be gone before its profile folder is removed.
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            Duration::from_secs(10),
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Kills a `chromedriver` that never got as far as a session.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `chromedriver` on a free loopback port (output to `chromedriver.log` in `dir`) and
/// waits until it reports ready.
fn start_driver(dir: &Path) -> (Child, u16) {
    let log_path = dir.join("chromedriver.log");
    for _ in 0..3 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("could not run {CHROMEDRIVER}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(body) = http(port, "GET", "/status", Duration::from_secs(2))
                && serde_json::from_str::<Value>(&body).is_ok_and(|s| s["value"]["ready"] == json!(true))
            {
                return (child, port);
            }
            if child.try_wait().unwrap().is_some() {
                break; // Most likely the port was taken in between; try another.
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromedriver did not answer within 20 s:\n{}", read_log(dir));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    panic!("chromedriver exited three times:\n{}", read_log(dir));
}

/// One HTTP/1.1 request without a body to chromedriver on loopback; the response body.
/// (chromedriver keeps the connection open, so the body is read by its `Content-Length`.)
fn http(port: u16, method: &str, path: &str, timeout: Duration) -> std::io::Result<String> {
    let mut tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    write!(
        tcp,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(tcp);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default()
}

/// `RAMPART_TEST_ARTIFACTS` when set (scripts/test sets it), else `target/test-artifacts`.
fn artifacts_root() -> PathBuf {
    crate::leaks::artifacts().unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/debug/deps/<test> → target
        let target = exe.ancestors().nth(3).expect("target directory");
        target.join("test-artifacts")
    })
}

/// The next screenshot number in `folder`; the first call for a folder creates it, clears
/// screenshots an earlier run left there, and prints where they go.
fn next_shot(folder: &Path) -> u32 {
    let mut guard = SHOTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let counts = guard.get_or_insert_with(HashMap::new);
    let count = counts.entry(folder.to_owned()).or_insert_with(|| {
        std::fs::create_dir_all(folder).unwrap_or_else(|e| panic!("could not create {}: {e}", folder.display()));
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "png") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        println!("screenshots: {}", folder.display());
        0
    });
    *count += 1;
    *count
}

/// `name` with everything but letters, digits, `-` and `_` replaced by `-`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .replace("--", "-")
}
