//! The `[console]` table: the web console's sign-in rules, the directory groups that make
//! someone an operator there, and where it reads the audit trail.

use rampart_store::OperatorRole;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The web console served at `/console/` by the provisioner.
///
/// Everyone in the directory with a token may sign in to see their own token and sessions;
/// membership of one of the groups below adds what that role may do for others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console (default true). The self-service enrolment page is part of it.
    pub enabled: bool,
    /// Directory groups whose members are administrators in the console (default none).
    pub admin_groups: Vec<String>,
    /// Directory groups whose members are service-desk operators (default none).
    pub helpdesk_groups: Vec<String>,
    /// Directory groups whose members are auditors: they read everything and change nothing
    /// but end sessions (default none).
    pub auditor_groups: Vec<String>,
    /// Minutes without a request after which a console session ends (default 30).
    pub idle_minutes: u32,
    /// Hours after which a console session ends whatever happens (default 10).
    pub session_hours: u32,
    /// Seconds between checks that a signed-in person is still enabled in the directory with
    /// the same role (default 60); a change ends their console session.
    pub recheck_secs: u64,
    /// Sign-in attempts one address may make per minute (default 20), and as many self-service
    /// enrolment starts (web page and API); beyond, it is asked to wait.
    pub sign_ins_per_minute: u32,
    /// Milliseconds from the start of a refused sign-in to its answer, whatever was wrong
    /// (default 1000).
    pub sign_in_failure_delay_ms: u64,
    /// Audit folders the security pages search (default: this provisioner's own audit
    /// folder, which on a single host the gateway writes to as well).
    pub audit_dirs: Vec<PathBuf>,
    /// The gateways' policy file, read by the desk's "why can't they connect" view to explain
    /// each of a person's resources (default: none, and the view says it cannot).
    pub policy_file: Option<PathBuf>,
    /// The audit checkpoint key's public half, to check signatures and the heads anchored in
    /// the store on the integrity page (default: this provisioner's own, `audit-signing.pub`).
    pub audit_public_key: Option<PathBuf>,
    /// The organisation's connection profile (`rampart profile create` without `--user`),
    /// offered on every employee's own page with their username filled in (default: none).
    pub profile_file: Option<PathBuf>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            admin_groups: Vec::new(),
            helpdesk_groups: Vec::new(),
            auditor_groups: Vec::new(),
            idle_minutes: 30,
            session_hours: 10,
            recheck_secs: 60,
            sign_ins_per_minute: 20,
            sign_in_failure_delay_ms: 1000,
            audit_dirs: Vec::new(),
            policy_file: None,
            audit_public_key: None,
            profile_file: None,
        }
    }
}

impl ConsoleConfig {
    /// Every problem with the values, in plain words.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=24 * 60).contains(&self.idle_minutes) {
            problems.push("console.idle_minutes must be between 1 and 1440".into());
        }
        if !(1..=24).contains(&self.session_hours) {
            problems.push("console.session_hours must be between 1 and 24".into());
        }
        if !(1..=3600).contains(&self.recheck_secs) {
            problems.push("console.recheck_secs must be between 1 and 3600".into());
        }
        if !(1..=10_000).contains(&self.sign_ins_per_minute) {
            problems.push("console.sign_ins_per_minute must be between 1 and 10000".into());
        }
        if self.sign_in_failure_delay_ms > 10_000 {
            problems.push("console.sign_in_failure_delay_ms must be at most 10000".into());
        }
        for (name, groups) in [
            ("admin_groups", &self.admin_groups),
            ("helpdesk_groups", &self.helpdesk_groups),
            ("auditor_groups", &self.auditor_groups),
        ] {
            if groups.iter().any(|g| g.trim().is_empty()) {
                problems.push(format!("console.{name} must not contain an empty group name"));
            }
        }
        problems
    }

    /// Makes relative audit folders relative to `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        for dir in self
            .audit_dirs
            .iter_mut()
            .chain(self.policy_file.as_mut())
            .chain(self.audit_public_key.as_mut())
            .chain(self.profile_file.as_mut())
        {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
    }

    /// The operator role a person in `groups` has in the console, the strongest when several
    /// apply; `None` for everyone else (they see only their own things).
    pub fn role_of(&self, groups: &[String]) -> Option<OperatorRole> {
        let member = |of: &[String]| {
            of.iter()
                .any(|g| groups.iter().any(|mine| mine.eq_ignore_ascii_case(g)))
        };
        if member(&self.admin_groups) {
            Some(OperatorRole::Admin)
        } else if member(&self.helpdesk_groups) {
            Some(OperatorRole::Helpdesk)
        } else if member(&self.auditor_groups) {
            Some(OperatorRole::Auditor)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strongest_role_of_a_persons_groups_wins() {
        let console = ConsoleConfig {
            admin_groups: vec!["it-admins".into()],
            helpdesk_groups: vec!["desk".into()],
            auditor_groups: vec!["security".into()],
            ..ConsoleConfig::default()
        };
        let groups = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(console.role_of(&groups(&["staff"])), None);
        assert_eq!(console.role_of(&groups(&["Desk"])), Some(OperatorRole::Helpdesk));
        assert_eq!(
            console.role_of(&groups(&["security", "desk"])),
            Some(OperatorRole::Helpdesk)
        );
        assert_eq!(
            console.role_of(&groups(&["security", "it-admins"])),
            Some(OperatorRole::Admin)
        );
        assert_eq!(console.role_of(&groups(&["security"])), Some(OperatorRole::Auditor));
        assert!(console.problems().is_empty());
        let bad = ConsoleConfig {
            idle_minutes: 0,
            session_hours: 25,
            auditor_groups: vec![" ".into()],
            ..ConsoleConfig::default()
        };
        assert_eq!(bad.problems().len(), 3, "{:?}", bad.problems());
    }
}
