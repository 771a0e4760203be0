//! The `[directory]` table shared by every program that asks the directory (gateway,
//! provisioner): which directory to use, how to check its settings, and how to open it.

use crate::ldap::LdapConfig;
use crate::{Directory, LdapDirectory, LocalDirectory, PasswordError};
use rampart_store::Store;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

/// The `[directory]` table.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DirectoryConfig {
    /// Users with argon2id hashes in the store.
    #[default]
    Local,
    /// OpenLDAP or Active Directory.
    Ldap(Box<LdapConfig>),
}

impl DirectoryConfig {
    /// Makes relative paths relative to `base` (the config file's folder) and returns every
    /// problem with the settings, at once (empty when they are usable).
    pub fn prepare(&mut self, base: &Path) -> Vec<String> {
        match self {
            Self::Local => Vec::new(),
            Self::Ldap(ldap) => {
                ldap.resolve_paths(base);
                ldap.problems()
            }
        }
    }
}

impl DirectoryConfig {
    /// Every problem with the files and variables the settings name, at once: the CA file
    /// exists and holds a certificate, the service password's file or variable is readable and
    /// not empty. Each names its setting, never a password. Call after [`Self::prepare`].
    pub fn file_problems(&self) -> Vec<String> {
        let Self::Ldap(ldap) = self else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        if let Some(ca) = &ldap.ca_file {
            problems.extend(rampart_certs::ca_file_problems(rampart_certs::FileSetting::new(
                "directory.ca_file",
                ca,
            )));
        }
        if let Some(path) = &ldap.bind_password_file {
            match std::fs::read_to_string(path) {
                Err(e) => problems.push(format!("directory.bind_password_file: {}: {e}", path.display())),
                Ok(text) if text.lines().next().unwrap_or_default().trim().is_empty() => problems.push(format!(
                    "directory.bind_password_file: {} is empty (the password goes on its first line)",
                    path.display()
                )),
                Ok(_) => {}
            }
        }
        if let Some(var) = &ldap.bind_password_env
            && std::env::var(var).map_or(true, |v| v.trim().is_empty())
        {
            problems.push(format!(
                "directory.bind_password_env: the environment variable {var} is not set or empty"
            ));
        }
        problems
    }
}

impl DirectoryConfig {
    /// What works but is unsafe or incomplete (cleartext LDAP, no rule for disabled accounts),
    /// without asking the directory.
    pub fn warnings(&self) -> Vec<String> {
        match self {
            Self::Local => Vec::new(),
            Self::Ldap(ldap) => crate::ldap::check::warnings(ldap),
        }
    }

    /// Asks the directory itself, for `check-config`: the service account binds and the bases
    /// exist; every problem, each naming its setting. Nothing for the local directory. Call
    /// after [`Self::prepare`] and [`Self::file_problems`].
    pub async fn check_live(&self) -> Vec<String> {
        match self {
            Self::Local => Vec::new(),
            Self::Ldap(ldap) => match LdapDirectory::new((**ldap).clone()) {
                Ok(directory) => directory.check_settings().await,
                Err(e) => vec![format!("directory: {e}")],
            },
        }
    }
}

/// Why the configured directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenDirectoryError {
    /// The local directory could not prepare its decoy password hash.
    #[error("cannot start the local directory: {0}")]
    Local(#[from] PasswordError),
    /// The LDAP settings are invalid, or the CA or the service password cannot be read. The
    /// text names the setting or file, never a password.
    #[error("directory: {0}")]
    Ldap(String),
}

/// The directory named by the config: the store's local users, or LDAP. Opens no LDAP
/// connection yet.
pub fn open_directory(
    config: &DirectoryConfig,
    store: Arc<dyn Store>,
) -> Result<Arc<dyn Directory>, OpenDirectoryError> {
    Ok(match config {
        DirectoryConfig::Local => Arc::new(LocalDirectory::new(store)?),
        DirectoryConfig::Ldap(ldap) => {
            Arc::new(LdapDirectory::new((**ldap).clone()).map_err(OpenDirectoryError::Ldap)?)
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        directory: DirectoryConfig,
    }

    #[test]
    fn local_is_the_default_and_has_no_problems() {
        let mut file: File = toml::from_str("").unwrap();
        assert!(matches!(file.directory, DirectoryConfig::Local));
        assert!(file.directory.prepare(Path::new("/etc/rampart")).is_empty());
        let file: File = toml::from_str("[directory]\nkind = \"local\"\n").unwrap();
        assert!(matches!(file.directory, DirectoryConfig::Local));
    }

    #[test]
    fn ldap_paths_are_resolved_and_problems_reported() {
        let mut file: File = toml::from_str(
            "[directory]\nkind = \"ldap\"\nurls = [\"ldaps://dc1\"]\nca_file = \"ca.pem\"\nbind_dn = \"cn=svc\"\n\
             bind_password_file = \"/abs/pw\"\nuser_base = \"dc=x\"\ngroup_base = \"dc=x\"\n",
        )
        .unwrap();
        assert!(file.directory.prepare(Path::new("/etc/rampart")).is_empty());
        let DirectoryConfig::Ldap(ldap) = &file.directory else {
            panic!("not ldap")
        };
        assert_eq!(ldap.ca_file.as_deref(), Some(Path::new("/etc/rampart/ca.pem")));
        assert_eq!(ldap.bind_password_file.as_deref(), Some(Path::new("/abs/pw")));

        let mut file: File =
            toml::from_str("[directory]\nkind = \"ldap\"\nurls = []\nbind_dn = \"\"\nuser_base = \"x\"\n").unwrap();
        assert!(file.directory.prepare(Path::new(".")).len() >= 3);
        assert!(toml::from_str::<File>("[directory]\nkind = \"ad\"\n").is_err());
    }

    #[tokio::test]
    async fn open_directory_opens_either_kind_and_errors_name_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(rampart_store::SqliteStore::open(dir.path()).await.unwrap());
        let local = open_directory(&DirectoryConfig::Local, store.clone()).unwrap();
        assert!(local.lookup("nobody").await.unwrap().is_none());

        let ldap: LdapConfig = toml::from_str(
            "urls = [\"ldap://127.0.0.1:1\"]\nbind_dn = \"cn=svc\"\nbind_password_env = \"RAMPART_TEST_UNSET_PW\"\n\
             user_base = \"dc=x\"\ngroup_base = \"dc=x\"\n",
        )
        .unwrap();
        let Err(OpenDirectoryError::Ldap(text)) = open_directory(&DirectoryConfig::Ldap(Box::new(ldap)), store) else {
            panic!("opened without a bind password")
        };
        assert_eq!(text, "environment variable RAMPART_TEST_UNSET_PW is not set");
    }
}
