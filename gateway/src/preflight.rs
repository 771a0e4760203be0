//! What must hold before the gateway starts, checked without starting anything: every file the
//! config names (certificate and key that belong together, policy, directory CA and service
//! password, key-encryption key, state folder; the certificate issued by the organisation CA when
//! that is in the state folder), all problems at once, each naming its setting.
//! `check-config` prints them; `run` refuses to start on any of them.

use crate::config::GatewayConfig;
use rampart_certs::service_cert_problems;
use rampart_core::policy::Policy;

/// Every problem with the files `config` names, at `now` (Unix seconds, for certificate
/// validity). Empty when the gateway can start with them.
pub fn problems(config: &GatewayConfig, now: i64) -> Vec<String> {
    let mut problems = service_cert_problems(&config.cert, &config.key, &config.state_dir, now);
    match std::fs::read_to_string(&config.policy) {
        Err(e) => problems.push(format!("policy: {}: {e}", config.policy.display())),
        Ok(text) => {
            if let Err(errors) = Policy::parse(&text) {
                problems.extend(
                    errors
                        .0
                        .iter()
                        .map(|p| format!("policy: {}: {p}", config.policy.display())),
                );
            }
        }
    }
    problems.extend(config.directory.file_problems());
    problems.extend(config.store.file_problems(&config.state_dir, true));
    if let Some(flow_log) = &config.flow_log
        && let Some(folder) = flow_log.parent().filter(|f| !f.as_os_str().is_empty() && !f.is_dir())
    {
        problems.push(format!(
            "flow_log: the folder {} of {} does not exist",
            folder.display(),
            flow_log.display()
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn every_missing_file_is_named_by_its_setting_at_once() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "gateway.toml",
            "listen='127.0.0.1:0'\nstate_dir='state'\ncert='gw/gateway.pem'\nkey='gw/gateway.key'\n\
             policy='policy.toml'\nflow_log='logs/flows.jsonl'\n\
             [directory]\nkind='ldap'\nurls=['ldaps://dc1']\nca_file='ldap-ca.pem'\nbind_dn='cn=svc'\n\
             bind_password_file='bind.pw'\nuser_base='dc=x'\ngroup_base='dc=x'\n",
        );
        let config = GatewayConfig::load(&dir.path().join("gateway.toml")).unwrap();
        let found = problems(&config, 1_800_000_000);
        let settings: Vec<&str> = found.iter().map(|p| p.split(':').next().unwrap()).collect();
        assert_eq!(
            settings,
            [
                "cert",
                "key",
                "policy",
                "directory.ca_file",
                "directory.bind_password_file",
                "state_dir",
                "flow_log"
            ],
            "{found:#?}"
        );
        assert!(found[0].contains("gateway.pem"), "{found:?}");

        write(dir.path(), "bind.pw", "\n");
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        write(dir.path(), "policy.toml", "");
        let config = GatewayConfig::load(&dir.path().join("gateway.toml")).unwrap();
        let found = problems(&config, 1_800_000_000);
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("directory.bind_password_file:") && p.contains("empty")),
            "{found:?}"
        );
        assert!(!found.iter().any(|p| p.starts_with("flow_log")), "{found:?}");
    }
}
