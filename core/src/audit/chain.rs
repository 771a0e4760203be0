//! The hash chain: each audit line is `{"seq":N,…,"prev_hash":"…","hash":"…"}` where `hash` is
//! the SHA-256 of the exact bytes before it (closed with `}`), which include `seq` and the
//! previous record's hash. Any edited byte, and any removed or moved record, breaks the chain.
//!
//! Hashing the bytes as written (not a re-serialisation) means a verifier needs no canonical
//! JSON: it cuts the fixed-size `,"hash":"<64 hex>"}` suffix and hashes what is left.

use crate::text::escape_json_extras;
use ring::digest::{SHA256, digest};
use serde::Serialize;
use serde_json::Value;

/// `prev_hash` of the first record of a stream.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_KEY: &[u8] = b",\"hash\":\"";
const HASH_HEX_LEN: usize = 64;
/// `,"hash":"` + 64 hex digits + `"}`.
const SUFFIX_LEN: usize = HASH_KEY.len() + HASH_HEX_LEN + 2;

/// A sealed record: its line (ending in `\n`) and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedLine {
    /// The bytes to append to the log.
    pub line: Vec<u8>,
    /// The record's hash, the next record's `prev_hash`.
    pub hash: String,
}

#[derive(Serialize)]
struct Unsealed<'a, B: Serialize> {
    seq: u64,
    #[serde(flatten)]
    body: &'a B,
    prev_hash: &'a str,
}

/// Serialises `body` as record `seq` following `prev_hash` and seals it.
///
/// `body` must serialise as a JSON object without `seq`, `prev_hash` or `hash` keys.
pub fn seal<B: Serialize>(seq: u64, prev_hash: &str, body: &B) -> Result<SealedLine, serde_json::Error> {
    let mut bytes = serde_json::to_vec(&Unsealed { seq, body, prev_hash })?;
    escape_line_separators(&mut bytes);
    let hash = hex::encode(digest(&SHA256, &bytes));
    // The object ends with `}`: reopen it to append the hash as its last member.
    bytes.pop();
    bytes.extend_from_slice(HASH_KEY);
    bytes.extend_from_slice(hash.as_bytes());
    bytes.extend_from_slice(b"\"}\n");
    Ok(SealedLine { line: bytes, hash })
}

/// What a line claims about its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Its sequence number.
    pub seq: u64,
    /// The hash it says came before it.
    pub prev_hash: String,
    /// Its own hash (checked against its content).
    pub hash: String,
    /// The whole record, for readers.
    pub record: Value,
}

/// Why a line is not a sound record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line does not have the shape of an audit record at all.
    #[error("not an audit record ({0})")]
    Malformed(&'static str),
    /// The content does not match its hash: it was edited.
    #[error("its content does not match its hash")]
    HashMismatch,
}

/// Checks one line (without its `\n`) against its own hash and reads its chain fields.
pub fn check_line(line: &[u8]) -> Result<Link, LineError> {
    if line.len() < SUFFIX_LEN + 2 || !line.ends_with(b"\"}") {
        return Err(LineError::Malformed("no hash at the end"));
    }
    let cut = line.len() - SUFFIX_LEN;
    if &line[cut..cut + HASH_KEY.len()] != HASH_KEY {
        return Err(LineError::Malformed("no hash at the end"));
    }
    let claimed = &line[cut + HASH_KEY.len()..line.len() - 2];
    let claimed = std::str::from_utf8(claimed).map_err(|_| LineError::Malformed("hash is not hex"))?;
    let mut body = line[..cut].to_vec();
    body.push(b'}');
    let actual = hex::encode(digest(&SHA256, &body));
    if actual != claimed {
        return Err(LineError::HashMismatch);
    }
    let record: Value = serde_json::from_slice(&body).map_err(|_| LineError::Malformed("not JSON"))?;
    let seq = record
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or(LineError::Malformed("no seq"))?;
    let prev_hash = record
        .get("prev_hash")
        .and_then(Value::as_str)
        .filter(|h| h.len() == HASH_HEX_LEN)
        .ok_or(LineError::Malformed("no prev_hash"))?
        .to_owned();
    Ok(Link {
        seq,
        prev_hash,
        hash: actual,
        record,
    })
}

/// JSON allows DEL, C1 controls, U+2028/U+2029 and invisible or bidirectional marks raw inside
/// strings, but some line readers split on them and terminals obey them; written escaped (the
/// same escaping as every process log, `crate::text::escape_json_extras`), a record is one
/// line for every reader and inert on a terminal.
fn escape_line_separators(bytes: &mut Vec<u8>) {
    if let Ok(text) = std::str::from_utf8(bytes)
        && let std::borrow::Cow::Owned(escaped) = escape_json_extras(text)
    {
        *bytes = escaped.into_bytes();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn line(sealed: &SealedLine) -> &[u8] {
        sealed.line.strip_suffix(b"\n").unwrap()
    }

    #[test]
    fn a_sealed_line_checks_and_links() {
        let first = seal(0, GENESIS, &json!({"message": "a"})).unwrap();
        let second = seal(1, &first.hash, &json!({"message": "b"})).unwrap();
        let link = check_line(line(&second)).unwrap();
        assert_eq!(link.seq, 1);
        assert_eq!(link.prev_hash, first.hash);
        assert_eq!(link.hash, second.hash);
        assert_eq!(link.record["message"], "b");
        assert_eq!(second.line.iter().filter(|b| **b == b'\n').count(), 1);
    }

    #[test]
    fn every_single_byte_edit_is_caught() {
        let sealed = seal(7, GENESIS, &json!({"user": {"name": "alice"}, "bytes": 1024})).unwrap();
        let original = line(&sealed).to_vec();
        for i in 0..original.len() {
            let mut edited = original.clone();
            edited[i] ^= 0x01;
            assert!(check_line(&edited).is_err(), "edit at byte {i} went unnoticed");
        }
    }

    #[test]
    fn hostile_strings_stay_on_one_line() {
        let name = "eve\n{\"seq\":0}\r\"\u{2028}\u{2029}\u{1b}[31m\u{0}\u{7f}\u{9b}2J\u{202e}";
        let sealed = seal(0, GENESIS, &json!({"user": {"name": name}})).unwrap();
        let text = std::str::from_utf8(&sealed.line).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(
            !text.chars().any(|c| c != '\n' && crate::text::is_hazard(c)),
            "{text:?}"
        );
        let link = check_line(line(&sealed)).unwrap();
        assert_eq!(link.record["user"]["name"], name);
    }

    #[test]
    fn shapes_that_are_not_records_are_named() {
        assert_eq!(check_line(b"{}"), Err(LineError::Malformed("no hash at the end")));
        assert_eq!(check_line(b""), Err(LineError::Malformed("no hash at the end")));
        let sealed = seal(0, GENESIS, &json!({})).unwrap();
        let cut = &line(&sealed)[..sealed.line.len() - 10];
        assert!(check_line(cut).is_err());
    }
}
