//! Connection profiles: what the service desk hands an employee so that `rampart-connect setup`
//! is the only configuration step — the gateways to try in order, the organisation CA, the
//! username and the resources to forward. A profile travels as a JSON file or as one pasteable
//! line (`rampart-profile:` + base64url of the JSON).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Prefix of the one-line form.
pub const LINE_PREFIX: &str = "rampart-profile:";
/// The profile format this build writes and reads.
pub const PROFILE_VERSION: u32 = 1;
/// Largest profile accepted (a CA bundle and a few names fit easily).
pub const MAX_PROFILE_BYTES: usize = 64 * 1024;

/// A connection profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Format version.
    pub version: u32,
    /// The organisation's name, shown to the person.
    #[serde(default)]
    pub organisation: String,
    /// Gateways, `HOST:PORT`, tried in this order.
    pub gateways: Vec<String>,
    /// The organisation CA certificate(s), PEM.
    pub ca_pem: String,
    /// The person's username, so `login` does not ask for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `LOCAL_ADDR=RESOURCE` forwards `rampart-connect forward` starts without arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwards: Vec<String>,
    /// The provisioner's address for self-service enrolment (`https://HOST:PORT`), which
    /// `rampart-connect enrol` uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrol_url: Option<String>,
}

/// Why a profile cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Not a profile at all.
    #[error("this is not a Rampart profile: {0}")]
    Unreadable(String),
    /// The start of a profile whose end is missing: a line or file copied only in part.
    #[error("{}", cut_short_words(*line, *chars))]
    CutShort {
        /// True for the one-line form, false for the JSON file.
        line: bool,
        /// How many characters arrived (whitespace a mail program added not counted).
        chars: usize,
    },
    /// A profile with problems, each named.
    #[error("the profile has problems: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl Profile {
    /// The one-line form.
    pub fn to_line(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{LINE_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Reads a profile from its JSON or one-line form (surrounding whitespace ignored) and
    /// checks it.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        let text = text.trim();
        if text.len() > MAX_PROFILE_BYTES {
            return Err(ProfileError::Unreadable(format!(
                "larger than {MAX_PROFILE_BYTES} bytes"
            )));
        }
        let json = match text.strip_prefix(LINE_PREFIX) {
            Some(encoded) => {
                // Mail and chat programs may wrap or pad a long line.
                let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
                let cut = || ProfileError::CutShort {
                    line: true,
                    chars: LINE_PREFIX.len() + compact.chars().count(),
                };
                match URL_SAFE_NO_PAD.decode(compact.trim_end_matches('=')) {
                    Ok(json) if ends_early(&json) => return Err(cut()),
                    Ok(json) => json,
                    // A line cut at any point but a multiple of four characters does not even
                    // decode: if what precedes the broken last group is the start of a
                    // profile, the line was cut, not damaged.
                    Err(_) if decodes_to_a_cut_profile(compact.trim_end_matches('=')) => return Err(cut()),
                    Err(_) => {
                        return Err(ProfileError::Unreadable(
                            "the line is damaged; copy the whole line from your enrolment letter or e-mail again"
                                .into(),
                        ));
                    }
                }
            }
            None if text.starts_with('{') => {
                if ends_early(text.as_bytes()) {
                    return Err(ProfileError::CutShort {
                        line: false,
                        chars: text.chars().count(),
                    });
                }
                text.as_bytes().to_vec()
            }
            None => {
                return Err(ProfileError::Unreadable(format!(
                    "expected a profile file's contents or a line starting with {LINE_PREFIX}"
                )));
            }
        };
        let profile: Self = serde_json::from_slice(&json).map_err(|e| ProfileError::Unreadable(format!("{e}")))?;
        let problems = profile.problems();
        if problems.is_empty() {
            Ok(profile)
        } else {
            Err(ProfileError::Invalid(problems))
        }
    }

    /// Every problem, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.version != PROFILE_VERSION {
            problems.push(format!(
                "version {} is not supported (this rampart-connect reads version {PROFILE_VERSION}); update rampart-connect",
                self.version
            ));
        }
        if self.gateways.is_empty() {
            problems.push("gateways: at least one gateway is needed".into());
        }
        for (i, gateway) in self.gateways.iter().enumerate() {
            if !is_host_port(gateway) {
                problems.push(format!("gateways[{i}]: {gateway:?} is not HOST:PORT"));
            }
        }
        if let Some(url) = &self.enrol_url
            && !(url.starts_with("https://") && url.len() > "https://".len())
        {
            problems.push(format!("enrol_url: {url:?} is not an https:// address"));
        }
        if !self.ca_pem.contains("-----BEGIN CERTIFICATE-----") {
            problems.push("ca_pem: no PEM certificate".into());
        }
        if let Some(user) = &self.user
            && (user.trim().is_empty() || user.chars().any(char::is_control))
        {
            problems.push("user: empty or holds control characters".into());
        }
        for (i, forward) in self.forwards.iter().enumerate() {
            let parsed = forward
                .split_once('=')
                .filter(|(_, resource)| !resource.is_empty())
                .and_then(|(local, _)| local.parse::<std::net::SocketAddr>().ok());
            match parsed {
                None => problems.push(format!("forwards[{i}]: {forward:?} is not LOCAL_ADDR=RESOURCE")),
                // Whoever reaches a forward uses the employee's session: this computer only.
                Some(local) if !local.ip().is_loopback() => problems.push(format!(
                    "forwards[{i}]: {forward:?} listens on {}, which other computers could reach; use 127.0.0.1",
                    local.ip()
                )),
                Some(_) => {}
            }
        }
        problems
    }
}

/// True when `json` is the beginning of a JSON document that stops before its end.
fn ends_early(json: &[u8]) -> bool {
    matches!(
        serde_json::from_slice::<serde::de::IgnoredAny>(json),
        Err(e) if e.classify() == serde_json::error::Category::Eof
    )
}

/// True when `encoded` fails to decode only in its last, incomplete group of four characters,
/// and the rest decodes to a JSON document that stops before its end.
fn decodes_to_a_cut_profile(encoded: &str) -> bool {
    let whole = encoded.len() - encoded.len() % 4;
    encoded
        .get(..whole)
        .and_then(|head| URL_SAFE_NO_PAD.decode(head).ok())
        .is_some_and(|json| !json.is_empty() && ends_early(&json))
}

fn cut_short_words(line: bool, chars: usize) -> String {
    if line {
        format!(
            "This profile line is cut short ({chars} characters): copy the whole line from your enrolment letter \
             or e-mail and try again."
        )
    } else {
        format!(
            "This profile is cut short ({chars} characters, it stops in the middle): copy the whole file or text \
             from the service desk again and try again."
        )
    }
}

fn is_host_port(text: &str) -> bool {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once("]:") {
            Some(parts) => parts,
            None => return false,
        },
        None => match text.rsplit_once(':') {
            Some(parts) => parts,
            None => return false,
        },
    };
    !host.is_empty()
        && !host.chars().any(|c| c.is_whitespace() || c.is_control())
        && port.parse::<u16>().is_ok_and(|p| p != 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn profile() -> Profile {
        Profile {
            version: PROFILE_VERSION,
            organisation: "Bank".into(),
            gateways: vec!["gw1.bank.example:4433".into(), "[2001:db8::1]:4433".into()],
            ca_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            user: Some("alice".into()),
            forwards: vec!["127.0.0.1:3389=desktop".into()],
            enrol_url: Some("https://prov.bank.example:8443".into()),
        }
    }

    #[test]
    fn both_forms_round_trip() {
        let p = profile();
        assert_eq!(Profile::parse(&p.to_line()).unwrap(), p);
        assert_eq!(Profile::parse(&serde_json::to_string_pretty(&p).unwrap()).unwrap(), p);
        // Wrapped by a mail program, with trailing padding.
        let line = p.to_line();
        let wrapped = format!("  {}\n {}==\n", &line[..40], &line[40..]);
        assert_eq!(Profile::parse(&wrapped).unwrap(), p);
    }

    #[test]
    fn every_problem_is_named() {
        let mut p = profile();
        p.version = 9;
        p.gateways = vec!["nohost".into(), "gw:0".into()];
        p.ca_pem = "x".into();
        p.user = Some(" ".into());
        p.forwards = vec!["3389=desktop".into(), "0.0.0.0:3389=desktop".into()];
        let Err(ProfileError::Invalid(problems)) = Profile::parse(&p.to_line()) else {
            panic!("accepted")
        };
        assert_eq!(problems.len(), 7, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("other computers could reach")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_line_cut_anywhere_is_called_cut_short_with_its_length() {
        let line = profile().to_line();
        let prefix = LINE_PREFIX.len();
        // Every cut past the first characters of the encoded JSON, whatever the remainder mod 4.
        for end in prefix + 8..line.len() {
            let cut = &line[..end];
            let err = Profile::parse(cut).unwrap_err();
            assert_eq!(err, ProfileError::CutShort { line: true, chars: end }, "cut at {end}");
            let said = err.to_string();
            assert!(
                said.starts_with(&format!("This profile line is cut short ({end} characters)")),
                "{said}"
            );
            assert!(said.contains("copy the whole line"), "{said}");
            assert!(!said.contains("EOF") && !said.contains("column"), "{said}");
        }
        // Wrapped by a mail program and then cut: only the line's characters are counted.
        let wrapped = format!("{}\n  {}", &line[..40], &line[40..100]);
        assert_eq!(
            Profile::parse(&wrapped).unwrap_err(),
            ProfileError::CutShort { line: true, chars: 100 }
        );
    }

    #[test]
    fn a_cut_json_file_is_called_cut_short_and_a_damaged_line_damaged() {
        let json = serde_json::to_string_pretty(&profile()).unwrap();
        let err = Profile::parse(&json[..json.len() / 2]).unwrap_err();
        assert!(matches!(err, ProfileError::CutShort { line: false, .. }), "{err:?}");
        assert!(err.to_string().contains("cut short"), "{err}");
        // A character no line holds, in the middle: damaged, not cut.
        let mut line = profile().to_line();
        line.replace_range(40..41, "*");
        let err = Profile::parse(&line).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[test]
    fn junk_is_not_a_profile() {
        for junk in [
            "",
            "hello",
            "rampart-profile:!!!",
            "{\"version\":1}",
            "{\"version\":1,\"gateways\":[],\"ca_pem\":\"\",\"extra\":1}",
        ] {
            assert!(Profile::parse(junk).is_err(), "{junk}");
        }
        assert!(Profile::parse(&"x".repeat(MAX_PROFILE_BYTES + 1)).is_err());
    }
}
