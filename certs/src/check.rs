//! Checks of a service's certificate and key files before it starts: every problem at once,
//! each naming the config setting that points at the file, so `check-config` can list them.

use crate::pem::{load_certs, load_key};
use crate::tls::{provider, server_config};
use crate::{CertError, describe_der};
use rampart_core::text::utc_minute;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::{ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A config setting that names a file, e.g. `("cert", "/etc/rampart/gateway.pem")`.
#[derive(Debug, Clone, Copy)]
pub struct FileSetting<'a> {
    /// The setting as written in the config file (`cert`, `directory.ca_file`).
    pub setting: &'a str,
    /// The file it names, already resolved against the config's folder.
    pub path: &'a Path,
}

impl<'a> FileSetting<'a> {
    /// The setting `setting` naming `path`.
    pub fn new(setting: &'a str, path: &'a Path) -> Self {
        Self { setting, path }
    }

    fn problem(&self, error: &CertError) -> String {
        format!("{}: {error}", self.setting)
    }
}

/// Every problem that would stop a TLS server from starting with `cert` and `key`: either
/// file missing or unreadable, no certificate or key in it, a key that does not belong to
/// the certificate, a certificate not yet valid or expired at `now` (Unix seconds), or one
/// made for clients rather than servers. Empty when the pair is usable.
pub fn server_pair_problems(cert: FileSetting<'_>, key: FileSetting<'_>, now: i64) -> Vec<String> {
    let mut problems = Vec::new();
    let chain = load_certs(cert.path).map_err(|e| problems.push(cert.problem(&e))).ok();
    let private_key = load_key(key.path).map_err(|e| problems.push(key.problem(&e))).ok();
    let Some(chain) = chain else {
        return problems;
    };
    if let Some(leaf) = chain.first() {
        match describe_der(leaf) {
            Ok(summary) => {
                if now < summary.not_before {
                    problems.push(format!(
                        "{}: the certificate in {} is not valid until {} (is this machine's clock right?)",
                        cert.setting,
                        cert.path.display(),
                        utc_minute(summary.not_before)
                    ));
                } else if now > summary.not_after {
                    problems.push(format!(
                        "{}: the certificate in {} expired on {}: issue a new one (`rampart cert issue`)",
                        cert.setting,
                        cert.path.display(),
                        utc_minute(summary.not_after)
                    ));
                }
                if summary.is_ca {
                    problems.push(format!(
                        "{}: {} holds a CA certificate; give the server's own certificate (`rampart cert issue`)",
                        cert.setting,
                        cert.path.display()
                    ));
                } else if summary.client_auth && !summary.server_auth {
                    problems.push(format!(
                        "{}: the certificate in {} is a device (client) certificate, not a server certificate",
                        cert.setting,
                        cert.path.display()
                    ));
                }
            }
            Err(e) => problems.push(cert.problem(&e)),
        }
    }
    if let Some(private_key) = private_key
        && server_config(chain, private_key, &[b"check"]).is_err()
    {
        problems.push(format!(
            "{}: the key in {} does not belong to the certificate in {} ({}); give the key made with that certificate",
            key.setting,
            key.path.display(),
            cert.path.display(),
            cert.setting
        ));
    }
    problems
}

/// A problem when the server certificate `cert` was not issued by the organisation CA in
/// `ca_file` (clients holding that CA would refuse the server), checked as a client would for
/// the certificate's first name at `now`. Nothing when either file cannot be read: the other
/// checks name that.
pub fn issued_by_problems(cert: FileSetting<'_>, ca_file: &Path, now: i64) -> Vec<String> {
    let (Ok(chain), Ok(cas)) = (load_certs(cert.path), load_certs(ca_file)) else {
        return Vec::new();
    };
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Vec::new();
    };
    let Ok(summary) = describe_der(leaf) else {
        return Vec::new();
    };
    let name = match (summary.dns_names.first(), summary.ip_addresses.first()) {
        (Some(dns), _) => ServerName::try_from(dns.clone()).ok(),
        (None, Some(ip)) => Some(ServerName::IpAddress((*ip).into())),
        (None, None) => None,
    };
    let Some(name) = name else {
        return vec![format!(
            "{}: the certificate in {} names no DNS name or IP address: clients cannot check it",
            cert.setting,
            cert.path.display()
        )];
    };
    let mut roots = RootCertStore::empty();
    for ca in cas {
        let _ = roots.add(ca);
    }
    let Ok(verifier) = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build() else {
        return Vec::new();
    };
    let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
    match verifier.verify_server_cert(leaf, intermediates, &name, &[], at) {
        Ok(_) => Vec::new(),
        // Validity has its own message above.
        Err(rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        )) => Vec::new(),
        Err(e) => vec![format!(
            "{}: the certificate in {} is not accepted under the organisation CA in {} ({e}): clients holding that \
             CA would refuse this server; issue its certificate with `rampart cert issue --ca-dir {}`",
            cert.setting,
            cert.path.display(),
            ca_file.display(),
            ca_file.parent().unwrap_or(Path::new(".")).display()
        )],
    }
}

/// The checks of [`server_pair_problems`] for a service's `cert` and `key` settings and, when
/// the organisation CA is at hand in `STATE_DIR/ca/ca.pem` (the provisioner's host), of
/// [`issued_by_problems`]: a certificate from another CA would start and be refused by every
/// client.
pub fn service_cert_problems(cert: &Path, key: &Path, state_dir: &Path, now: i64) -> Vec<String> {
    let cert = FileSetting::new("cert", cert);
    let mut problems = server_pair_problems(cert, FileSetting::new("key", key), now);
    let org_ca = state_dir.join("ca").join(crate::CA_CERT_FILE);
    if org_ca.is_file() {
        problems.extend(issued_by_problems(cert, &org_ca, now));
    }
    problems
}

/// Every problem with a CA certificate file a service trusts (`directory.ca_file`).
pub fn ca_file_problems(ca: FileSetting<'_>) -> Vec<String> {
    match load_certs(ca.path) {
        Ok(_) => Vec::new(),
        Err(e) => vec![ca.problem(&e)],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{CertificateAuthority, Validity};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn now() -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
    }

    #[test]
    fn a_matching_pair_has_no_problems_and_each_fault_names_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::create("Check Org").unwrap();
        let server = ca.issue_server(&["gw.example".to_owned()]).unwrap();
        let other = ca.issue_server(&["gw2.example".to_owned()]).unwrap();
        let (cert, key) = (dir.path().join("gw.pem"), dir.path().join("gw.key"));
        server.save(&cert, &key).unwrap();
        let (other_cert, other_key) = (dir.path().join("o.pem"), dir.path().join("o.key"));
        other.save(&other_cert, &other_key).unwrap();
        let pair =
            |c: &Path, k: &Path| server_pair_problems(FileSetting::new("cert", c), FileSetting::new("key", k), now());
        assert!(pair(&cert, &key).is_empty(), "{:?}", pair(&cert, &key));

        let mismatched = pair(&cert, &other_key);
        assert_eq!(mismatched.len(), 1, "{mismatched:?}");
        assert!(mismatched[0].starts_with("key: ") && mismatched[0].contains("does not belong"));

        let missing = pair(&dir.path().join("none.pem"), &dir.path().join("none.key"));
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].starts_with("cert: ") && missing[0].contains("none.pem"));
        assert!(missing[1].starts_with("key: ") && missing[1].contains("none.key"));
        // The path and the operating system's reason are each said once.
        assert_eq!(missing[0].matches("No such file").count(), 1, "{}", missing[0]);

        // The key file given as the certificate and the other way round.
        let swapped = pair(&key, &cert);
        assert_eq!(swapped.len(), 2, "{swapped:?}");

        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca.cert_pem()).unwrap();
        assert!(ca_file_problems(FileSetting::new("directory.ca_file", &ca_pem)).is_empty());
        let ca_problem = ca_file_problems(FileSetting::new("directory.ca_file", &key));
        assert!(ca_problem[0].starts_with("directory.ca_file: "), "{ca_problem:?}");
    }

    #[test]
    fn a_certificate_from_another_ca_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ours = CertificateAuthority::create("Check Org").unwrap();
        let theirs = CertificateAuthority::create("Dev Org").unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ours.cert_pem()).unwrap();
        for (name, ca) in [("good", &ours), ("stray", &theirs)] {
            ca.issue_server(&["gw1.bank.example".to_owned()])
                .unwrap()
                .save(
                    &dir.path().join(format!("{name}.pem")),
                    &dir.path().join(format!("{name}.key")),
                )
                .unwrap();
        }
        let good = dir.path().join("good.pem");
        assert!(issued_by_problems(FileSetting::new("cert", &good), &ca_pem, now()).is_empty());
        let stray = dir.path().join("stray.pem");
        let problems = issued_by_problems(FileSetting::new("cert", &stray), &ca_pem, now());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("cert: ") && problems[0].contains("not accepted under"),
            "{problems:?}"
        );
    }

    #[test]
    fn an_expired_or_ca_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::create("Check Org").unwrap();
        let long_ago = SystemTime::now() - Duration::from_secs(40 * 86_400);
        let old = ca
            .issue_server_with_validity(&["gw.example".to_owned()], Validity::new(long_ago, 30))
            .unwrap();
        let (cert, key) = (dir.path().join("gw.pem"), dir.path().join("gw.key"));
        old.save(&cert, &key).unwrap();
        let problems = server_pair_problems(FileSetting::new("cert", &cert), FileSetting::new("key", &key), now());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("expired"), "{problems:?}");
    }
}
