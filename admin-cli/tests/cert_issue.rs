//! `rampart cert issue` and `rampart cert show` run as the real binary: the issued certificate
//! is trusted by a client holding only the CA, for its DNS name and its IP address, in a real
//! rustls handshake; files are never silently replaced; CA problems name the folder and file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_certs::{CA_KEY_FILE, CertificateAuthority, client_config, load_certs, load_key, server_config};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

const ALPN: &[u8] = b"rampart/1";

/// Exit code for "the change conflicts with the current state" (README's table).
const EXIT_CONFLICT: i32 = 5;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// A temporary folder with an organisation CA saved in `ca/`.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::create("Test Org")
            .unwrap()
            .save(&dir.path().join("ca"))
            .unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn issue(&self, extra: &[&str]) -> Output {
        let ca = self.path("ca");
        let cert = self.path("gw2.pem");
        let key = self.path("gw2.key");
        let mut args = vec![
            "cert",
            "issue",
            "--ca-dir",
            ca.to_str().unwrap(),
            "--name",
            "gw2.test",
            "--name",
            "127.0.0.1",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        rampart(&args)
    }
}

fn rampart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .env_remove("RAMPART_URL")
        .env_remove("RAMPART_CA")
        .env_remove("RAMPART_API_KEY")
        .env_remove("RAMPART_GATEWAY_ADMIN")
        .env_remove("RAMPART_LOG_FORMAT")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A TLS 1.3 handshake between a server using `cert`/`key` and a client trusting only the CA in
/// `ca_dir`, dialling `name`.
fn handshake(ca_dir: &Path, cert: &Path, key: &Path, name: &str) -> Result<(), rustls::Error> {
    let roots = load_certs(&ca_dir.join("ca.pem")).unwrap();
    let client = client_config(roots, &[ALPN]).unwrap();
    let server = server_config(load_certs(cert).unwrap(), load_key(key).unwrap(), &[ALPN]).unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut client = ClientConnection::new(Arc::new(client), name).unwrap();
    let mut server = ServerConnection::new(Arc::new(server)).unwrap();
    for _ in 0..10 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut rest = &buf[..];
        while !rest.is_empty() {
            server.read_tls(&mut rest).unwrap();
            server.process_new_packets()?;
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        let mut rest = &buf[..];
        while !rest.is_empty() {
            client.read_tls(&mut rest).unwrap();
            client.process_new_packets()?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            assert_eq!(client.alpn_protocol(), Some(ALPN));
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

/// The base64 body lines of a PEM key: none of them may appear in any output.
fn key_lines(key: &Path) -> Vec<String> {
    std::fs::read_to_string(key)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn assert_no_key_in(out: &Output, key: &Path) {
    let text = stdout(out) + &stderr(out);
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    for line in key_lines(key) {
        assert!(!text.contains(&line), "key material in the output:\n{text}");
    }
}

#[test]
fn issued_certificate_is_trusted_by_name_and_ip() {
    let setup = Setup::new();
    let out = setup.issue(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (ca, cert, key) = (setup.path("ca"), setup.path("gw2.pem"), setup.path("gw2.key"));

    let text = stdout(&out);
    assert!(text.contains("CN=Test Org Rampart CA"), "{text}");
    assert!(text.contains("gw2.test, 127.0.0.1"), "{text}");
    assert!(text.contains("valid until"), "{text}");
    assert!(text.contains(&format!("cert = \"{}\"", cert.display())), "{text}");
    assert!(text.contains(&format!("key = \"{}\"", key.display())), "{text}");
    assert_no_key_in(&out, &key);

    #[cfg(unix)]
    {
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&cert), 0o644);
    }

    for name in ["gw2.test", "127.0.0.1"] {
        handshake(&ca, &cert, &key, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The check is real: a name the certificate lacks is refused, and so is a client that
    // trusts another CA.
    assert!(handshake(&ca, &cert, &key, "gw3.test").is_err());
    assert!(handshake(&ca, &cert, &key, "127.0.0.2").is_err());
    let other = setup.path("other-ca");
    CertificateAuthority::create("Test Org").unwrap().save(&other).unwrap();
    assert!(handshake(&other, &cert, &key, "gw2.test").is_err());
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let setup = Setup::new();
    let (cert, key) = (setup.path("gw2.pem"), setup.path("gw2.key"));
    assert!(setup.issue(&[]).status.success());
    let (cert_before, key_before) = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());

    let out = setup.issue(&[]);
    assert_eq!(out.status.code(), Some(EXIT_CONFLICT), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&cert.display().to_string()) && err.contains(&key.display().to_string()),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&cert).unwrap(), cert_before);
    assert_eq!(std::fs::read(&key).unwrap(), key_before);

    // Only one of the two existing is refused as well.
    std::fs::remove_file(&cert).unwrap();
    let out = setup.issue(&[]);
    assert_eq!(out.status.code(), Some(EXIT_CONFLICT), "{}", stderr(&out));
    assert!(!cert.exists());
    assert_eq!(std::fs::read(&key).unwrap(), key_before);

    let out = setup.issue(&["--force", "--days", "30"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(std::fs::read(&key).unwrap(), key_before);
    assert_no_key_in(&out, &key);
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);
    handshake(&setup.path("ca"), &cert, &key, "gw2.test").unwrap();
}

#[test]
fn ca_problems_name_the_folder_and_file() {
    let setup = Setup::new();
    let missing = setup.path("no-such-ca");
    let cert = setup.path("gw2.pem");
    let key = setup.path("gw2.key");
    let out = rampart(&[
        "cert",
        "issue",
        "--ca-dir",
        missing.to_str().unwrap(),
        "--name",
        "gw2.test",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(!cert.exists() && !key.exists());

    // A CA folder without its key.
    std::fs::remove_file(setup.path("ca").join(CA_KEY_FILE)).unwrap();
    let out = setup.issue(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot read the CA key ca.key in {}",
            setup.path("ca").display()
        )),
        "{err}"
    );
    assert!(!cert.exists() && !key.exists());
}

#[test]
fn bad_names_and_the_ca_key_itself_are_refused() {
    let setup = Setup::new();
    let ca = setup.path("ca");
    let out = setup.issue(&["--name", "not a name"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("\"not a name\""), "{}", stderr(&out));
    assert!(!setup.path("gw2.pem").exists() && !setup.path("gw2.key").exists());

    // Even --force never replaces the CA's key.
    let ca_key = ca.join(CA_KEY_FILE);
    let before = std::fs::read(&ca_key).unwrap();
    let out = rampart(&[
        "cert",
        "issue",
        "--ca-dir",
        ca.to_str().unwrap(),
        "--name",
        "gw2.test",
        "--cert",
        setup.path("gw2.pem").to_str().unwrap(),
        "--key",
        ca_key.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("CA's own file"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&ca_key).unwrap(), before);

    // A validity out of range is a usage error.
    assert_eq!(setup.issue(&["--days", "0"]).status.code(), Some(2));
}

#[test]
fn show_describes_the_issued_certificate() {
    let setup = Setup::new();
    assert!(setup.issue(&[]).status.success());
    let cert = setup.path("gw2.pem");
    let out = rampart(&["cert", "show", cert.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "subject      CN=gw2.test",
        "names        gw2.test, 127.0.0.1",
        "issuer       CN=Test Org Rampart CA, O=Test Org",
        "server (gateway or provisioner)",
        "sha-256",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }

    let out = rampart(&["--output", "json", "cert", "show", cert.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("\"server_auth\": true"), "{text}");
    assert!(text.contains("\"127.0.0.1\""), "{text}");

    let out = rampart(&["cert", "show", setup.path("missing.pem").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.pem"), "{}", stderr(&out));
}
