//! The suite-wide secret scan: after every other test has run, searches every log and audit
//! file the suite kept (`RAMPART_TEST_ARTIFACTS`, set by scripts/test) for every password, OTP
//! code, temporary code and seed the tests used, plus the directory fixtures' passwords.
//! Run by scripts/test as its last step; on its own it is ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aho_corasick::AhoCorasick;
use rampart_tests::leaks::{ARTIFACTS_ENV, SECRETS_FILE, artifacts};
use rampart_tests::slapd::{ALICE, BOB, CAROL, SERVICE_PASSWORD};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Files that are logs or audit trails. Deliberate displays of a secret are not logs:
/// `dev.json` and the dev banner (`dev.stdout`) show the demo password and token by design.
fn is_log(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name.ends_with(".log") || name.ends_with(".stderr") || name.ends_with(".jsonl")
}

/// The parts of a line a code could leak into. In a JSON record that is every key and string
/// value: its numbers are the record's own (OCSF type ids such as 300109, byte counts, times),
/// and a code among them would be a coincidence, not a leak. Any other line is searched whole.
fn code_carriers(line: &str) -> Vec<String> {
    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => {
                for (key, v) in map {
                    out.push(key.clone());
                    strings(v, out);
                }
            }
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(line) {
        Ok(record @ (Value::Object(_) | Value::Array(_))) => {
            let mut out = Vec::new();
            strings(&record, &mut out);
            out
        }
        _ => vec![line.to_owned()],
    }
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, found);
        } else if is_log(&path) {
            found.push(path);
        }
    }
}

#[test]
#[ignore = "run by scripts/test after the whole suite, over what it kept"]
fn no_secret_the_suite_used_appears_in_any_log_or_audit_file() {
    let root = artifacts().unwrap_or_else(|| panic!("set {ARTIFACTS_ENV} and run the suite first (scripts/test does)"));
    let listed = std::fs::read_to_string(root.join(SECRETS_FILE)).expect("the suite remembered no secret");
    // Digit-only secrets (codes) are matched as whole words; the rest as substrings.
    let mut codes: HashMap<String, String> = HashMap::new();
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    for (kind, value) in [
        ("password", SERVICE_PASSWORD),
        ("password", ALICE.password),
        ("password", BOB.password),
        ("password", CAROL.password),
    ]
    .into_iter()
    .chain(listed.lines().filter_map(|l| l.split_once('\t')))
    {
        if value.bytes().all(|b| b.is_ascii_digit()) {
            codes.insert(value.to_owned(), kind.to_owned());
        } else {
            texts.insert(value.to_owned(), kind.to_owned());
        }
    }
    let count = |kind: &str| codes.values().chain(texts.values()).filter(|k| *k == kind).count();
    assert!(count("code") >= 50, "too few codes remembered: {}", count("code"));
    assert!(count("seed") >= 10, "too few seeds remembered: {}", count("seed"));
    assert!(
        count("password") >= 5,
        "too few passwords remembered: {}",
        count("password")
    );
    let patterns: Vec<&String> = texts.keys().collect();
    let matcher = AhoCorasick::new(&patterns).unwrap();

    let mut files = Vec::new();
    walk(&root, &mut files);
    let audit_files = files
        .iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("audit")))
        .count();
    assert!(files.len() >= 50, "too few logs kept: {}", files.len());
    assert!(audit_files >= 10, "too few audit files kept: {audit_files}");

    let mut leaks = Vec::new();
    let mut scanned = 0u64;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        scanned += bytes.len() as u64;
        let text = String::from_utf8_lossy(&bytes);
        for (number, line) in text.lines().enumerate() {
            let at = || format!("{} line {}", file.display(), number + 1);
            for m in matcher.find_iter(line) {
                leaks.push(format!("a {} in {}", texts[patterns[m.pattern().as_usize()]], at()));
            }
            for text in code_carriers(line) {
                // Whole words only: a code's digits inside a hex id or a longer number are not it.
                let words = text.split(|c: char| !c.is_ascii_alphanumeric());
                for run in words.filter(|w| w.len() >= 6 && w.bytes().all(|b| b.is_ascii_digit())) {
                    if let Some(kind) = codes.get(run) {
                        leaks.push(format!("a {kind} in {}", at()));
                    }
                }
            }
            if holds_generated_password(line) {
                leaks.push(format!("a generated directory password in {}", at()));
            }
        }
    }
    println!(
        "searched {} files ({} audit files, {scanned} bytes) for {} codes and {} other secrets",
        files.len(),
        audit_files,
        codes.len(),
        texts.len()
    );
    assert!(
        leaks.is_empty(),
        "{} secrets found (values not shown):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// Whether `line` holds `pw-NNNNN-generated`, the fixture people's passwords.
fn holds_generated_password(line: &str) -> bool {
    line.match_indices("pw-").any(|(i, _)| {
        let rest = &line[i + 3..];
        rest.len() >= 15 && rest[..5].bytes().all(|b| b.is_ascii_digit()) && rest[5..].starts_with("-generated")
    })
}

#[test]
fn json_records_are_searched_in_their_strings_and_other_lines_whole() {
    let record =
        r#"{"type_uid":300109,"traffic":{"bytes_in":123457},"message":"otp 482913 rejected","user":{"name":"x"}}"#;
    let carriers = code_carriers(record);
    assert!(carriers.iter().any(|s| s.contains("482913")), "{carriers:?}");
    assert!(!carriers.iter().any(|s| s.contains("300109") || s.contains("123457")));
    assert!(carriers.contains(&"type_uid".to_owned()));
    let text = "2026-12-02T00:00:00Z WARN login failed code=482913";
    assert_eq!(code_carriers(text), vec![text.to_owned()]);
    assert_eq!(
        code_carriers("482913"),
        vec!["482913".to_owned()],
        "a bare number is a line, not a record"
    );
}
