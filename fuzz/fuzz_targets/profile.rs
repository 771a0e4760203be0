//! Fuzzes connection profiles, in both the JSON and the one-line form: no panic, and a profile
//! that parses has no problems and survives both forms unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_core::profile::{LINE_PREFIX, Profile};

fuzz_target!(|data: &[u8]| {
    // The bytes as the payload of a line, so the fuzzer reaches the JSON through base64 too.
    check(&format!("{LINE_PREFIX}{}", base64_url(data)));
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
});

fn check(text: &str) {
    let Ok(profile) = Profile::parse(text) else {
        return;
    };
    assert!(profile.problems().is_empty());
    assert_eq!(Profile::parse(&profile.to_line()).as_ref(), Ok(&profile));
    let json = serde_json::to_string(&profile).expect("a profile serialises");
    assert_eq!(Profile::parse(&json).as_ref(), Ok(&profile));
}

fn base64_url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}
