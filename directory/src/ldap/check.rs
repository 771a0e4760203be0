//! A live check of the LDAP settings for `check-config`: the service account binds, and the
//! user and group bases exist. Each problem names its setting in words an administrator can
//! act on; warnings name settings that work but are unsafe or incomplete.

use super::LdapDirectory;
use ldap3::{Scope, SearchOptions};

/// What works but is unsafe or incomplete in the settings, without asking the directory: both
/// services log these at start, and `check-config` prints them.
pub fn warnings(config: &super::LdapConfig) -> Vec<String> {
    let mut warnings = Vec::new();
    if !config.starttls
        && config
            .urls
            .iter()
            .any(|u| u.to_ascii_lowercase().starts_with("ldap://"))
    {
        warnings.push(
            "directory.urls: ldap:// without starttls sends every password in clear: use ldaps:// or \
             starttls = true"
                .to_owned(),
        );
    }
    if config.disabled_when.is_empty() {
        warnings.push(
            "directory.disabled_when: no rule, so an account disabled in the directory can still log in unless \
             the directory itself refuses its password (see docs/directory.md)"
                .to_owned(),
        );
    }
    warnings
}

/// LDAP's `noSuchObject`.
const NO_SUCH_OBJECT: u32 = 32;

impl LdapDirectory {
    /// Binds as the service account and looks for `user_base` and `group_base`: every problem
    /// that would stop logins, each naming its setting ([`warnings`] says what is unsafe).
    pub async fn check_settings(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let config = &self.config;
        let mut lease = match self.service.get().await {
            Ok(lease) => lease,
            Err(e) if e.contains("bind refused") => {
                problems.push(format!(
                    "directory.bind_dn: the service account {:?} could not bind ({e}): check bind_dn and its password",
                    config.bind_dn
                ));
                return problems;
            }
            Err(e) => {
                problems.push(format!("directory.urls: cannot reach the directory: {e}"));
                return problems;
            }
        };
        let bases = [
            ("user_base", Some(config.user_base.as_str())),
            ("group_base", config.group_base.as_deref()),
        ];
        for (setting, base) in bases {
            let Some(base) = base else { continue };
            let Ok(ldap) = lease.ldap() else {
                problems.push("directory.urls: the connection to the directory was lost".to_owned());
                return problems;
            };
            let found = ldap
                .with_search_options(SearchOptions::new().sizelimit(1))
                .search(base, Scope::Base, "(objectClass=*)", vec!["1.1"])
                .await;
            match found {
                Ok(result) if result.1.rc == NO_SUCH_OBJECT => problems.push(format!(
                    "directory.{setting}: {base:?} does not exist in the directory (LDAP result 32, noSuchObject)"
                )),
                Ok(result) if result.1.rc != 0 => problems.push(format!(
                    "directory.{setting}: {base:?} cannot be searched by the service account (LDAP result {})",
                    result.1.rc
                )),
                Ok(_) => {}
                Err(e) => problems.push(format!("directory.{setting}: searching {base:?} failed: {e}")),
            }
        }
        lease.keep();
        problems
    }
}
