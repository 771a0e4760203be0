//! Micro-benchmarks of the per-login and per-stream work of the sans-I/O core: decoding a
//! control frame, verifying a TOTP code over the window, deciding a stream against a policy of
//! 200 resources, and sealing an audit record into the hash chain.
//!
//! `cargo bench -p rampart-core --bench micro` (divan; `-- --help` for its options).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use divan::Bencher;
use rampart_core::audit::{Activity, AuditEvent, Class, Status, User};
use rampart_core::codec;
use rampart_core::policy::{AccessTime, Identity, Policy};
use rampart_core::protocol::ClientMessage;
use rampart_core::secret::Sensitive;
use rampart_core::totp::{TotpParams, generate_totp, verify_totp};
use std::hint::black_box;

fn main() {
    divan::main();
}

/// A Tuesday, 10:00 UTC, as unix seconds.
const NOW: u64 = 1_764_669_600;

#[divan::bench]
fn decode_login_frame(bencher: Bencher) {
    let frame = codec::encode(&ClientMessage::Login {
        username: "alice.martin".into(),
        password: Sensitive::new("correct horse battery staple".into()),
        otp: Sensitive::new("123456".into()),
        client_key: Some("MCowBQYDK2VwAyEA2bq7Y7GJqJ0f5xS7s2e9KjzvE0M2q1cQ8X3nZ0Yz4Ww".into()),
    })
    .unwrap();
    bencher.bench(|| codec::decode::<ClientMessage>(black_box(&frame)).unwrap().unwrap());
}

#[divan::bench(args = [0, 1])]
fn verify_totp_code(bencher: Bencher, steps_behind: u64) {
    let seed = [7u8; 20];
    let params = TotpParams {
        window: 1,
        ..TotpParams::default()
    };
    // A code from `steps_behind` steps ago: the window's last step is found after the others.
    let code = generate_totp(&seed, &params, NOW - steps_behind * params.period).unwrap();
    bencher.bench(|| verify_totp(black_box(&seed), black_box(&code), &params, NOW, None).unwrap());
}

/// A policy of `n` resources, each given to one group, with office hours on every tenth.
fn policy(n: usize) -> Policy {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "[[resource]]\nname = \"app{i}\"\ntarget = \"10.0.{}.{}:443\"\n",
            i / 250,
            i % 250 + 1
        ));
        if i % 10 == 0 {
            text.push_str(&format!(
                "\n[[rule]]\nname = \"hours{i}\"\nresources = [\"app{i}\"]\ngroups = [\"team{}\"]\n\
                 time_zone = \"Europe/Zurich\"\nwindows = [\"Mon-Fri 07:00-19:00\"]\n",
                i % 20
            ));
        } else {
            text.push_str(&format!("allow_groups = [\"team{}\"]\n", i % 20));
        }
        text.push('\n');
    }
    Policy::parse(&text).unwrap()
}

#[divan::bench]
fn decide_stream(bencher: Bencher) {
    let policy = policy(200);
    let who = Identity {
        username: "alice".into(),
        groups: vec!["team3".into(), "team10".into(), "staff".into()],
    };
    let at = AccessTime {
        now: i64::try_from(NOW).unwrap(),
        session_started: i64::try_from(NOW).unwrap() - 3600,
    };
    // A rule with hours (app10, team10) and one without (app123, team3).
    bencher.bench(|| {
        (
            policy.decide(black_box(&who), black_box("app10"), at),
            policy.decide(black_box(&who), black_box("app123"), at),
        )
    });
}

#[divan::bench]
fn seal_audit_record(bencher: Bencher) {
    let event = AuditEvent::new(
        Class::Authentication,
        Activity::LOGON,
        1_764_669_600_000,
        Status::Success,
        "login",
    )
    .user(User::with_uid("alice", "2f1c9a0e-6b1d-4a57-9d0c-3f5e1b2a7c44"))
    .session("9f86d081884c7d659a2feaa0c55ad015")
    .source("192.0.2.10:51234".parse().unwrap());
    let prev = "a".repeat(64);
    let mut seq = 0u64;
    bencher.bench_local(|| {
        seq += 1;
        rampart_core::audit::seal(seq, black_box(&prev), black_box(&event)).unwrap()
    });
}
