//! Fuzzes the audit trail's line reader and verifier (`rampart audit verify|query`). Each input
//! line is taken twice: as it is (no panic; a line that passes its own hash shows as a table row
//! with nothing a terminal would obey), and sealed into a fresh chain as the writer seals an
//! event (it reads back exactly as sealed, the chain verifies intact, and a record removed from
//! it or a tail cut off after an anchored head is caught).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_audit::query::{checked_record, row};
use rampart_core::audit::{Anchor, GENESIS, Place, StreamVerifier, check_line, seal};
use rampart_core::text::is_hazard;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').take(32).collect();

    let mut as_is = StreamVerifier::new(None, true);
    for (index, line) in lines.iter().enumerate() {
        as_is.line(place(index), line, true);
        if let Ok(record) = checked_record(line) {
            check_row(&record);
        }
    }
    let _ = as_is.finish();

    let mut chain: Vec<(Vec<u8>, String)> = Vec::new();
    for line in &lines {
        let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        // Only the writer makes checkpoints, and it signs what they cover: an event body never
        // carries one, so a fuzzed one is left out rather than sealed unsigned.
        if body.contains_key("checkpoint") {
            continue;
        }
        for key in ["seq", "prev_hash", "hash"] {
            body.remove(key);
        }
        let seq = chain.len() as u64;
        let prev = chain.last().map_or(GENESIS.to_owned(), |(_, hash)| hash.clone());
        let sealed = seal(seq, &prev, &body).expect("a JSON object seals");
        let bytes = sealed
            .line
            .strip_suffix(b"\n")
            .expect("a sealed line ends in a newline");
        assert!(!bytes.contains(&b'\n'), "a sealed record is one line");
        let link = check_line(bytes).expect("a sealed line checks");
        assert_eq!((link.seq, &link.prev_hash, &link.hash), (seq, &prev, &sealed.hash));
        let mut expected = body.clone();
        expected.insert("seq".into(), seq.into());
        expected.insert("prev_hash".into(), prev.into());
        // As serde_json reads numbers back: without its `float_roundtrip` feature a float may
        // come back one unit in the last place off (events hold integers only).
        let expected: Value = serde_json::from_slice(&serde_json::to_vec(&expected).expect("JSON"))
            .expect("serde_json reads what it wrote");
        assert_eq!(link.record, expected);
        check_row(&checked_record(bytes).expect("a sealed line reads back"));
        chain.push((bytes.to_vec(), sealed.hash));
    }
    if chain.is_empty() {
        return;
    }

    let verify = |lines: &[&(Vec<u8>, String)], anchors: Vec<Anchor>| {
        let mut verifier = StreamVerifier::new(None, false).with_anchors(anchors);
        for (index, (line, _)) in lines.iter().enumerate() {
            verifier.line(place(index), line, true);
        }
        verifier.finish()
    };
    let all: Vec<_> = chain.iter().collect();
    let (finding, summary) = verify(&all, vec![]);
    assert_eq!(finding, None);
    assert_eq!(summary.records, chain.len() as u64);
    // A record taken out of the middle leaves a gap.
    if chain.len() >= 3 {
        let mut cut = all.clone();
        cut.remove(chain.len() / 2);
        assert!(verify(&cut, vec![]).0.is_some(), "a removed record went unnoticed");
    }
    // The tail cut off after its head was anchored elsewhere.
    let head = Anchor {
        seq: chain.len() as u64 - 1,
        hash: chain[chain.len() - 1].1.clone(),
        file: place(chain.len() - 1).file,
    };
    assert_eq!(verify(&all, vec![head.clone()]).0, None);
    assert!(
        verify(&all[..all.len() - 1], vec![head]).0.is_some(),
        "a cut tail went unnoticed"
    );
});

fn place(index: usize) -> Place {
    Place {
        file: "fuzz-0.jsonl".into(),
        line: index as u64 + 1,
    }
}

/// A table row shows the record's text with nothing a terminal or line reader would obey.
fn check_row(record: &Value) {
    for cell in row(record) {
        assert!(!cell.chars().any(is_hazard), "{cell:?}");
    }
}
