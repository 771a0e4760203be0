//! What must hold before the provisioner starts, checked without starting anything: the
//! config's values and every file it names (certificate and key that belong together,
//! directory CA and service password, key-encryption key or `master.key`), all problems at
//! once, each naming its setting. `check-config` prints them; `run` refuses to start on any.

use crate::config::{ConfigError, ProvisionerConfig};
use rampart_certs::service_cert_problems;
use std::path::Path;

/// Every problem that would stop the provisioner, one per line, each naming its setting.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct Problems(pub Vec<String>);

/// Every problem with the files `config` names, at `now` (Unix seconds, for certificate
/// validity). Empty when the provisioner can start with them.
pub fn problems(config: &ProvisionerConfig, now: i64) -> Vec<String> {
    let mut problems = service_cert_problems(&config.cert, &config.key, &config.state_dir, now);
    problems.extend(config.directory.file_problems());
    problems.extend(config.store.file_problems(&config.state_dir, false));
    problems
}

/// The config at `path` with every problem its values and files have; `Err` when the file
/// cannot be read as a config at all.
pub fn gather(path: &Path) -> Result<(ProvisionerConfig, Vec<String>), Problems> {
    let (config, mut found) = match ProvisionerConfig::load_with_problems(path) {
        Ok((config, found)) => (config, found),
        Err(ConfigError::Invalid { path, problems }) => {
            return Err(Problems(
                problems.iter().map(|p| format!("{}: {p}", path.display())).collect(),
            ));
        }
        Err(e) => return Err(Problems(vec![e.to_string()])),
    };
    let now = rampart_core::clock::Clock::shifted(config.settings.clock_offset_secs).now();
    found.extend(problems(&config, now));
    Ok((config, found))
}

/// Loads the config at `path` and checks its files: the config, or every problem at once.
pub fn load_checked(path: &Path) -> Result<ProvisionerConfig, Problems> {
    match gather(path)? {
        (config, found) if found.is_empty() => Ok(config),
        (_, found) => Err(Problems(found)),
    }
}
