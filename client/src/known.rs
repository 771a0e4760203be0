//! Which gateways a command may use and which organisation CA it trusts: the command line's
//! `--gateway` first, then the profile's gateways (else the saved session's) in the person's
//! order; the CA from `--ca`, else `RAMPART_CONNECT_CA`, else the profile, else the saved session.
//! The service desk's `RAMPART_CA` is never used.

use crate::{ClientError, Home, spread};
use std::path::PathBuf;

/// The client's own variable naming a CA file that overrides the profile's.
pub const CA_VARIABLE: &str = "RAMPART_CONNECT_CA";
/// The service desk CLI's CA variable: a desk agent's shell may export it, and the client must
/// not let it replace the profile's CA unnoticed.
pub const IGNORED_CA_VARIABLE: &str = "RAMPART_CA";

/// What the command line names ahead of the profile: `--gateway` and `--ca`.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// A gateway, `HOST:PORT`, tried first.
    pub gateway: Option<String>,
    /// An organisation CA file (PEM) trusted instead of the profile's.
    pub ca: Option<PathBuf>,
}

/// Where the organisation CA a command trusts came from, first match wins: `--ca`, then
/// `RAMPART_CONNECT_CA`, then the profile, then the saved session. `RAMPART_CA` (the service
/// desk's CLI's variable) is never one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaSource {
    /// `--ca FILE` on the command line.
    CommandLine(PathBuf),
    /// `RAMPART_CONNECT_CA=FILE` in the environment.
    Environment(PathBuf),
    /// The profile imported by `setup`, saved at this path.
    Profile(PathBuf),
    /// The saved session (no profile set up): the CA the login used.
    SavedSession,
}

impl CaSource {
    /// Where the CA came from, in words: "your profile (…/profile.json)", "--ca /tmp/ca.pem".
    pub fn describe(&self) -> String {
        match self {
            Self::CommandLine(path) => format!("--ca {}", path.display()),
            Self::Environment(path) => format!("RAMPART_CONNECT_CA={}", path.display()),
            Self::Profile(path) => format!("your profile ({})", path.display()),
            Self::SavedSession => "the saved session (the CA your login used)".to_owned(),
        }
    }
}

/// The gateways a command may use and the organisation CA.
#[derive(Debug, Clone)]
pub struct Known {
    /// Named on the command line: tried first.
    explicit: Option<String>,
    /// The profile's (else the saved session's), tried in the person's order.
    listed: Vec<String>,
    /// The organisation CA certificate(s), PEM.
    pub ca_pem: String,
    /// Where `ca_pem` came from.
    pub ca_source: CaSource,
}

impl Known {
    /// Gateways to try and the CA: the command line's gateway first, then the profile's, else
    /// the saved session's; the CA from the command line, else `RAMPART_CONNECT_CA`, else the
    /// profile, else the saved session.
    pub fn resolve(overrides: &Overrides, home: &Home) -> Result<Self, ClientError> {
        let profile = home.load_profile()?;
        let saved = home.load_session().ok().flatten();
        let listed = match (&profile, &saved) {
            (Some(p), _) => p.gateways.clone(),
            (None, Some(s)) if overrides.gateway.is_none() => {
                std::iter::once(s.gateway.clone()).chain(s.gateways.clone()).collect()
            }
            _ => Vec::new(),
        };
        if overrides.gateway.is_none() && listed.is_empty() {
            return Err(ClientError::Local(
                "no gateway known: run `rampart-connect setup` with the profile from the service desk (or pass --gateway and --ca)".into(),
            ));
        }
        let chosen = match &overrides.ca {
            Some(path) => Some((path.clone(), CaSource::CommandLine(path.clone()))),
            None => std::env::var_os(CA_VARIABLE).filter(|v| !v.is_empty()).map(|v| {
                let path = PathBuf::from(v);
                (path.clone(), CaSource::Environment(path))
            }),
        };
        let (ca_pem, ca_source) = match (chosen, profile, saved) {
            (Some((path, source)), _, _) => {
                let pem = std::fs::read_to_string(&path).map_err(|e| {
                    ClientError::Local(format!("cannot read the CA file given by {}: {e}", source.describe()))
                })?;
                (pem, source)
            }
            (_, Some(p), _) => (p.ca_pem, CaSource::Profile(home.profile_path())),
            (_, None, Some(s)) => (s.ca_pem, CaSource::SavedSession),
            (_, None, None) => {
                return Err(ClientError::Local(
                    "no organisation CA known: run `rampart-connect setup` with the profile from the service desk (or pass --ca)".into(),
                ));
            }
        };
        Ok(Self {
            explicit: overrides.gateway.clone(),
            listed,
            ca_pem,
            ca_source,
        })
    }

    /// Every gateway in the order `user` tries them: the one on the command line, then the
    /// others by the person's stable choice ([`spread`]), or the profile's order if no
    /// username is known.
    pub fn order(&self, user: Option<&str>) -> Vec<String> {
        match user {
            Some(user) => spread::starting_with(self.explicit.as_deref(), user, &self.listed),
            None => self.all(),
        }
    }

    /// Every gateway, the command line's first, each once.
    pub fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = self.explicit.iter().cloned().collect();
        for gateway in &self.listed {
            if !all.contains(gateway) {
                all.push(gateway.clone());
            }
        }
        all
    }
}

/// The CA file `--ca`, else `RAMPART_CONNECT_CA`, names, read; `None` when neither is given.
pub fn ca_override(overrides: &Overrides) -> Result<Option<String>, ClientError> {
    let path = match &overrides.ca {
        Some(path) => Some(path.clone()),
        None => std::env::var_os(CA_VARIABLE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    };
    path.map(|path| {
        std::fs::read_to_string(&path)
            .map_err(|e| ClientError::Local(format!("cannot read the CA file {}: {e}", path.display())))
    })
    .transpose()
}
