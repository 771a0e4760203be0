//! The provisioner API client: HTTPS that trusts only the organisation CA, the operator's API
//! key as a bearer token, and API errors turned into plain messages and exit codes. The same
//! client also talks to a gateway's admin API (`--gateway-admin`), which answers in the same way.

use anyhow::Context as _;
use rampart_api::provisioner::ApiError;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where the provisioner is and how to authenticate (flags or `RAMPART_*` variables).
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// Provisioner URL, e.g. https://provisioner.example:8443.
    #[arg(long, env = "RAMPART_URL", global = true)]
    url: Option<String>,
    /// Operator API key.
    #[arg(long, env = "RAMPART_API_KEY", global = true, hide_env_values = true)]
    api_key: Option<String>,
    /// CA certificate (PEM) the provisioner's and gateway's certificates must chain to.
    #[arg(long, env = "RAMPART_CA", global = true)]
    ca: Option<PathBuf>,
    /// Gateway admin URL for `sessions` and `policy`, e.g. https://gateway.example:9443.
    #[arg(long, env = "RAMPART_GATEWAY_ADMIN", global = true, value_name = "URL")]
    gateway_admin: Option<String>,
}

impl Connection {
    /// The CA certificate file given with `--ca` or `RAMPART_CA`.
    pub fn ca_path(&self) -> Option<&std::path::Path> {
        self.ca.as_deref()
    }
}

/// A failure with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// What to tell the operator.
    pub message: String,
    /// Exit code (see the README's table).
    pub code: u8,
}

/// Exit codes of `rampart`.
pub mod exit {
    /// Generic failure (bad input, local I/O).
    pub const FAILURE: u8 = 1;
    /// The command cannot be used as given, e.g. `rampart dev` in a build without it.
    pub const USAGE: u8 = 2;
    /// Missing, wrong or insufficient API key.
    pub const AUTH: u8 = 3;
    /// The person, token or operator does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// The change conflicts with the current state.
    pub const CONFLICT: u8 = 5;
    /// The provisioner or the directory cannot be reached.
    pub const UNAVAILABLE: u8 = 6;
    /// The server's certificate is not trusted: not signed by the CA given, not for the URL's
    /// name, or expired.
    pub const UNTRUSTED: u8 = 7;
    /// The audit trail does not verify: a record was edited, removed, moved or cut.
    pub const TAMPERED: u8 = 8;
    /// A bulk run finished but some rows were refused.
    pub const PARTIAL: u8 = 10;
}

impl CliError {
    /// A generic failure.
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: exit::FAILURE,
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(err: anyhow::Error) -> Self {
        Self::failure(format!("{err:#}"))
    }
}

/// An authenticated client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    api_key: String,
    /// What the server is called in messages: `provisioner` or `gateway`.
    service: &'static str,
    /// The CA file the server's certificate must chain to, and where it was named.
    ca: TrustSource,
}

/// The CA file a client trusts and how the operator named it, for messages.
#[derive(Debug, Clone)]
struct TrustSource {
    file: PathBuf,
    /// `--ca` or `RAMPART_CA`.
    named_by: &'static str,
}

impl Client {
    /// Builds the provisioner client from flags or environment.
    pub fn new(connection: &Connection) -> Result<Self, CliError> {
        Self::build(
            connection,
            connection.url.as_deref(),
            "provisioner",
            "no provisioner URL: set RAMPART_URL or pass --url",
        )
    }

    /// Builds a client for a gateway's admin API from flags or environment.
    pub fn gateway_admin(connection: &Connection) -> Result<Self, CliError> {
        Self::build(
            connection,
            connection.gateway_admin.as_deref(),
            "gateway",
            "no gateway admin URL: set RAMPART_GATEWAY_ADMIN or pass --gateway-admin \
             (e.g. https://gateway.example:9443)",
        )
    }

    /// The server's base URL, e.g. `https://gateway.example:9443`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn build(
        connection: &Connection,
        url: Option<&str>,
        service: &'static str,
        missing: &str,
    ) -> Result<Self, CliError> {
        let base = url
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| CliError::failure(missing))?;
        let base = base.trim().trim_end_matches('/').to_owned();
        if !base.starts_with("https://") {
            return Err(CliError::failure(format!("{base} is not an https:// URL")));
        }
        let api_key = connection
            .api_key
            .clone()
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| CliError {
                message: "no API key: set RAMPART_API_KEY or pass --api-key".into(),
                code: exit::AUTH,
            })?;
        let ca = connection
            .ca
            .as_ref()
            .ok_or_else(|| CliError::failure("no CA certificate: set RAMPART_CA or pass --ca"))?;
        // The certificate error names the file and the OS error once; this says what the file is for.
        let roots = rampart_certs::load_certs(ca).map_err(|e| {
            CliError::failure(format!(
                "cannot read the CA certificate given with {}: {e}",
                ca_named_by()
            ))
        })?;
        let tls = rampart_certs::client_config(roots, &[b"http/1.1"]).context("TLS configuration")?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .context("cannot build the HTTPS client")?;
        Ok(Self {
            http,
            base,
            api_key: api_key.trim().to_owned(),
            service,
            ca: TrustSource {
                file: ca.clone(),
                named_by: ca_named_by(),
            },
        })
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.send(Method::GET, path, None::<&()>).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, CliError> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// `DELETE path`, expecting no body back.
    pub async fn delete(&self, path: &str) -> Result<(), CliError> {
        let response = self.request(Method::DELETE, path, None::<&()>).await?;
        check(response, self.service).await.map(|_| ())
    }

    /// `DELETE path`, reading a JSON answer.
    pub async fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.send(Method::DELETE, path, None::<&()>).await
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, CliError> {
        let response = check(self.request(method, path, body).await?, self.service).await?;
        response
            .json::<T>()
            .await
            .map_err(|e| CliError::failure(format!("unexpected answer from the {}: {e}", self.service)))
    }

    async fn request<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, CliError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.api_key);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.map_err(|e| self.send_failure(&e))
    }

    /// A request that got no answer: a certificate the CA does not vouch for (exit 7), or a
    /// server that cannot be reached (exit 6). The URL is said once, by this message.
    fn send_failure(&self, err: &reqwest::Error) -> CliError {
        if let Some(tls) = tls_error(err) {
            return CliError {
                message: untrusted_message(self.service, &self.base, &self.ca, tls),
                code: exit::UNTRUSTED,
            };
        }
        CliError {
            message: format!(
                "cannot reach the {} at {}: {}",
                self.service,
                self.base,
                error_chain(err)
            ),
            code: exit::UNAVAILABLE,
        }
    }
}

/// Percent-encodes one path segment (usernames may hold `@`, `/`, spaces).
pub fn segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

async fn check(response: reqwest::Response, service: &str) -> Result<reqwest::Response, CliError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let code = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => exit::AUTH,
        StatusCode::NOT_FOUND => exit::NOT_FOUND,
        StatusCode::CONFLICT => exit::CONFLICT,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => exit::UNAVAILABLE,
        _ => exit::FAILURE,
    };
    let message = match response.json::<ApiError>().await {
        Ok(error) => match status {
            StatusCode::UNAUTHORIZED => "the API key was refused (missing, wrong or withdrawn)".to_owned(),
            _ => error.message,
        },
        Err(_) => format!("the {service} answered {status}"),
    };
    Err(CliError { message, code })
}

/// Which of `--ca` and `RAMPART_CA` named the CA file: the flag wins when both are there.
fn ca_named_by() -> &'static str {
    let flag = std::env::args_os().any(|arg| {
        let arg = arg.to_string_lossy();
        arg == "--ca" || arg.starts_with("--ca=")
    });
    if flag { "--ca" } else { "RAMPART_CA" }
}

/// The TLS failure somewhere in a request error's causes. hyper passes it on inside an
/// `io::Error` (itself inside another), whose `source()` skips the wrapped error, so each
/// `io::Error` is opened as well as followed.
fn tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            let inner: &(dyn std::error::Error + 'static) = inner;
            if let Some(tls) = tls_error(inner) {
                return Some(tls);
            }
        }
        current = err.source();
    }
    None
}

/// What to tell an operator whose server presented a certificate rustls refused.
fn untrusted_message(service: &str, base: &str, ca: &TrustSource, err: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let file = ca.file.display();
    let from = ca.named_by;
    let presented = format!("the {service} at {base} presented a certificate");
    match err {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "{presented} not signed by the CA in {file} (from {from}); pass the organisation CA the {service}'s              certificate was issued from (the ca.pem that `rampart-provisioner init` made) with --ca or RAMPART_CA              ({err})"
        ),
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => format!(
            "{presented} that is not for the name in the URL (signed by the CA in {file}, from {from}); use the              name the certificate was issued for (see `rampart cert show` on it) or issue one for this name with              `rampart cert issue` ({err})"
        ),
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => format!(
            "{presented} that is expired or not valid yet (CA {file}, from {from}); check this computer's clock,              or renew the certificate with `rampart cert issue` ({err})"
        ),
        other => format!("{presented} that was refused (CA {file}, from {from}): {other}"),
    }
}

/// An error and its causes, each said once: reqwest's own "for url (…)" is left out (the
/// message names the URL), and a cause whose text the previous one already holds is skipped.
fn error_chain(err: &dyn std::error::Error) -> String {
    let own = err.to_string();
    let mut text = match own.split_once(" for url (") {
        Some((head, _)) => head.to_owned(),
        None => own,
    };
    let mut last = text.clone();
    let mut source = err.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !last.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        last = said;
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> TrustSource {
        TrustSource {
            file: PathBuf::from("/etc/rampart/other-ca.pem"),
            named_by: "RAMPART_CA",
        }
    }

    #[test]
    fn a_certificate_from_another_ca_is_said_to_be_not_signed_by_the_file_given() {
        let err = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let text = untrusted_message("provisioner", "https://prov:8443", &ca(), &err);
        assert!(
            text.starts_with(
                "the provisioner at https://prov:8443 presented a certificate not signed by the CA in \
                 /etc/rampart/other-ca.pem (from RAMPART_CA)"
            ),
            "{text}"
        );
        let err = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        let text = untrusted_message("gateway", "https://gw:9443", &ca(), &err);
        assert!(text.contains("not for the name in the URL"), "{text}");
        let err = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert!(untrusted_message("gateway", "https://gw:9443", &ca(), &err).contains("expired"));
    }

    #[test]
    fn the_tls_failure_is_found_inside_nested_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, tls.clone());
        let outer = std::io::Error::other(inner);
        assert_eq!(tls_error(&outer), Some(&tls));
        assert_eq!(tls_error(&std::io::Error::other("refused")), None);
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn a_chain_says_the_url_and_each_cause_once() {
        let err = Layer(
            "error sending request for url (https://prov:8443/v1/tokens)",
            Some(Box::new(Layer(
                "tcp connect error: Connection refused (os error 111)",
                Some(Box::new(Layer("Connection refused (os error 111)", None))),
            ))),
        );
        assert_eq!(
            error_chain(&err),
            "error sending request: tcp connect error: Connection refused (os error 111)"
        );
    }
}
