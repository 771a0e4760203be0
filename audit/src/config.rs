//! The `[audit]` table both services read, and the settings it resolves to. Paths are relative
//! to the config file; the folder and the signing key default to the state directory.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[audit]` in `gateway.toml` and `provisioner.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Write the audit trail (default true).
    pub enabled: bool,
    /// Folder of the audit files (default `STATE_DIR/audit`).
    pub dir: Option<PathBuf>,
    /// This process's stream name: letters, digits, `_` and `.` (default: the service name).
    /// Processes sharing a folder need distinct names.
    pub stream: Option<String>,
    /// Ed25519 signing key for checkpoints, PKCS#8, created when missing (default
    /// `STATE_DIR/audit-signing.key`; its public half is written beside it as `.pub`).
    pub signing_key: Option<PathBuf>,
    /// A file is closed and a new one begun past this size (default 64 MiB).
    pub max_file_bytes: u64,
    /// … or past this age in seconds (default one day).
    pub max_file_age_secs: u64,
    /// Seconds between signed checkpoints while records are written (default 300).
    pub checkpoint_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: None,
            stream: None,
            signing_key: None,
            max_file_bytes: 64 * 1024 * 1024,
            max_file_age_secs: 86_400,
            checkpoint_secs: 300,
        }
    }
}

/// Resolved settings for one writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Folder of the audit files.
    pub dir: PathBuf,
    /// Stream name.
    pub stream: String,
    /// Signing key file.
    pub signing_key: PathBuf,
    /// Rotation size.
    pub max_file_bytes: u64,
    /// Rotation age.
    pub max_file_age: Duration,
    /// Checkpoint interval.
    pub checkpoint_every: Duration,
    /// `gateway`, `provisioner`, `dev`.
    pub service: String,
}

impl AuditConfig {
    /// Makes relative paths relative to `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in [&mut self.dir, &mut self.signing_key].into_iter().flatten() {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// The settings for `service` keeping state in `state_dir`; None when disabled.
    pub fn settings(&self, state_dir: &Path, service: &str) -> Option<AuditSettings> {
        if !self.enabled {
            return None;
        }
        Some(AuditSettings {
            dir: self.dir.clone().unwrap_or_else(|| state_dir.join("audit")),
            stream: self.stream.clone().unwrap_or_else(|| service.to_owned()),
            signing_key: self
                .signing_key
                .clone()
                .unwrap_or_else(|| state_dir.join("audit-signing.key")),
            max_file_bytes: self.max_file_bytes,
            max_file_age: Duration::from_secs(self.max_file_age_secs),
            checkpoint_every: Duration::from_secs(self.checkpoint_secs),
            service: service.to_owned(),
        })
    }

    /// Every problem with the values, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(stream) = &self.stream
            && !valid_stream_name(stream)
        {
            problems.push(format!(
                "audit.stream: {stream:?} may hold only letters, digits, `_` and `.` (at most 64)"
            ));
        }
        if self.max_file_bytes < 4096 {
            problems.push("audit.max_file_bytes: must be at least 4096".into());
        }
        if self.max_file_age_secs == 0 {
            problems.push("audit.max_file_age_secs: must be at least 1".into());
        }
        if self.checkpoint_secs == 0 {
            problems.push("audit.checkpoint_secs: must be at least 1".into());
        }
        problems
    }
}

/// Stream names become file-name prefixes: no separators, no dashes (the dash ends the name).
pub fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_live_in_the_state_directory() {
        let s = AuditConfig::default()
            .settings(Path::new("/var/lib/rampart"), "gateway")
            .unwrap();
        assert_eq!(s.dir, Path::new("/var/lib/rampart/audit"));
        assert_eq!(s.signing_key, Path::new("/var/lib/rampart/audit-signing.key"));
        assert_eq!(s.stream, "gateway");
        let off = AuditConfig {
            enabled: false,
            ..AuditConfig::default()
        };
        assert_eq!(off.settings(Path::new("/x"), "gateway"), None);
    }

    #[test]
    fn every_bad_value_is_named() {
        let config: AuditConfig =
            toml_like(r#"{"stream": "gw-1/..", "max_file_bytes": 10, "max_file_age_secs": 0, "checkpoint_secs": 0}"#);
        let problems = config.problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("audit.stream"));
    }

    fn toml_like(json: &str) -> AuditConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn stream_names_are_file_safe() {
        assert!(valid_stream_name("gateway.zrh_1"));
        for bad in ["", "a-b", "a/b", "..", ".hidden", "a b", "ü"] {
            assert!(!valid_stream_name(bad), "{bad:?}");
        }
    }
}
