//! The suite-wide secret scan: after every other test has run, searches every log and audit
//! file the suite kept (`RAMPART_TEST_ARTIFACTS`, set by scripts/test) for every password, OTP
//! code, temporary code and seed the tests used, plus the directory fixtures' passwords.
//! Run by scripts/test as its last step; on its own it is ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aho_corasick::AhoCorasick;
use rampart_tests::leaks::{ARTIFACTS_ENV, SECRETS_FILE, artifacts};
use rampart_tests::slapd::{ALICE, BOB, CAROL, SERVICE_PASSWORD};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Files that are logs or audit trails. Deliberate displays of a secret are not logs:
/// `dev.json` and the dev banner (`dev.stdout`) show the demo password and token by design.
fn is_log(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name.ends_with(".log") || name.ends_with(".stderr") || name.ends_with(".jsonl")
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
            // Whole words only: a code's digits inside a hex id or a longer number are not it.
            let words = line.split(|c: char| !c.is_ascii_alphanumeric());
            for run in words.filter(|w| w.len() >= 6 && w.bytes().all(|b| b.is_ascii_digit())) {
                if let Some(kind) = codes.get(run) {
                    leaks.push(format!("a {kind} in {}", at()));
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
