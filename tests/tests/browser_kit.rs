//! The browser kit against a real page: a tiny HTTP server in the test serves a form and a
//! page that sets a cookie; real headless Chromium fills and submits the form, reads the answer
//! and the cookie's flags, and keeps screenshots.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::browser::{Browser, PHONE_SIZE};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const FORM: &str = "<!doctype html><html><head><title>Sign in</title>\
    <meta name=viewport content=\"width=device-width\"></head><body>\
    <h1>Sign in</h1>\
    <form id=signin method=post action=/hello>\
    <label>Name <input id=who name=who required></label>\
    <button>Continue</button></form></body></html>";

/// Serves `/` (the form) and `POST /hello` (a greeting that sets an HttpOnly, SameSite=Strict
/// cookie) on 127.0.0.1 until the test ends; returns the base URL.
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    base
}

fn answer(stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let body = String::from_utf8_lossy(&body);
    let (status, extra, page) = if request_line.starts_with("GET / ") {
        ("200 OK", "", FORM.to_owned())
    } else if request_line.starts_with("POST /hello ") {
        let who = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("who="))
            .unwrap_or("")
            .replace('+', " ");
        let page = format!(
            "<!doctype html><html><head><title>Hello</title></head><body>\
             <p id=greeting>Hello, {who}!</p></body></html>"
        );
        ("200 OK", "Set-Cookie: k=v; HttpOnly; SameSite=Strict; Path=/\r\n", page)
    } else {
        ("404 Not Found", "", "<p>not here</p>".to_owned())
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!(&png[12..16], b"IHDR");
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_fills_a_form_reads_the_answer_and_the_cookie_flags_and_keeps_screenshots() {
    let base = serve();
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/")).await;
    assert_eq!(browser.title().await, "Sign in");
    assert_eq!(browser.text("h1").await, "Sign in");
    assert!(browser.cookie("k").await.is_none(), "no cookie before the form is sent");
    let form_shot = browser.screenshot("form").await;

    browser.fill("#who", "Ada Lovelace").await;
    browser.submit("#signin").await;
    let greeting = browser
        .wait_for_text("#greeting", "Hello", Duration::from_secs(5))
        .await;
    assert_eq!(greeting, "Hello, Ada Lovelace!");
    assert_eq!(browser.current_url().await, format!("{base}/hello"));

    let cookie = browser.cookie("k").await.expect("the greeting page set cookie k");
    assert_eq!(cookie.value, "v");
    assert!(cookie.http_only, "{cookie:?}");
    assert!(!cookie.secure, "{cookie:?}");
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"), "{cookie:?}");
    assert_eq!(cookie.path.as_deref(), Some("/"), "{cookie:?}");
    // HttpOnly as the page sees it: its scripts cannot read the cookie.
    let visible = browser.execute("return document.cookie;", vec![]).await;
    assert_eq!(visible, serde_json::json!(""));
    let greeting_shot = browser.screenshot("greeting").await;

    // A person pressing Enter instead of clicking gets the same answer.
    browser.goto(&format!("{base}/")).await;
    browser.set_phone_size().await;
    browser.fill("#who", "Grace").await;
    browser.press_enter("#who").await;
    browser
        .wait_for_text("#greeting", "Hello, Grace!", Duration::from_secs(5))
        .await;
    let phone_shot = browser.screenshot("greeting phone").await;
    browser.close().await;

    let folder = form_shot.parent().unwrap();
    assert!(
        folder.ends_with("chromium_fills_a_form_reads_the_answer_and_the_cookie_flags_and_keeps_screenshots"),
        "{}",
        folder.display()
    );
    let names: Vec<_> = [&form_shot, &greeting_shot, &phone_shot]
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["01-form.png", "02-greeting.png", "03-greeting-phone.png"]);
    for shot in [&form_shot, &greeting_shot] {
        let png = std::fs::read(shot).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", shot.display());
        assert_eq!(png_size(&png).0, 1280, "{}: desktop width", shot.display());
    }
    let phone = std::fs::read(&phone_shot).unwrap();
    assert!(phone.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(
        png_size(&phone),
        PHONE_SIZE,
        "the phone screenshot is the phone's viewport"
    );
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(needle)
        {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_browser_ends_chromium_and_removes_its_profile() {
    let base = serve();
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/")).await;
    browser.wait_for("#who", Duration::from_secs(5)).await;
    let profile = browser.profile_dir();
    let needle = profile.to_string_lossy().into_owned();
    assert!(
        !processes_mentioning(&needle).is_empty(),
        "Chromium runs with its own profile"
    );
    assert!(profile.is_dir());
    drop(browser);
    // Chromium's helper processes take a moment to follow the browser out on a busy machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut left = processes_mentioning(&needle);
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        left = processes_mentioning(&needle);
    }
    assert_eq!(left, Vec::<String>::new(), "Chromium outlived the browser");
    assert!(!profile.exists(), "the profile folder was left behind");
}
