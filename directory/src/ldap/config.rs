//! LDAP directory settings (the `[directory]` table with `kind = "ldap"`), validated with every
//! problem reported at once, and the service account's password read from a file or variable.

use rampart_core::secret::Sensitive;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a person's groups are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GroupMode {
    /// Search `group_base` for `groupOfNames` (`member`) and `groupOfUniqueNames`
    /// (`uniqueMember`) entries naming the person's DN. OpenLDAP's usual layout.
    #[default]
    GroupSearch,
    /// Read the person's `memberOf` attribute (OpenLDAP memberof overlay, Active Directory).
    MemberOf,
    /// Active Directory nested groups: search with the LDAP_MATCHING_RULE_IN_CHAIN
    /// (`member:1.2.840.113556.1.4.1941:=DN`).
    AdNested,
}

/// A rule that marks an account disabled. With neither `equals` nor `bit`, the attribute's
/// presence disables (e.g. `pwdAccountLockedTime`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisabledRule {
    /// Attribute to look at.
    pub attribute: String,
    /// Disabled when any value equals this (case-insensitive), e.g. `nsAccountLock = "true"`.
    #[serde(default)]
    pub equals: Option<String>,
    /// Disabled when the integer value has this bit set, e.g. Active Directory
    /// `userAccountControl` bit 2 (ACCOUNTDISABLE).
    #[serde(default)]
    pub bit: Option<u64>,
}

/// Settings of the LDAP directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// Servers tried in order: `ldap://host:389` or `ldaps://host:636`.
    pub urls: Vec<String>,
    /// Upgrade `ldap://` connections with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// CA certificate(s) (PEM) that the servers' certificates must chain to. Required for
    /// `ldaps://` or StartTLS; the system roots are never used.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Service account that searches for people.
    pub bind_dn: String,
    /// File holding the service account's password (first line).
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// Environment variable holding the service account's password.
    #[serde(default)]
    pub bind_password_env: Option<String>,
    /// Where people are searched.
    pub user_base: String,
    /// Search filter; `{username}` is replaced by the RFC 4515-escaped normalised username.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// Attribute holding the login name (`uid`; `sAMAccountName` in Active Directory).
    #[serde(default = "default_username_attribute")]
    pub username_attribute: String,
    /// Attribute holding the stable identifier (`entryUUID`; `objectGUID` in Active Directory).
    #[serde(default = "default_id_attribute")]
    pub id_attribute: String,
    /// Attribute holding the display name.
    #[serde(default = "default_display_name_attribute")]
    pub display_name_attribute: String,
    /// Attribute holding the e-mail address, for enrolment letters (`mail` in OpenLDAP and
    /// Active Directory).
    #[serde(default = "default_mail_attribute")]
    pub mail_attribute: String,
    /// How groups are found.
    #[serde(default)]
    pub group_mode: GroupMode,
    /// Where groups are: searched (group_search and ad_nested), or the branch whose `memberOf`
    /// groups count (member_of). Required.
    #[serde(default)]
    pub group_base: Option<String>,
    /// Attribute holding a group's name.
    #[serde(default = "default_group_name_attribute")]
    pub group_name_attribute: String,
    /// Rules that mark an account disabled; any match refuses the login.
    #[serde(default)]
    pub disabled_when: Vec<DisabledRule>,
    /// Service connections kept open at most (also the bound on concurrent user binds).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Seconds to wait for a TCP and TLS connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds to wait for each LDAP operation.
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout_secs: u64,
    /// Seconds a failed server is skipped before it is tried again.
    #[serde(default = "default_retry_after")]
    pub retry_failed_server_secs: u64,
}

fn default_user_filter() -> String {
    "(&(objectClass=inetOrgPerson)(uid={username}))".into()
}
fn default_username_attribute() -> String {
    "uid".into()
}
fn default_id_attribute() -> String {
    "entryUUID".into()
}
fn default_display_name_attribute() -> String {
    "cn".into()
}
fn default_mail_attribute() -> String {
    "mail".into()
}
fn default_group_name_attribute() -> String {
    "cn".into()
}
fn default_pool_size() -> usize {
    8
}
fn default_connect_timeout() -> u64 {
    3
}
fn default_operation_timeout() -> u64 {
    5
}
fn default_retry_after() -> u64 {
    30
}

impl LdapConfig {
    /// Every problem with the settings, at once.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.urls.is_empty() {
            problems.push("directory.urls: at least one server is needed".to_owned());
        }
        let mut uses_tls = self.starttls;
        for url in &self.urls {
            match url.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase()) {
                Some(scheme) if scheme == "ldaps" => uses_tls = true,
                Some(scheme) if scheme == "ldap" => {}
                _ => problems.push(format!("directory.urls: {url:?} must start with ldap:// or ldaps://")),
            }
        }
        if uses_tls && self.ca_file.is_none() {
            problems.push("directory.ca_file: required with ldaps:// or starttls".to_owned());
        }
        if self.bind_dn.trim().is_empty() {
            problems.push("directory.bind_dn: must not be empty".to_owned());
        }
        if self.bind_password_file.is_some() == self.bind_password_env.is_some() {
            problems.push("directory: set exactly one of bind_password_file or bind_password_env".to_owned());
        }
        if !self.user_filter.contains("{username}") {
            problems.push("directory.user_filter: must contain {username}".to_owned());
        }
        if !(self.user_filter.starts_with('(') && self.user_filter.ends_with(')')) {
            problems.push("directory.user_filter: must be a parenthesised LDAP filter".to_owned());
        }
        if self.group_base.as_deref().is_none_or(|base| base.trim().is_empty()) {
            problems.push(match self.group_mode {
                GroupMode::MemberOf => "directory.group_base: required with group_mode = \"member_of\" too: only \
                                        groups under it count, so a same-named group elsewhere grants nothing (name \
                                        the domain to accept groups anywhere)"
                    .to_owned(),
                _ => "directory.group_base: required".to_owned(),
            });
        }
        for (i, rule) in self.disabled_when.iter().enumerate() {
            if rule.attribute.trim().is_empty() {
                problems.push(format!("directory.disabled_when[{i}].attribute: must not be empty"));
            }
            if rule.equals.is_some() && rule.bit.is_some() {
                problems.push(format!("directory.disabled_when[{i}]: use either equals or bit"));
            }
        }
        if !(1..=256).contains(&self.pool_size) {
            problems.push("directory.pool_size: must be 1 to 256".to_owned());
        }
        for (name, value) in [
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("operation_timeout_secs", self.operation_timeout_secs),
        ] {
            if !(1..=120).contains(&value) {
                problems.push(format!("directory.{name}: must be 1 to 120"));
            }
        }
        problems
    }

    /// Makes relative paths relative to `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in [&mut self.ca_file, &mut self.bind_password_file].into_iter().flatten() {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Reads the service account's password. The error names the source, never the value.
    pub fn bind_password(&self) -> Result<Sensitive<String>, String> {
        if let Some(path) = &self.bind_password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read bind_password_file {}: {e}", path.display()))?;
            let password = text.lines().next().unwrap_or_default().to_owned();
            return non_empty(password, &format!("bind_password_file {}", path.display()));
        }
        if let Some(var) = &self.bind_password_env {
            let password = std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?;
            return non_empty(password, &format!("environment variable {var}"));
        }
        Err("no bind password configured".into())
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    pub(crate) fn operation_timeout(&self) -> Duration {
        Duration::from_secs(self.operation_timeout_secs)
    }

    pub(crate) fn retry_after(&self) -> Duration {
        Duration::from_secs(self.retry_failed_server_secs)
    }
}

fn non_empty(password: String, source: &str) -> Result<Sensitive<String>, String> {
    if password.trim().is_empty() {
        Err(format!("{source} is empty"))
    } else {
        Ok(Sensitive::new(password))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> LdapConfig {
        toml::from_str(text).unwrap()
    }

    const MINIMAL: &str = r#"
        urls = ["ldap://127.0.0.1:389"]
        bind_dn = "cn=rampart,dc=bank,dc=example"
        bind_password_env = "LDAP_PW"
        user_base = "ou=people,dc=bank,dc=example"
        group_base = "ou=groups,dc=bank,dc=example"
    "#;

    #[test]
    fn minimal_config_has_sane_defaults() {
        let c = parse(MINIMAL);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(c.id_attribute, "entryUUID");
        assert_eq!(c.group_mode, GroupMode::GroupSearch);
    }

    #[test]
    fn every_problem_is_reported() {
        let c = parse(
            r#"
            urls = ["ldaps://dc1", "http://x"]
            bind_dn = ""
            user_base = "dc=x"
            user_filter = "uid=fixed"
            pool_size = 0
            [[disabled_when]]
            attribute = "userAccountControl"
            equals = "514"
            bit = 2
        "#,
        );
        let problems = c.problems();
        assert_eq!(problems.len(), 9, "{problems:#?}");
    }

    #[test]
    fn member_of_needs_the_group_base_that_scopes_it() {
        let without = MINIMAL.replace(
            "group_base = \"ou=groups,dc=bank,dc=example\"",
            "group_mode = \"member_of\"",
        );
        let problems = parse(&without).problems();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].starts_with("directory.group_base: required with group_mode = \"member_of\""));
        assert!(problems[0].contains("same-named group elsewhere grants nothing"));
        let with = format!("{MINIMAL}\ngroup_mode = \"member_of\"");
        assert!(parse(&with).problems().is_empty());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<LdapConfig>(&format!("{MINIMAL}\nbind_password = \"x\"")).is_err());
    }

    #[test]
    fn bind_password_errors_name_the_source_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = parse(MINIMAL);
        c.bind_password_env = None;
        c.bind_password_file = Some(dir.path().join("pw"));
        assert!(c.bind_password().unwrap_err().contains("cannot read"));
        std::fs::write(dir.path().join("pw"), "s3cret\nignored\n").unwrap();
        assert_eq!(c.bind_password().unwrap().expose(), "s3cret");
        std::fs::write(dir.path().join("pw"), "  \n").unwrap();
        assert!(c.bind_password().unwrap_err().contains("is empty"));
    }
}
