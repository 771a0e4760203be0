//! The provisioner API client: HTTPS that trusts only the organisation CA, the operator's API
//! key as a bearer token, and API errors turned into plain messages and exit codes. The same
//! client also talks to a gateway's admin API (`--gateway-admin`), which answers in the same way.

use anyhow::Context;
use rampart_provisioner::api::ApiError;
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
    /// Missing, wrong or insufficient API key.
    pub const AUTH: u8 = 3;
    /// The person, token or operator does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// The change conflicts with the current state.
    pub const CONFLICT: u8 = 5;
    /// The provisioner or the directory cannot be reached.
    pub const UNAVAILABLE: u8 = 6;
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
        let roots = rampart_certs::load_certs(ca).with_context(|| format!("CA certificate {}", ca.display()))?;
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
        request.send().await.map_err(|e| CliError {
            message: format!(
                "cannot reach the {} at {}: {}",
                self.service,
                self.base,
                error_chain(&e)
            ),
            code: exit::UNAVAILABLE,
        })
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

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
