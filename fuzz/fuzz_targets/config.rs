//! Fuzzes the gateway's and the provisioner's config files (TOML, then every value checked):
//! no panic, a refused file names at least one problem, and an accepted one has every path
//! resolved against the file's folder and settings that pass their own check.

#![no_main]

#[allow(dead_code)]
#[path = "../../gateway/src/config.rs"]
mod gateway;
#[allow(dead_code)]
#[path = "../../provisioner/src/config.rs"]
mod provisioner;
// The provisioner's config names its `[console]` table's module from the crate root.
#[allow(dead_code)]
#[path = "../../provisioner/src/console_config.rs"]
mod console_config;

use gateway::{ConfigError as GatewayError, GatewayConfig};
use libfuzzer_sys::fuzz_target;
use provisioner::{ConfigError as ProvisionerError, ProvisionerConfig};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match GatewayConfig::parse(text, Path::new("/etc/rampart/gateway.toml")) {
        Ok(config) => {
            for path in [&config.state_dir, &config.cert, &config.key, &config.policy] {
                assert!(path.is_absolute(), "{path:?}");
            }
            assert!(config.flow_log_path().is_absolute());
            assert!(config.settings.problems().is_empty());
            assert!(config.audit.problems().is_empty());
            assert!(config.store.problems().is_empty());
        }
        Err(GatewayError::Invalid { problems, .. }) => assert!(!problems.is_empty()),
        Err(e) => panic!("parsing read a file: {e}"),
    }
    match ProvisionerConfig::parse(text, Path::new("/etc/rampart/provisioner.toml")) {
        Ok(config) => {
            for path in [&config.state_dir, &config.cert, &config.key] {
                assert!(path.is_absolute(), "{path:?}");
            }
            assert!(config.console.problems().is_empty());
            for path in config.console.audit_dirs.iter().chain(config.console.policy_file.as_ref()) {
                assert!(path.is_absolute(), "{path:?}");
            }
            assert!(config.master_key_path().is_absolute());
            assert!(config.settings.problems().is_empty());
            assert!(config.audit.problems().is_empty());
            assert!(config.store.problems().is_empty());
        }
        Err(ProvisionerError::Invalid { problems, .. }) => assert!(!problems.is_empty()),
        Err(e) => panic!("parsing read a file: {e}"),
    }
});
