//! The systemd units in `deploy/` pass `systemd-analyze verify`, with their `ExecStart`
//! pointed at the binaries this build made (the units name `/usr/local/bin`, where an operator
//! installs them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::{bin, output_text, require_tool};
use std::process::Command;

#[test]
fn the_systemd_units_verify() {
    require_tool("systemd-analyze", "systemd");
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for name in ["rampart-gateway", "rampart-provisioner"] {
        let text = std::fs::read_to_string(units.join(format!("{name}.service"))).unwrap();
        assert!(
            text.contains("NoNewPrivileges=yes") && text.contains("ProtectSystem=strict"),
            "{name} is hardened"
        );
        let local = text.replace(&format!("/usr/local/bin/{name}"), &bin(name).display().to_string());
        let path = dir.path().join(format!("{name}.service"));
        std::fs::write(&path, local).unwrap();
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .unwrap();
    assert!(out.status.success(), "systemd-analyze verify: {}", output_text(&out));
    let text = output_text(&out);
    assert!(!text.contains("Unknown"), "systemd-analyze warned: {text}");
}
