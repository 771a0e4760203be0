//! Provisioner configuration: a TOML file (`provisioner.toml`) with `deny_unknown_fields`,
//! sane defaults, relative paths resolved against the file, and every problem reported at once.

pub use crate::console_config::ConsoleConfig;
use rampart_directory::DirectoryConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Name of the master key file inside the state directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The provisioner's config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionerConfig {
    /// TCP address of the HTTPS API, e.g. `127.0.0.1:8443`.
    pub listen: SocketAddr,
    /// Directory holding the store (`rampart.db`, shared with gateways on this host) and the
    /// master key.
    pub state_dir: PathBuf,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// Where people are looked up (default: local users in the store).
    #[serde(default)]
    pub directory: DirectoryConfig,
    /// Tunables.
    #[serde(default)]
    pub settings: ProvisionerSettings,
    /// The audit trail (default: on, in `STATE_DIR/audit`, stream `provisioner`).
    #[serde(default)]
    pub audit: rampart_audit::AuditConfig,
    /// Where people, tokens and VMs live (default: SQLite in `state_dir`; a PostgreSQL URL to
    /// share them with other provisioners and gateways).
    #[serde(default)]
    pub store: rampart_store::StoreConfig,
    /// Which token resets need a second operator's approval (default: none).
    #[serde(default)]
    pub dual_control: DualControl,
    /// The web console and its sign-in (default: served, nobody an operator there).
    #[serde(default)]
    pub console: ConsoleConfig,
}

/// The `[dual_control]` table: token resets that need a second operator's approval.
///
/// Off by default: an installation with a single service-desk operator could otherwise not
/// help anyone who lost a phone, and an upgrade must not stop a desk's daily work. Turn it on
/// wherever two operators who may manage tokens are on duty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DualControl {
    /// Whether a temporary code, a replacement token (`token lost --replacement`, `token issue
    /// --reissue` of a person who has a token) and an unlock wait for a second operator's
    /// approval (default false).
    pub token_resets: bool,
    /// How long a request may wait for approval, and then how long its requester has to
    /// collect an approved result, in seconds (default 900: 15 minutes).
    pub approval_ttl_secs: u64,
}

impl Default for DualControl {
    fn default() -> Self {
        Self {
            token_resets: false,
            approval_ttl_secs: 15 * 60,
        }
    }
}

impl DualControl {
    /// Every problem with the values, in plain words.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(10..=7 * 24 * 3600).contains(&self.approval_ttl_secs) {
            problems.push("dual_control.approval_ttl_secs must be between 10 and 604800".into());
        }
        problems
    }
}

/// Token and enrolment settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisionerSettings {
    /// Issuer shown in authenticator apps (default `Rampart`).
    pub issuer: String,
    /// Life of a temporary one-time code in seconds (default 15 minutes).
    pub temporary_code_lifetime_secs: u64,
    /// Wrong codes that lock a token; keep equal to the gateways' `max_token_failures`
    /// (default 10).
    pub max_token_failures: u32,
    /// How far from now, in time steps each way, a resync searches for two consecutive codes
    /// (default 60: half an hour with 30-second steps).
    pub resync_search_steps: u32,
    /// Largest difference, in milliseconds, between this provisioner's clock and the database's
    /// (default 3000). Beyond it the operations whose result depends on the time (token issue
    /// and enrolment, resync, temporary codes) are refused with 503 until the clocks agree, and
    /// the log (`rampart::clock`) and `/readyz` say so.
    pub max_clock_skew_ms: u64,
    /// How often the clock is compared with the database's, in seconds (default 30).
    pub clock_check_secs: u64,
    /// Seconds added to the system clock (default 0). For drills and tests only: the
    /// provisioner then behaves as on a host whose clock is off, and logs a warning at start.
    /// `rampart-provisioner` builds its one clock from it ([`Clock::shifted`]); code that embeds
    /// a provisioner gives the clock to [`crate::Provisioner::new`].
    ///
    /// [`Clock::shifted`]: rampart_core::clock::Clock::shifted
    pub clock_offset_secs: i64,
    /// Days a registration code stays valid unless the desk says otherwise (default 14).
    pub registration_code_days: u32,
    /// Minutes a started self-service enrolment waits for its first code (default 15).
    pub enrolment_minutes: u32,
    /// Milliseconds from the start of a refused enrolment to its answer, whatever was wrong
    /// (unknown person, password or registration code), so timing tells nothing (default 1000).
    pub enrolment_failure_delay_ms: u64,
}

impl Default for ProvisionerSettings {
    fn default() -> Self {
        Self {
            issuer: "Rampart".into(),
            temporary_code_lifetime_secs: 15 * 60,
            max_token_failures: 10,
            resync_search_steps: 60,
            max_clock_skew_ms: 3000,
            clock_check_secs: 30,
            clock_offset_secs: 0,
            registration_code_days: 14,
            enrolment_minutes: 15,
            enrolment_failure_delay_ms: 1000,
        }
    }
}

impl ProvisionerSettings {
    /// Every problem with the values, in plain words.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.issuer.trim().is_empty() || self.issuer.contains(':') {
            problems.push("settings.issuer must be non-empty and must not contain ':'".into());
        }
        if !(60..=7 * 24 * 3600).contains(&self.temporary_code_lifetime_secs) {
            problems.push("settings.temporary_code_lifetime_secs must be between 60 and 604800".into());
        }
        if self.max_token_failures == 0 || self.max_token_failures > 100 {
            problems.push("settings.max_token_failures must be between 1 and 100".into());
        }
        if self.resync_search_steps == 0 || self.resync_search_steps > 2880 {
            problems.push("settings.resync_search_steps must be between 1 and 2880".into());
        }
        if !(100..=600_000).contains(&self.max_clock_skew_ms) {
            problems.push("settings.max_clock_skew_ms must be between 100 and 600000".into());
        }
        if !(1..=3600).contains(&self.clock_check_secs) {
            problems.push("settings.clock_check_secs must be between 1 and 3600".into());
        }
        if self.clock_offset_secs.abs() > 86_400 {
            problems.push("settings.clock_offset_secs must be within a day either way".into());
        }
        if !(1..=90).contains(&self.registration_code_days) {
            problems.push("settings.registration_code_days must be between 1 and 90".into());
        }
        if !(1..=1440).contains(&self.enrolment_minutes) {
            problems.push("settings.enrolment_minutes must be between 1 and 1440".into());
        }
        if self.enrolment_failure_delay_ms > 10_000 {
            problems.push("settings.enrolment_failure_delay_ms must be at most 10000".into());
        }
        problems
    }
}

/// Why the config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The file is not valid TOML for this schema, or values are out of range.
    #[error("{path} is not valid:\n  - {}", problems.join("\n  - "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<String>,
    },
}

impl ProvisionerConfig {
    /// Reads and checks `path`; relative paths inside are relative to the file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(&Self::read(path)?, path)
    }

    /// Reads the config file at `path` and returns it with every problem of its values (empty
    /// when it is valid), so a check can add the problems of the files it names. Fails only
    /// when the file cannot be read or is not this format at all.
    pub fn load_with_problems(path: &Path) -> Result<(Self, Vec<String>), ConfigError> {
        Self::parse_with_problems(&Self::read(path)?, path)
    }

    fn read(path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_owned(),
            cause,
        })
    }

    /// Parses and checks the text of the config file at `path` (named in errors; relative
    /// paths inside are relative to its folder). Reads no file.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        match Self::parse_with_problems(text, path)? {
            (config, problems) if problems.is_empty() => Ok(config),
            (_, problems) => Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            }),
        }
    }

    /// [`Self::parse`], returning the config with the problems of its values.
    fn parse_with_problems(text: &str, path: &Path) -> Result<(Self, Vec<String>), ConfigError> {
        let mut config: Self = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            problems: vec![e.message().to_owned()],
        })?;
        // Absolute, so every message names the file where it was looked for.
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let base = absolute.parent().unwrap_or(Path::new("."));
        for p in [&mut config.state_dir, &mut config.cert, &mut config.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        config.audit.resolve_paths(base);
        config.store.resolve_paths(base);
        config.console.resolve_paths(base);
        let mut problems = config.settings.problems();
        problems.extend(config.dual_control.problems());
        problems.extend(config.console.problems());
        problems.extend(config.store.problems());
        problems.extend(config.directory.prepare(base));
        problems.extend(config.audit.problems());
        Ok((config, problems))
    }

    /// The master key file.
    pub fn master_key_path(&self) -> PathBuf {
        self.state_dir.join(MASTER_KEY_FILE)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn defaults_are_valid_and_paths_resolve() {
        assert!(ProvisionerSettings::default().problems().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provisioner.toml");
        std::fs::write(
            &path,
            "listen='127.0.0.1:0'\nstate_dir='s'\ncert='c.pem'\nkey='k.pem'\n",
        )
        .unwrap();
        let config = ProvisionerConfig::load(&path).unwrap();
        assert_eq!(config.master_key_path(), dir.path().join("s").join(MASTER_KEY_FILE));
    }

    #[test]
    fn the_clock_settings_have_bounds() {
        let defaults = ProvisionerSettings::default();
        assert_eq!(
            (
                defaults.max_clock_skew_ms,
                defaults.clock_check_secs,
                defaults.clock_offset_secs
            ),
            (3000, 30, 0)
        );
        for (skew, every, offset, problems) in [
            (100, 1, -86_400, 0),
            (600_000, 3600, 86_400, 0),
            (99, 0, -86_401, 3),
            (600_001, 3601, 86_401, 3),
        ] {
            let settings = ProvisionerSettings {
                max_clock_skew_ms: skew,
                clock_check_secs: every,
                clock_offset_secs: offset,
                ..ProvisionerSettings::default()
            };
            assert_eq!(settings.problems().len(), problems, "{settings:?}");
        }
    }

    #[test]
    fn dual_control_is_off_by_default_and_its_ttl_has_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provisioner.toml");
        let base = "listen='127.0.0.1:0'\nstate_dir='s'\ncert='c'\nkey='k'\n";
        std::fs::write(&path, base).unwrap();
        assert_eq!(
            ProvisionerConfig::load(&path).unwrap().dual_control,
            DualControl::default()
        );
        assert!(!DualControl::default().token_resets);
        std::fs::write(
            &path,
            format!("{base}[dual_control]\ntoken_resets = true\napproval_ttl_secs = 600\n"),
        )
        .unwrap();
        let on = ProvisionerConfig::load(&path).unwrap().dual_control;
        assert_eq!((on.token_resets, on.approval_ttl_secs), (true, 600));
        for bad in ["approval_ttl_secs = 9", "approval_ttl_secs = 604801", "approvers = 2"] {
            std::fs::write(&path, format!("{base}[dual_control]\n{bad}\n")).unwrap();
            assert!(ProvisionerConfig::load(&path).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provisioner.toml");
        std::fs::write(
            &path,
            "listen='127.0.0.1:0'\nstate_dir='s'\ncert='c'\nkey='k'\n[settings]\nissuer=''\nmax_token_failures=0\n",
        )
        .unwrap();
        let Err(ConfigError::Invalid { problems, .. }) = ProvisionerConfig::load(&path) else {
            panic!("accepted")
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        std::fs::write(
            &path,
            "listen='127.0.0.1:0'\nstate_dir='s'\ncert='c'\nkey='k'\n[settings]\nmax_clock_skew_ms=99\n\
             clock_check_secs=0\nclock_offset_secs=86401\n",
        )
        .unwrap();
        let Err(ConfigError::Invalid { problems, .. }) = ProvisionerConfig::load(&path) else {
            panic!("accepted")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("max_clock_skew_ms")), "{problems:?}");
        std::fs::write(
            &path,
            "listen='127.0.0.1:0'\nstate_dir='s'\ncert='c'\nkey='k'\nport=1\n",
        )
        .unwrap();
        assert!(ProvisionerConfig::load(&path).is_err());
    }
}
