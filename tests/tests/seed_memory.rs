//! A token seed does not outlive its verification in a real `rampart-gateway`'s memory: after
//! logins with right and wrong codes, a dump of every readable mapping of the process (as an
//! attacker with a core file, swap or `/proc/PID/mem` would take it) holds neither the raw seed
//! nor its base32 text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aho_corasick::AhoCorasick;
use rampart_client::{ClientError, GatewayClient};
use rampart_core::secret::Sensitive;
use rampart_core::totp::{TotpParams, secret_base32};
use rampart_store::{TokenRecord, UserRecord};
use rampart_tests::gateway::{GatewayProc, LdapLab, login_person};
use rampart_tests::leaks::remember;
use rampart_tests::slapd::ALICE;
use rampart_tests::{random_bytes, wrong_code};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// A resource for alice's group, so her logins are whole logins.
const POLICY: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n";

/// Bytes of the seed in a row that count as a copy found (2^-96 by chance per place).
const WINDOW: usize = 12;

/// Gives alice a pending token with a 512-bit seed (RFC 6238 pairs it with HMAC-SHA-512), sealed
/// into the gateway's store as the provisioner does; returns the raw seed and its base32 text.
/// A long seed keeps most of its bytes even in a freed heap chunk, whose allocator bookkeeping
/// overwrites the first 16.
async fn enrol_long_seed(gw: &GatewayProc) -> (Sensitive<Vec<u8>>, String) {
    let (store, keys) = gw.open_store().await;
    store
        .upsert_user(&UserRecord {
            id: ALICE.uuid.into(),
            username: ALICE.uid.into(),
            display_name: ALICE.uid.into(),
            password_hash: None,
            enabled: true,
            groups: vec![],
            created_at: 0,
        })
        .await
        .unwrap();
    let seed = Sensitive::new(random_bytes(64));
    let token_id = "tok-long-seed".to_owned();
    store
        .insert_token(&TokenRecord::pending(
            token_id.clone(),
            ALICE.uuid.into(),
            TotpParams::default(),
            keys.seal(&token_id, seed.expose()).unwrap(),
            0,
        ))
        .await
        .unwrap();
    let secret = secret_base32(seed.expose());
    remember("seed", &secret);
    (seed, secret)
}

/// Where in the process one of the patterns was found: mapping name and address, never the
/// bytes themselves.
fn scan_process(pid: u32, patterns: &[&[u8]]) -> Vec<String> {
    let finder = AhoCorasick::new(patterns).unwrap();
    let longest = patterns.iter().map(|p| p.len()).max().unwrap_or(1);
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut found = Vec::new();
    let mut scanned = 0u64;
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(perms)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        let name = fields.get(5).copied().unwrap_or("[anonymous]");
        if !perms.starts_with('r') || matches!(name, "[vvar]" | "[vsyscall]" | "[vvar_vclock]") {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        // Chunks overlapping by one pattern length, so no match straddles two reads unseen.
        const CHUNK: u64 = 1 << 20;
        let mut at = start;
        let mut buf = vec![0u8; CHUNK as usize];
        while at < end {
            let len = (end - at).min(CHUNK) as usize;
            // A region that cannot be read (guard pages, device memory) is skipped.
            let Ok(n) = mem.read_at(&mut buf[..len], at) else {
                break;
            };
            if n == 0 {
                break;
            }
            scanned += n as u64;
            for m in finder.find_overlapping_iter(&buf[..n]) {
                found.push(format!("{name} at offset {:#x}", at - start + m.start() as u64));
            }
            if at + (n as u64) >= end {
                break;
            }
            at += (n as u64).saturating_sub(longest as u64 - 1).max(1);
        }
    }
    assert!(scanned > 1 << 20, "only {scanned} bytes of the gateway could be read");
    found.sort();
    found.dedup();
    found
}

/// Old behaviour: each verification built a `totp_rs::TOTP` holding its own copy of the
/// unsealed seed, and totp-rs without its `zeroize` feature dropped it without wiping, leaving
/// the seed in freed heap of the gateway. Now the TOTP object (totp-rs `zeroize`) and the
/// unsealed seed are wiped when dropped. glibc's allocator hands such a freed chunk out again
/// within the same login, so this dump finds no copy even with that old behaviour (the unit test
/// `every_copy_of_the_seed_is_wiped_on_drop` in `core/src/totp.rs` covers the wiping itself);
/// what this test catches is a copy that outlives the logins: kept in a cache, a session, a log
/// buffer or an unsealing buffer never freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_copy_of_a_seed_stays_in_gateway_memory_after_logins() {
    let lab = LdapLab::start(POLICY, "").await;
    let gw = &lab.gw;
    let (seed, secret) = enrol_long_seed(gw).await;

    // Wrong codes first (each one a full verification), then three logins on successive steps.
    for _ in 0..2 {
        let client = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
        let refused = client
            .login(
                ALICE.uid,
                Sensitive::new(ALICE.password.into()),
                Sensitive::new(wrong_code(&secret)),
            )
            .await;
        assert!(
            matches!(refused, Err(ClientError::Refused { .. })),
            "a wrong code was not refused"
        );
        client.close().await;
    }
    for offset in [-1, 0, 1] {
        let (client, _grant) = login_person(gw, &ALICE, &secret, offset).await;
        client.close().await;
    }

    // Any 12 bytes of the seed in a row (a freed heap chunk keeps all but its first 16 bytes),
    // or the whole base32 text.
    let mut patterns: Vec<&[u8]> = seed.expose().windows(WINDOW).collect();
    patterns.push(secret.as_bytes());
    let found = scan_process(gw.pid(), &patterns);
    // The dump does see the process: the target address of the policy it loaded is there.
    let control = scan_process(gw.pid(), &[lab.echo.as_bytes()]);
    assert!(!control.is_empty(), "the scan did not find the gateway's policy target");
    assert!(
        found.is_empty(),
        "the gateway's memory still holds the seed or its base32 text: {found:?}"
    );
}
