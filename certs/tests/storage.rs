//! Saving and loading the CA and issued certificates: round trips, file modes, key/cert
//! mismatches, and no key material in `Debug` output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_certs::{
    CA_CERT_FILE, CA_KEY_FILE, CertError, CertificateAuthority, client_config, load_certs, load_key, server_config,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};
use std::sync::Arc;

const ALPN: &[u8] = b"rampart/1";

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs a handshake to completion; true if both sides finished without error.
fn handshake_ok(client: &mut ClientConnection, server: &mut ServerConnection) -> bool {
    for _ in 0..10 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        if server.read_tls(&mut &buf[..]).is_ok() && server.process_new_packets().is_err() {
            return false;
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        if client.read_tls(&mut &buf[..]).is_ok() && client.process_new_packets().is_err() {
            return false;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return true;
        }
    }
    false
}

#[test]
fn saved_ca_loads_back_and_still_issues() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::create("Example Corp").unwrap();
    ca.save(dir.path()).unwrap();

    let loaded = CertificateAuthority::load(dir.path()).unwrap();
    assert_eq!(loaded.cert_pem(), ca.cert_pem());
    assert_eq!(loaded.key_pem(), ca.key_pem());

    // A certificate issued by the reloaded CA is trusted by a client holding the saved ca.pem.
    let issued = loaded.issue_server(&["gw1.example.com".to_owned()]).unwrap();
    let server = server_config(issued.cert_chain().unwrap(), issued.private_key().unwrap(), &[ALPN]).unwrap();
    let roots = load_certs(&dir.path().join(CA_CERT_FILE)).unwrap();
    let client = client_config(roots, &[ALPN]).unwrap();
    let name = ServerName::try_from("gw1.example.com").unwrap();
    let mut client = ClientConnection::new(Arc::new(client), name).unwrap();
    let mut server = ServerConnection::new(Arc::new(server)).unwrap();
    assert!(handshake_ok(&mut client, &mut server));
}

#[cfg(unix)]
#[test]
fn ca_key_is_0600_and_certificate_0644() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join(CA_KEY_FILE);
    // A pre-existing, world-readable key file must not keep its permissions when replaced.
    std::fs::write(&key_path, "old").unwrap();
    std::fs::set_permissions(&key_path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    CertificateAuthority::create("Example Corp")
        .unwrap()
        .save(dir.path())
        .unwrap();
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(mode(&dir.path().join(CA_CERT_FILE)), 0o644);
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn issued_cert_saves_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::create("Example Corp").unwrap();
    let issued = ca.issue_server(&["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("gateway.pem");
    let key_path = dir.path().join("gateway.key");
    issued.save(&cert_path, &key_path).unwrap();

    #[cfg(unix)]
    {
        assert_eq!(mode(&key_path), 0o600);
        assert_eq!(mode(&cert_path), 0o644);
    }
    let certs = load_certs(&cert_path).unwrap();
    let key = load_key(&key_path).unwrap();
    assert_eq!(certs, issued.cert_chain().unwrap());
    assert!(server_config(certs, key, &[ALPN]).is_ok());
}

#[test]
fn ca_with_someone_elses_key_does_not_load() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    CertificateAuthority::create("A").unwrap().save(dir_a.path()).unwrap();
    CertificateAuthority::create("B").unwrap().save(dir_b.path()).unwrap();
    std::fs::copy(dir_b.path().join(CA_KEY_FILE), dir_a.path().join(CA_KEY_FILE)).unwrap();

    let err = CertificateAuthority::load(dir_a.path()).unwrap_err();
    assert!(matches!(err, CertError::Tls(_)), "{err}");
    assert!(err.to_string().contains(CA_KEY_FILE), "{err}");
}

#[test]
fn leaf_certificate_is_not_loaded_as_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::create("Example Corp").unwrap();
    let leaf = ca.issue_server(&["localhost".to_owned()]).unwrap();
    leaf.save(&dir.path().join(CA_CERT_FILE), &dir.path().join(CA_KEY_FILE))
        .unwrap();
    let err = CertificateAuthority::load(dir.path()).unwrap_err();
    assert!(matches!(err, CertError::Parse { .. }), "{err}");
}

#[test]
fn missing_ca_directory_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = CertificateAuthority::load(&dir.path().join("nope")).unwrap_err();
    assert!(matches!(err, CertError::Io { .. }));
    assert!(err.to_string().contains(CA_CERT_FILE), "{err}");
}

#[test]
fn debug_output_never_contains_a_private_key() {
    let ca = CertificateAuthority::create("Example Corp").unwrap();
    let issued = ca.issue_client("laptop-42").unwrap();
    assert!(issued.key_pem().contains("PRIVATE KEY"));
    assert!(ca.key_pem().contains("PRIVATE KEY"));

    let issued_debug = format!("{issued:?}");
    assert!(!issued_debug.contains("PRIVATE KEY"), "{issued_debug}");
    assert!(issued_debug.contains("CERTIFICATE"));
    let ca_debug = format!("{ca:?}");
    assert!(!ca_debug.contains("PRIVATE KEY"), "{ca_debug}");
}

#[test]
fn bad_organisation_names_are_rejected() {
    for bad in ["", "   ", "Evil\nCorp", &"x".repeat(60)] {
        assert!(
            matches!(CertificateAuthority::create(bad), Err(CertError::InvalidName { .. })),
            "{bad:?}"
        );
    }
}
