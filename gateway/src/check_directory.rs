//! `rampart-gateway check-directory`: the first thing an operator runs when "Alice can't log
//! in": what the directory says about her, without logging in or touching her token. Both
//! directories (LDAP and local) are reported through one [`Facts`] with one label set.

use anyhow::Context;
use rampart_core::secret::Sensitive;
use rampart_core::text::printable;
use rampart_core::username::normalize_username;
use rampart_directory::{Directory, DirectoryError, LdapDirectory, LocalDirectory};
use rampart_gateway::{DirectoryConfig, GatewayConfig};
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

/// Prints the person's directory facts. Exit 0 when found, enabled and (if checked) the
/// password is right; 1 otherwise; 78 when the config is invalid.
pub fn run(config: &Path, typed_user: &str, password_stdin: bool, no_password: bool) -> anyhow::Result<ExitCode> {
    let config = match GatewayConfig::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(78));
        }
    };
    let username = normalize_username(typed_user).map_err(|e| anyhow::anyhow!("username {typed_user:?}: {e}"))?;
    let password = if no_password {
        None
    } else {
        Some(read_password(password_stdin)?)
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match &config.directory {
            DirectoryConfig::Ldap(ldap) => {
                let directory = LdapDirectory::new((**ldap).clone()).map_err(|e| anyhow::anyhow!("directory: {e}"))?;
                report_ldap(&directory, &username, password.as_ref()).await
            }
            DirectoryConfig::Local => {
                let store = config
                    .store
                    .open(&config.state_dir)
                    .await
                    .context("cannot open the store")?;
                let directory = LocalDirectory::new(store)?;
                report_local(&directory, &username, password.as_ref()).await
            }
        }
    })
}

/// What check-directory found about one person, printed the same way whichever directory
/// answered: one label set, lower case, in one order, so outputs compare line by line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Facts {
    /// The directory's spelling of the name, or the typed (normalised) one when not found.
    user: String,
    /// Whether one entry matched.
    found: bool,
    /// Why nothing was found, when it was not.
    not_found: &'static str,
    dn: Option<String>,
    stable_id: Option<String>,
    groups: Vec<String>,
    /// `None` when the directory does not say (not found).
    enabled: Option<bool>,
    /// `Some(Ok(()))` accepted, `Some(Err(reason))` rejected, `None` not checked.
    password: Option<Result<(), String>>,
}

impl Facts {
    fn not_found(user: &str, why: &'static str) -> Self {
        Self {
            user: user.to_owned(),
            not_found: why,
            ..Self::default()
        }
    }

    /// The report's lines. Directory values are escaped: an entry cannot drive the
    /// operator's terminal.
    fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!("user:      {}", printable(&self.user))];
        if !self.found {
            lines.push(format!("found:     no ({})", self.not_found));
            return lines;
        }
        lines.push("found:     yes".to_owned());
        if let Some(dn) = &self.dn {
            lines.push(format!("dn:        {}", printable(dn)));
        }
        lines.push(format!(
            "stable id: {}",
            printable(self.stable_id.as_deref().unwrap_or("MISSING (check id_attribute)"))
        ));
        lines.push(format!(
            "groups:    {}",
            if self.groups.is_empty() {
                "(none)".into()
            } else {
                printable(&self.groups.join(", "))
            }
        ));
        match self.enabled {
            Some(true) => lines.push("enabled:   yes".to_owned()),
            Some(false) => lines.push("enabled:   no (disabled in the directory)".to_owned()),
            None => {}
        }
        match &self.password {
            Some(Ok(())) => lines.push("password:  accepted".to_owned()),
            Some(Err(why)) => lines.push(format!("password:  REJECTED ({why})")),
            None => {}
        }
        lines
    }

    /// Found, enabled, with a stable id and (if checked) the right password.
    fn healthy(&self) -> bool {
        self.found && self.enabled != Some(false) && self.stable_id.is_some() && !matches!(self.password, Some(Err(_)))
    }

    fn print(&self) -> ExitCode {
        for line in self.lines() {
            println!("{line}");
        }
        if self.healthy() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

async fn report_ldap(
    directory: &LdapDirectory,
    username: &str,
    password: Option<&Sensitive<String>>,
) -> anyhow::Result<ExitCode> {
    let found = match directory.inspect(username, password).await {
        Ok(found) => found,
        Err(DirectoryError::Unavailable(detail)) => anyhow::bail!("the directory cannot be reached: {detail}"),
        Err(e) => anyhow::bail!("{e}"),
    };
    let Some(person) = found else {
        return Ok(Facts::not_found(username, "no entry, or several, match the user filter").print());
    };
    let password = match (person.password_ok, person.password_refusal) {
        (Some(true), _) => Some(Ok(())),
        (Some(false), Some(why)) => Some(Err(why.to_string())),
        (Some(false), None) => Some(Err("refused".to_owned())),
        (None, _) => None,
    };
    Ok(Facts {
        user: person.username,
        found: true,
        not_found: "",
        dn: Some(person.dn),
        stable_id: person.stable_id,
        groups: person.groups,
        enabled: Some(person.enabled),
        password,
    }
    .print())
}

async fn report_local(
    directory: &LocalDirectory,
    username: &str,
    password: Option<&Sensitive<String>>,
) -> anyhow::Result<ExitCode> {
    let (person, enabled) = match directory.lookup_any(username).await {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(Facts::not_found(username, "no such user in the local directory").print()),
        Err(e) => anyhow::bail!("{e}"),
    };
    let password = match password {
        None => None,
        Some(p) => match directory.authenticate(username, p).await {
            Ok(_) => Some(Ok(())),
            Err(DirectoryError::Rejected(rejection)) => Some(Err(rejection.reason.to_string())),
            Err(e) => anyhow::bail!("{e}"),
        },
    };
    Ok(Facts {
        user: person.username,
        found: true,
        not_found: "",
        dn: None,
        stable_id: Some(person.stable_id),
        groups: person.groups,
        enabled: Some(enabled),
        password,
    }
    .print())
}

fn read_password(from_stdin: bool) -> anyhow::Result<Sensitive<String>> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password")?;
        return Ok(Sensitive::new(line.trim_end_matches(['\n', '\r']).to_owned()));
    }
    Ok(Sensitive::new(
        rpassword::prompt_password("Password (to test a bind): ").context("cannot read the password")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.split_once(':').map(|(label, _)| label.to_owned()).unwrap_or_default())
            .collect()
    }

    fn ldap_alice() -> Facts {
        Facts {
            user: "alice".into(),
            found: true,
            not_found: "",
            dn: Some("uid=alice,ou=people,dc=bank".into()),
            stable_id: Some("6f1c".into()),
            groups: vec!["staff".into()],
            enabled: Some(true),
            password: Some(Ok(())),
        }
    }

    #[test]
    fn every_output_uses_the_same_lower_case_labels_in_one_order() {
        let local_alice = Facts {
            dn: None,
            ..ldap_alice()
        };
        let ldap = labels(&ldap_alice().lines());
        let local = labels(&local_alice.lines());
        assert_eq!(
            ldap,
            ["user", "found", "dn", "stable id", "groups", "enabled", "password"]
        );
        assert_eq!(local, ["user", "found", "stable id", "groups", "enabled", "password"]);
        for output in [
            ldap_alice().lines(),
            local_alice.lines(),
            Facts::not_found("bob", "no entry").lines(),
            Facts {
                enabled: Some(false),
                password: Some(Err("wrong_password".into())),
                ..ldap_alice()
            }
            .lines(),
        ] {
            assert!(output[0].starts_with("user:      "), "{output:?}");
            assert!(output[1].starts_with("found:     "), "{output:?}");
            for label in labels(&output) {
                assert_eq!(label, label.to_lowercase(), "{output:?}");
            }
        }
    }

    #[test]
    fn health_follows_what_is_shown() {
        assert!(ldap_alice().healthy());
        assert!(!Facts::not_found("bob", "no entry").healthy());
        assert!(
            !Facts {
                enabled: Some(false),
                ..ldap_alice()
            }
            .healthy()
        );
        assert!(
            !Facts {
                stable_id: None,
                ..ldap_alice()
            }
            .healthy()
        );
        assert!(
            !Facts {
                password: Some(Err("locked".into())),
                ..ldap_alice()
            }
            .healthy()
        );
        assert!(
            Facts {
                password: None,
                ..ldap_alice()
            }
            .healthy()
        );
    }

    #[test]
    fn directory_values_are_escaped() {
        let facts = Facts {
            user: "eve\u{1b}[31m".into(),
            ..ldap_alice()
        };
        assert!(!facts.lines().concat().contains('\u{1b}'));
    }
}
