//! Gateway configuration: a TOML file with `deny_unknown_fields`, sane defaults, and a check
//! that reports every problem at once.

pub use rampart_audit::AuditConfig;
use rampart_core::totp::TotpParams;
pub use rampart_directory::DirectoryConfig;
pub use rampart_store::StoreConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The gateway's config file (`gateway.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// UDP address for QUIC, e.g. `0.0.0.0:4433`.
    pub listen: SocketAddr,
    /// TCP address of the admin HTTPS listener (sessions, policy, `/metrics`, health), e.g.
    /// `127.0.0.1:9443`. None: no admin listener.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// Directory holding the store (`rampart.db`) and the master key.
    pub state_dir: PathBuf,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// Policy file (`policy.toml`).
    pub policy: PathBuf,
    /// Where flow records are appended (JSON lines). Default: `STATE_DIR/flows.jsonl`.
    #[serde(default)]
    pub flow_log: Option<PathBuf>,
    /// Where passwords and groups are checked (default: the local directory in the store).
    #[serde(default)]
    pub directory: DirectoryConfig,
    /// The audit trail (default: on, in `STATE_DIR/audit`).
    #[serde(default)]
    pub audit: AuditConfig,
    /// Where sessions, tokens and replay state live (default: SQLite in `state_dir`; a
    /// PostgreSQL URL to share them with other gateways and provisioners).
    #[serde(default)]
    pub store: StoreConfig,
    /// Tunables.
    #[serde(default)]
    pub settings: GatewaySettings,
}

/// Limits and timers, with defaults suitable for a few thousand employees.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// Session lifetime in seconds (default 12 h).
    pub session_lifetime_secs: u64,
    /// Seconds an unauthenticated connection may live (default 15).
    pub login_deadline_secs: u64,
    /// QUIC idle timeout in seconds (default 60).
    pub idle_timeout_secs: u64,
    /// Seconds to wait for a target to accept a TCP connection (default 10).
    pub connect_timeout_secs: u64,
    /// Concurrent forwarded connections per QUIC connection (default 1024).
    pub max_streams_per_connection: u32,
    /// Failed logins on one QUIC connection before it is closed (default 3).
    pub max_login_attempts_per_connection: u32,
    /// Milliseconds from the start of a rejected login's check to its answer, whatever was
    /// wrong (unknown user, password or code), so timing tells a guesser nothing (default 1000).
    pub failed_login_delay_ms: u64,
    /// Wrong codes before a token locks (default 10; NIST SP 800-63B allows at most 100).
    pub max_token_failures: u32,
    /// TOTP steps accepted on each side of the current one (default 1).
    pub totp_window: u8,
    /// Seconds a session may go without a login, stream or byte before it ends (default 1 h).
    pub session_idle_secs: u64,
    /// Live sessions one person may hold; a new login ends the oldest beyond it (default 3).
    pub max_sessions_per_user: u32,
    /// How often sessions ended elsewhere (kill, revoked token, another gateway), expired and
    /// idle sessions are closed here, in seconds: the bound on how long a revoked session's
    /// flows live on (default 5).
    pub session_check_secs: u64,
    /// How often the directory is asked again about each connected person (disabled accounts,
    /// group changes), in seconds (default 300).
    pub directory_recheck_secs: u64,
    /// Logins checked at the same time (default 32).
    pub max_logins_in_progress: u32,
    /// Logins that may wait for a slot at most (default 1024); fewer when the slots could not serve
    /// them within `login_queue_wait_secs`. Beyond it clients are told to retry.
    pub login_queue: u32,
    /// Seconds a queued login waits before being told to retry (default 5).
    pub login_queue_wait_secs: u64,
    /// Handshakes in progress above which new clients must prove their address with a QUIC
    /// Retry first (default 64; 0: always).
    pub retry_threshold: u32,
    /// How often the policy file is checked for changes, in seconds (default 2).
    pub policy_check_secs: u64,
    /// Seconds added to the system clock (default 0). For drills and tests only: it shows what
    /// people see when clocks disagree (`rampart-connect doctor`). Beyond `max_clock_skew_ms`
    /// the clock check refuses logins, so a drill of what clients see raises that bound too.
    /// `rampart-gateway` builds its one clock from it ([`Clock::shifted`]); code that embeds a
    /// gateway gives the clock in [`crate::GatewayParts`].
    ///
    /// [`Clock::shifted`]: rampart_core::clock::Clock::shifted
    pub clock_offset_secs: i64,
    /// Largest difference, in milliseconds, between this gateway's clock and the database's
    /// that still allows logins (default 3000). Beyond it the gateway refuses every login with
    /// "try later" before any code is checked, and says so in its log (`rampart::clock`),
    /// `/readyz` and `/metrics`: a clock that is off would accept codes from the future.
    pub max_clock_skew_ms: u64,
    /// How often the clock is compared with the database's, in seconds (default 30); also
    /// once at start, before the first login.
    pub clock_check_secs: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            session_lifetime_secs: 12 * 3600,
            login_deadline_secs: 15,
            idle_timeout_secs: 60,
            connect_timeout_secs: 10,
            max_streams_per_connection: 1024,
            max_login_attempts_per_connection: 3,
            failed_login_delay_ms: 1000,
            max_token_failures: 10,
            totp_window: TotpParams::default().window,
            session_idle_secs: 3600,
            max_sessions_per_user: 3,
            session_check_secs: 5,
            directory_recheck_secs: 300,
            max_logins_in_progress: 32,
            login_queue: 1024,
            login_queue_wait_secs: 5,
            retry_threshold: 64,
            policy_check_secs: 2,
            clock_offset_secs: 0,
            max_clock_skew_ms: 3000,
            clock_check_secs: 30,
        }
    }
}

impl GatewaySettings {
    /// Every problem with the values, at once.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut need = |ok: bool, what: &str| {
            if !ok {
                problems.push(what.to_owned());
            }
        };
        need(
            self.session_lifetime_secs >= 60,
            "settings.session_lifetime_secs must be at least 60",
        );
        need(
            (1..=300).contains(&self.login_deadline_secs),
            "settings.login_deadline_secs must be 1 to 300",
        );
        need(
            (5..=3600).contains(&self.idle_timeout_secs),
            "settings.idle_timeout_secs must be 5 to 3600",
        );
        need(
            (1..=120).contains(&self.connect_timeout_secs),
            "settings.connect_timeout_secs must be 1 to 120",
        );
        need(
            (1..=100_000).contains(&self.max_streams_per_connection),
            "settings.max_streams_per_connection must be 1 to 100000",
        );
        need(
            self.max_login_attempts_per_connection >= 1,
            "settings.max_login_attempts_per_connection must be at least 1",
        );
        need(
            self.failed_login_delay_ms <= 10_000,
            "settings.failed_login_delay_ms must be at most 10000",
        );
        need(
            (1..=100).contains(&self.max_token_failures),
            "settings.max_token_failures must be 1 to 100 (NIST SP 800-63B)",
        );
        need(
            self.totp_window <= rampart_core::totp::MAX_WINDOW,
            "settings.totp_window must be at most 10",
        );
        need(
            (10..=7 * 86_400).contains(&self.session_idle_secs),
            "settings.session_idle_secs must be 10 to 604800",
        );
        need(
            (1..=100).contains(&self.max_sessions_per_user),
            "settings.max_sessions_per_user must be 1 to 100",
        );
        need(
            (1..=300).contains(&self.session_check_secs),
            "settings.session_check_secs must be 1 to 300",
        );
        need(
            (1..=86_400).contains(&self.directory_recheck_secs),
            "settings.directory_recheck_secs must be 1 to 86400",
        );
        need(
            (1..=10_000).contains(&self.max_logins_in_progress),
            "settings.max_logins_in_progress must be 1 to 10000",
        );
        need(
            self.login_queue <= 100_000,
            "settings.login_queue must be at most 100000",
        );
        need(
            (1..=60).contains(&self.login_queue_wait_secs),
            "settings.login_queue_wait_secs must be 1 to 60",
        );
        need(
            (1..=3600).contains(&self.policy_check_secs),
            "settings.policy_check_secs must be 1 to 3600",
        );
        need(
            self.clock_offset_secs.abs() <= 86_400,
            "settings.clock_offset_secs must be within a day either way",
        );
        need(
            (100..=600_000).contains(&self.max_clock_skew_ms),
            "settings.max_clock_skew_ms must be 100 to 600000",
        );
        need(
            (1..=3600).contains(&self.clock_check_secs),
            "settings.clock_check_secs must be 1 to 3600",
        );
        problems
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    pub(crate) fn failed_login_delay(&self) -> Duration {
        Duration::from_millis(self.failed_login_delay_ms)
    }

    pub(crate) fn login_deadline(&self) -> Duration {
        Duration::from_secs(self.login_deadline_secs)
    }

    pub(crate) fn session_check(&self) -> Duration {
        Duration::from_secs(self.session_check_secs)
    }

    pub(crate) fn policy_check(&self) -> Duration {
        Duration::from_secs(self.policy_check_secs)
    }

    pub(crate) fn clock_check(&self) -> Duration {
        Duration::from_secs(self.clock_check_secs)
    }
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path}: {}", .problems.join("; "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<String>,
    },
}

impl GatewayConfig {
    /// Reads and validates a config file; relative paths in it are taken from its folder.
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
            path: path.into(),
            cause,
        })
    }

    /// Parses and validates the text of the config file at `path` (named in errors; relative
    /// paths in the text are taken from its folder). Reads no file.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        match Self::parse_with_problems(text, path)? {
            (config, problems) if problems.is_empty() => Ok(config),
            (_, problems) => Err(ConfigError::Invalid {
                path: path.into(),
                problems,
            }),
        }
    }

    /// [`Self::parse`], returning the config with the problems of its values.
    fn parse_with_problems(text: &str, path: &Path) -> Result<(Self, Vec<String>), ConfigError> {
        let mut config: Self = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.into(),
            problems: vec![e.to_string()],
        })?;
        // Absolute, so every message names the file where it was looked for.
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let base = absolute.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.state_dir,
            &mut config.cert,
            &mut config.key,
            &mut config.policy,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = config.flow_log.as_mut().filter(|p| p.is_relative()) {
            *p = base.join(&*p);
        }
        config.audit.resolve_paths(base);
        config.store.resolve_paths(base);
        let mut problems = config.settings.problems();
        problems.extend(config.store.problems());
        problems.extend(config.directory.prepare(base));
        problems.extend(config.audit.problems());
        Ok((config, problems))
    }

    /// The flow log path, defaulting into the state directory.
    pub fn flow_log_path(&self) -> PathBuf {
        self.flow_log
            .clone()
            .unwrap_or_else(|| self.state_dir.join("flows.jsonl"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(GatewaySettings::default().problems().is_empty());
    }

    #[test]
    fn every_problem_is_reported() {
        let s = GatewaySettings {
            max_token_failures: 0,
            totp_window: 50,
            login_deadline_secs: 0,
            max_clock_skew_ms: 99,
            clock_check_secs: 0,
            ..Default::default()
        };
        assert_eq!(s.problems().len(), 5);
        let bounds = GatewaySettings {
            max_clock_skew_ms: 600_000,
            clock_check_secs: 3600,
            ..Default::default()
        };
        assert!(bounds.problems().is_empty());
        let beyond = GatewaySettings {
            max_clock_skew_ms: 600_001,
            clock_check_secs: 3601,
            ..Default::default()
        };
        assert_eq!(beyond.problems().len(), 2);
    }

    #[test]
    fn unknown_fields_are_rejected_and_paths_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(
            &path,
            "listen='127.0.0.1:0'\nstate_dir='s'\ncert='c.pem'\nkey='k.pem'\npolicy='p.toml'\n",
        )
        .unwrap();
        let config = GatewayConfig::load(&path).unwrap();
        assert_eq!(config.cert, dir.path().join("c.pem"));
        assert_eq!(config.flow_log_path(), dir.path().join("s").join("flows.jsonl"));
        std::fs::write(
            &path,
            "listen='127.0.0.1:0'\nstate_dir='s'\ncert='c'\nkey='k'\npolicy='p'\nlisten_port=1\n",
        )
        .unwrap();
        assert!(matches!(GatewayConfig::load(&path), Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn ldap_directory_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        let base = "listen='127.0.0.1:0'\nstate_dir='s'\ncert='c'\nkey='k'\npolicy='p'\n";
        let ldap = "[directory]\nkind='ldap'\nurls=['ldaps://dc1']\nca_file='ca.pem'\nbind_dn='cn=svc'\n\
                    bind_password_file='pw'\nuser_base='dc=x'\ngroup_base='dc=x'\n";
        std::fs::write(&path, format!("{base}{ldap}")).unwrap();
        let config = GatewayConfig::load(&path).unwrap();
        let DirectoryConfig::Ldap(ldap_config) = &config.directory else {
            panic!("not ldap")
        };
        assert_eq!(
            ldap_config.ca_file.as_deref(),
            Some(dir.path().join("ca.pem").as_path())
        );
        std::fs::write(&path, format!("{base}{ldap}bind_password='oops'\n")).unwrap();
        assert!(GatewayConfig::load(&path).is_err(), "unknown key in [directory]");
        std::fs::write(
            &path,
            format!("{base}[directory]\nkind='ldap'\nurls=[]\nbind_dn=''\nuser_base='x'\n"),
        )
        .unwrap();
        let Err(ConfigError::Invalid { problems, .. }) = GatewayConfig::load(&path) else {
            panic!("accepted")
        };
        assert!(problems.len() >= 3, "{problems:?}");
        assert!(matches!(DirectoryConfig::default(), DirectoryConfig::Local));
    }

    #[test]
    fn audit_section_paths_and_problems() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        let base = "listen='127.0.0.1:0'\nstate_dir='s'\ncert='c'\nkey='k'\npolicy='p'\n";
        std::fs::write(&path, base).unwrap();
        let config = GatewayConfig::load(&path).unwrap();
        let settings = config.audit.settings(&config.state_dir, "gateway").unwrap();
        assert_eq!(settings.dir, dir.path().join("s").join("audit"));
        std::fs::write(&path, format!("{base}[audit]\ndir='a'\nsigning_key='keys/audit.key'\n")).unwrap();
        let config = GatewayConfig::load(&path).unwrap();
        let settings = config.audit.settings(&config.state_dir, "gateway").unwrap();
        assert_eq!(settings.dir, dir.path().join("a"));
        assert_eq!(settings.signing_key, dir.path().join("keys/audit.key"));
        std::fs::write(&path, format!("{base}[audit]\nstream='gw-1'\ncheckpoint_secs=0\n")).unwrap();
        let Err(ConfigError::Invalid { problems, .. }) = GatewayConfig::load(&path) else {
            panic!("accepted")
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().all(|p| p.starts_with("audit.")), "{problems:?}");
        std::fs::write(&path, format!("{base}[audit]\nenabled=false\n")).unwrap();
        let config = GatewayConfig::load(&path).unwrap();
        assert_eq!(config.audit.settings(&config.state_dir, "gateway"), None);
    }
}
