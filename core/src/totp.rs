//! TOTP verification (RFC 6238 over RFC 4226) as pure functions of secret, code, time and the
//! last accepted time step: no clock reads, constant-time code comparison, replay detection.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

/// Shortest secret accepted (RFC 4226 §4 asks for at least 128 bits).
pub const MIN_SECRET_LEN: usize = 16;
/// Length of the seeds Rampart issues (160 bits, RFC 4226's recommendation).
pub const SEED_LEN: usize = 20;
/// Largest window accepted on each side of the current step.
pub const MAX_WINDOW: u8 = 10;

/// HMAC function behind the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum TotpAlgorithm {
    /// HMAC-SHA-1: what every authenticator app supports; the default.
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl TotpAlgorithm {
    /// The name used in otpauth URIs and in the store (`SHA1`, `SHA256`, `SHA512`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses the name written by [`TotpAlgorithm::as_str`] (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "SHA1" => Some(Self::Sha1),
            "SHA256" => Some(Self::Sha256),
            "SHA512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn to_lib(self) -> Algorithm {
        match self {
            Self::Sha1 => Algorithm::SHA1,
            Self::Sha256 => Algorithm::SHA256,
            Self::Sha512 => Algorithm::SHA512,
        }
    }
}

/// How codes of one token are computed and how much clock drift is tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpParams {
    /// HMAC function.
    pub algorithm: TotpAlgorithm,
    /// Digits in a code: 6, 7 or 8.
    pub digits: u8,
    /// Length of a time step in seconds (30 in RFC 6238).
    pub period: u64,
    /// Steps accepted on each side of the current one (1 accepts T−1, T, T+1).
    pub window: u8,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period: 30,
            window: 1,
        }
    }
}

impl TotpParams {
    /// Checks digits (6–8), period (1 s – 1 h) and window (≤ [`MAX_WINDOW`]).
    pub fn validate(&self) -> Result<(), TotpError> {
        if !(6..=8).contains(&self.digits) {
            return Err(TotpError::BadParams("digits must be 6, 7 or 8"));
        }
        if self.period == 0 || self.period > 3600 {
            return Err(TotpError::BadParams("period must be between 1 and 3600 seconds"));
        }
        if self.window > MAX_WINDOW {
            return Err(TotpError::BadParams("window must be at most 10 steps"));
        }
        Ok(())
    }

    /// The time step that contains `unix_time`.
    pub fn step_at(&self, unix_time: u64) -> u64 {
        unix_time / self.period.max(1)
    }
}

/// Why a code was not accepted. Callers must give the client one answer for all of these;
/// the variants exist for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The code is not a string of exactly `digits` ASCII digits.
    #[error("the code is not made of the expected number of digits")]
    Malformed,
    /// No step in the window produces this code.
    #[error("the code does not match")]
    Mismatch,
    /// The code matches a step at or before the last accepted one: a replay.
    #[error("the code was already used")]
    Replayed,
    /// The token's parameters or secret are unusable.
    #[error("invalid TOTP parameters: {0}")]
    BadParams(&'static str),
}

/// Computes the code for `unix_time`. Used by tests, demos and resynchronisation.
pub fn generate_totp(secret: &[u8], params: &TotpParams, unix_time: u64) -> Result<String, TotpError> {
    let totp = build(secret, params, None, "")?;
    Ok(totp.generate(unix_time).to_string())
}

/// Verifies `code` at time `now` and returns the time step it matched.
///
/// Every step in `[T − window, T + window]` is computed and compared in constant time, with no
/// early exit. A match at a step `≤ last_step` is [`TotpError::Replayed`]; the caller must then
/// record the returned step with an atomic "only if newer" update so that a code is accepted at
/// most once across processes.
pub fn verify_totp(
    secret: &[u8],
    code: &str,
    params: &TotpParams,
    now: u64,
    last_step: Option<u64>,
) -> Result<u64, TotpError> {
    let totp = build(secret, params, None, "")?;
    let well_formed = code.len() == usize::from(params.digits) && code.bytes().all(|b| b.is_ascii_digit());
    let current = params.step_at(now);
    let first = current.saturating_sub(u64::from(params.window));
    let last = current.saturating_add(u64::from(params.window));
    let mut fresh: Option<u64> = None;
    let mut replayed = false;
    for step in first..=last {
        let candidate = Zeroizing::new(totp.generate(step.saturating_mul(params.period)).to_string());
        let equal: bool = candidate.as_bytes().ct_eq(code.as_bytes()).into();
        if equal {
            if last_step.is_some_and(|seen| step <= seen) {
                replayed = true;
            } else if fresh.is_none() {
                fresh = Some(step);
            }
        }
    }
    match (well_formed, fresh, replayed) {
        (false, _, _) => Err(TotpError::Malformed),
        (true, Some(step), _) => Ok(step),
        (true, None, true) => Err(TotpError::Replayed),
        (true, None, false) => Err(TotpError::Mismatch),
    }
}

/// Steps searched on each side by [`code_offset_steps`]: ten steps of 30 s, five minutes.
pub const DRIFT_REACH: u8 = 10;

/// How many steps away from `now` the step lies whose code is `code`, searching
/// `[T − reach, T + reach]` (`reach` at most [`DRIFT_REACH`]); the one nearest to `T` wins, the
/// earlier on a tie. `None` for a malformed code or none in reach.
///
/// For diagnosis only, after [`verify_totp`] refused a code: it accepts nothing and knows
/// nothing of replays. Many people whose codes match the same number of steps away point at
/// the verifier's clock rather than their phones'. Every step is computed and compared in
/// constant time, with no early exit.
pub fn code_offset_steps(
    secret: &[u8],
    code: &str,
    params: &TotpParams,
    now: u64,
    reach: u8,
) -> Result<Option<i64>, TotpError> {
    let totp = build(secret, params, None, "")?;
    let reach = u64::from(reach.min(DRIFT_REACH));
    let well_formed = code.len() == usize::from(params.digits) && code.bytes().all(|b| b.is_ascii_digit());
    let current = params.step_at(now);
    let first = current.saturating_sub(reach);
    let last = current.saturating_add(reach);
    let mut nearest: Option<i64> = None;
    for step in first..=last {
        let candidate = Zeroizing::new(totp.generate(step.saturating_mul(params.period)).to_string());
        let equal: bool = candidate.as_bytes().ct_eq(code.as_bytes()).into();
        // Both values are within `DRIFT_REACH` of each other, so the difference fits.
        let offset = i64::try_from(step).unwrap_or(i64::MAX) - i64::try_from(current).unwrap_or(i64::MAX);
        if equal && nearest.is_none_or(|best| offset.abs() < best.abs()) {
            nearest = Some(offset);
        }
    }
    Ok(nearest.filter(|_| well_formed))
}

/// The `otpauth://totp/…` URI an authenticator app enrols from (Key Uri Format).
pub fn otpauth_uri(secret: &[u8], params: &TotpParams, issuer: &str, account: &str) -> Result<String, TotpError> {
    let totp = build(secret, params, Some(issuer), account)?;
    totp.to_url()
        .map_err(|_| TotpError::BadParams("issuer and account must not contain ':'"))
}

/// Base32 (RFC 4648, no padding) form of a secret, as typed into `oathtool -b` or an app.
pub fn secret_base32(secret: &[u8]) -> String {
    totp_rs::Secret::from(Box::<[u8]>::from(secret)).to_base32()
}

fn build(secret: &[u8], params: &TotpParams, issuer: Option<&str>, account: &str) -> Result<Totp, TotpError> {
    params.validate()?;
    if secret.len() < MIN_SECRET_LEN {
        return Err(TotpError::BadParams("secret shorter than 128 bits"));
    }
    Builder::new()
        .with_algorithm(params.algorithm.to_lib())
        .with_digits(params.digits)
        .with_step_duration(params.period)
        .with_skew(0)
        // One exact-size copy, owned by the `Totp` and wiped when it drops (totp-rs `zeroize`).
        .with_secret(Box::<[u8]>::from(secret))
        .with_issuer(issuer)
        .with_account_name(account)
        .build()
        .map_err(|_| TotpError::BadParams("rejected by the TOTP library"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SHA1_SEED: &[u8] = b"12345678901234567890";
    const SHA256_SEED: &[u8] = b"12345678901234567890123456789012";
    const SHA512_SEED: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    fn params(algorithm: TotpAlgorithm, digits: u8) -> TotpParams {
        TotpParams {
            algorithm,
            digits,
            period: 30,
            window: 1,
        }
    }

    /// The TOTP object built per verification used to keep an unwiped copy of the seed: every
    /// totp-rs type that holds it must wipe it when dropped (compile-time check).
    #[test]
    fn every_copy_of_the_seed_is_wiped_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<Totp>();
        wiped_on_drop::<Builder>();
        wiped_on_drop::<totp_rs::Secret>();
        wiped_on_drop::<Zeroizing<String>>();
    }

    /// RFC 6238 Appendix B, all rows and all three algorithms.
    #[test]
    fn rfc6238_appendix_b() {
        let rows: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (time, sha1, sha256, sha512) in rows {
            for (alg, seed, want) in [
                (TotpAlgorithm::Sha1, SHA1_SEED, sha1),
                (TotpAlgorithm::Sha256, SHA256_SEED, sha256),
                (TotpAlgorithm::Sha512, SHA512_SEED, sha512),
            ] {
                let p = params(alg, 8);
                assert_eq!(generate_totp(seed, &p, time).unwrap(), want, "{alg:?} at {time}");
                assert_eq!(
                    verify_totp(seed, want, &p, time, None).unwrap(),
                    time / 30,
                    "{alg:?} at {time}"
                );
            }
        }
    }

    /// RFC 4226 Appendix D: HOTP is TOTP with a one-second step and the counter as time.
    #[test]
    fn rfc4226_appendix_d() {
        let want = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489",
        ];
        let p = TotpParams {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period: 1,
            window: 0,
        };
        for (counter, code) in want.iter().enumerate() {
            assert_eq!(generate_totp(SHA1_SEED, &p, counter as u64).unwrap(), *code);
        }
    }

    #[test]
    fn window_accepts_neighbours_and_rejects_beyond() {
        let p = params(TotpAlgorithm::Sha1, 6);
        let now = 1_700_000_000u64;
        let t = now / 30;
        for delta in [-1i64, 0, 1] {
            let at = (t as i64 + delta) as u64 * 30;
            let code = generate_totp(SHA1_SEED, &p, at).unwrap();
            assert_eq!(
                verify_totp(SHA1_SEED, &code, &p, now, None),
                Ok(at / 30),
                "delta {delta}"
            );
        }
        for delta in [-2i64, 2] {
            let at = (t as i64 + delta) as u64 * 30;
            let code = generate_totp(SHA1_SEED, &p, at).unwrap();
            // A code of a distant step could collide with a window step by chance; these don't.
            assert_eq!(
                verify_totp(SHA1_SEED, &code, &p, now, None),
                Err(TotpError::Mismatch),
                "delta {delta}"
            );
        }
    }

    #[test]
    fn configurable_window() {
        let p = TotpParams {
            window: 2,
            ..params(TotpAlgorithm::Sha1, 6)
        };
        let now = 1_700_000_000u64;
        let code = generate_totp(SHA1_SEED, &p, now + 60).unwrap();
        assert!(verify_totp(SHA1_SEED, &code, &p, now, None).is_ok());
        let p0 = TotpParams { window: 0, ..p };
        assert!(verify_totp(SHA1_SEED, &code, &p0, now, None).is_err());
    }

    #[test]
    fn replay_of_accepted_or_older_step_is_rejected() {
        let p = params(TotpAlgorithm::Sha1, 6);
        let now = 1_700_000_000u64;
        let code = generate_totp(SHA1_SEED, &p, now).unwrap();
        let step = verify_totp(SHA1_SEED, &code, &p, now, None).unwrap();
        assert_eq!(
            verify_totp(SHA1_SEED, &code, &p, now, Some(step)),
            Err(TotpError::Replayed)
        );
        assert_eq!(
            verify_totp(SHA1_SEED, &code, &p, now + 20, Some(step + 1)),
            Err(TotpError::Replayed)
        );
        let next = generate_totp(SHA1_SEED, &p, now + 30).unwrap();
        assert_eq!(verify_totp(SHA1_SEED, &next, &p, now, Some(step)), Ok(step + 1));
    }

    #[test]
    fn a_refused_code_is_placed_in_time_without_being_accepted() {
        let p = params(TotpAlgorithm::Sha1, 6);
        let now = 1_700_000_000u64;
        // A phone two minutes behind the verifier: four steps earlier, outside the window.
        let behind = generate_totp(SHA1_SEED, &p, now - 120).unwrap();
        assert_eq!(verify_totp(SHA1_SEED, &behind, &p, now, None), Err(TotpError::Mismatch));
        assert_eq!(
            code_offset_steps(SHA1_SEED, &behind, &p, now, DRIFT_REACH),
            Ok(Some(-4))
        );
        let ahead = generate_totp(SHA1_SEED, &p, now + 300).unwrap();
        assert_eq!(code_offset_steps(SHA1_SEED, &ahead, &p, now, DRIFT_REACH), Ok(Some(10)));
        assert_eq!(
            code_offset_steps(SHA1_SEED, &ahead, &p, now, 9),
            Ok(None),
            "beyond reach"
        );
        // The reach is capped, so a caller cannot make it search hours.
        let far = generate_totp(SHA1_SEED, &p, now - 3600).unwrap();
        assert_eq!(code_offset_steps(SHA1_SEED, &far, &p, now, u8::MAX), Ok(None));
        let current = generate_totp(SHA1_SEED, &p, now).unwrap();
        assert_eq!(
            code_offset_steps(SHA1_SEED, &current, &p, now, DRIFT_REACH),
            Ok(Some(0))
        );
        for code in ["", "12345", "12a456"] {
            assert_eq!(
                code_offset_steps(SHA1_SEED, code, &p, now, DRIFT_REACH),
                Ok(None),
                "{code:?}"
            );
        }
        assert!(code_offset_steps(b"short", "123456", &p, now, DRIFT_REACH).is_err());
    }

    #[test]
    fn malformed_codes() {
        let p = params(TotpAlgorithm::Sha1, 6);
        for code in ["", "12345", "1234567", "12a456", "+12345", " 123456", "１２３４５６"] {
            assert_eq!(
                verify_totp(SHA1_SEED, code, &p, 59, None),
                Err(TotpError::Malformed),
                "{code:?}"
            );
        }
    }

    #[test]
    fn bad_params_and_short_secrets() {
        let p = params(TotpAlgorithm::Sha1, 6);
        assert!(matches!(
            verify_totp(b"short", "123456", &p, 0, None),
            Err(TotpError::BadParams(_))
        ));
        for bad in [
            TotpParams { digits: 5, ..p },
            TotpParams { digits: 9, ..p },
            TotpParams { period: 0, ..p },
            TotpParams { window: 11, ..p },
        ] {
            assert!(bad.validate().is_err());
        }
    }

    #[test]
    fn otpauth_uri_carries_secret_and_labels() {
        let uri = otpauth_uri(SHA1_SEED, &TotpParams::default(), "Rampart", "alice").unwrap();
        assert!(uri.starts_with("otpauth://totp/Rampart:alice?"), "{uri}");
        assert!(uri.contains(&format!("secret={}", secret_base32(SHA1_SEED))), "{uri}");
        assert!(uri.contains("issuer=Rampart"), "{uri}");
    }
}
