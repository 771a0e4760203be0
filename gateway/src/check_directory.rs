//! `rampart-gateway check-directory`: the first thing an operator runs when "Alice can't log
//! in": what the directory says about her, without logging in or touching her token.

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
        println!("user:      {username}\nfound:     no (no entry, or several, match the user filter)");
        return Ok(ExitCode::FAILURE);
    };
    // Directory values are shown escaped: an entry cannot drive the operator's terminal.
    println!("user:      {}", printable(&person.username));
    println!("dn:        {}", printable(&person.dn));
    println!(
        "stable id: {}",
        printable(person.stable_id.as_deref().unwrap_or("MISSING (check id_attribute)"))
    );
    println!(
        "groups:    {}",
        if person.groups.is_empty() {
            "(none)".into()
        } else {
            printable(&person.groups.join(", "))
        }
    );
    println!(
        "enabled:   {}",
        if person.enabled {
            "yes"
        } else {
            "no (a disabled_when rule matches)"
        }
    );
    match (person.password_ok, person.password_refusal) {
        (Some(true), _) => println!("password:  accepted"),
        (Some(false), Some(why)) => println!("password:  REJECTED ({why})"),
        (Some(false), None) => println!("password:  REJECTED"),
        (None, _) => {}
    }
    let healthy = person.enabled && person.stable_id.is_some() && person.password_ok != Some(false);
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn report_local(
    directory: &LocalDirectory,
    username: &str,
    password: Option<&Sensitive<String>>,
) -> anyhow::Result<ExitCode> {
    let person = match password {
        Some(p) => directory.authenticate(username, p).await.map(Some),
        None => directory.lookup(username).await,
    };
    match person {
        Ok(Some(p)) => {
            println!(
                "user:      {}\nstable id: {}\ngroups:    {}",
                printable(&p.username),
                printable(&p.stable_id),
                printable(&p.groups.join(", "))
            );
            println!("enabled:   yes");
            if password.is_some() {
                println!("password:  accepted");
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            println!("user:      {username}\nfound:     no (or disabled)");
            Ok(ExitCode::FAILURE)
        }
        Err(DirectoryError::Rejected(reason)) => {
            println!("user:      {username}\nrefused:   {reason}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => anyhow::bail!("{e}"),
    }
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
