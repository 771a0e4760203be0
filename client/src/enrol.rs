//! `rampart-connect enrol`: an employee enrols their own authenticator with their directory
//! password and the registration code the service desk gave them. The provisioner answers with
//! the new secret once (its QR code, drawn by the provisioner, shown here and saved to a private
//! file until the enrolment is confirmed); the first code the app shows confirms it, and the
//! token is active.

use crate::error::exit;
use crate::known::Overrides;
use crate::prompt::{prompt, read_password};
use crate::{ClientError, Home};
use rampart_core::profile::Profile;
use rampart_core::secret::Sensitive;
use rampart_core::text::printable;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `enrol` was given on the command line.
#[derive(Debug, Default)]
pub struct Request {
    /// The username (default: the profile's, else asked).
    pub user: Option<String>,
    /// The enrolment service, `https://HOST:PORT` (default: the profile's).
    pub provisioner: Option<String>,
    /// Read the password from standard input.
    pub password_stdin: bool,
}

/// `rampart-connect enrol`: the prompts, then [`enrol`]; its refusals are said here with their
/// own exit codes. The CA is `--ca`'s, else the profile's.
pub async fn run(home: &Home, overrides: &Overrides, request: Request) -> Result<u8, ClientError> {
    let profile = home.load_profile()?.ok_or_else(|| {
        ClientError::Local(
            "set up your profile first: rampart-connect setup LINE (the line from your enrolment letter)".into(),
        )
    })?;
    let said = |e: EnrolError| {
        eprintln!("{e}");
        e.exit_code()
    };
    let url = match enrol_url(request.provisioner.as_deref(), Some(&profile)) {
        Ok(url) => url,
        Err(e) => return Ok(said(e)),
    };
    let ca_pem = match &overrides.ca {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            ClientError::Local(format!("cannot read the CA file given by --ca {}: {e}", path.display()))
        })?,
        None => profile.ca_pem.clone(),
    };
    let username = match request.user.or_else(|| profile.user.clone()) {
        Some(user) => user,
        None => prompt("Username: ")?,
    };
    let password = read_password(request.password_stdin)?;
    // Hidden like the password: it is a credential, if only for one use.
    let registration_code = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password("Registration code (from your letter): ")
            .map(Sensitive::new)
            .map_err(|e| ClientError::Local(format!("cannot read the registration code: {e}")))?
    } else {
        Sensitive::new(prompt("Registration code (from your letter): ")?)
    };
    let credentials = Credentials {
        username,
        password,
        registration_code,
    };
    let ask = |question: &str| prompt(question).map_err(|e| EnrolError::Local(e.to_string()));
    let qr_file = home.dir().join("enrolment-qr.svg");
    match enrol(&url, &ca_pem, credentials, &qr_file, &ask).await {
        Ok(username) => {
            println!(
                "Your authenticator is enrolled and active for {}. Next: rampart-connect login",
                printable(&username)
            );
            Ok(exit::OK)
        }
        Err(e) => Ok(said(e)),
    }
}

/// What an enrolment needs from the person.
#[derive(Debug)]
pub struct Credentials {
    /// Username.
    pub username: String,
    /// Directory password.
    pub password: Sensitive<String>,
    /// The registration code from the letter, call or e-mail.
    pub registration_code: Sensitive<String>,
}

/// Why an enrolment did not finish, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// Set-up is missing (no profile, no enrolment address) or a local file failed.
    #[error("{0}")]
    Local(String),
    /// The provisioner could not be reached or is not trusted.
    #[error("{0}")]
    Unreachable(String),
    /// The username, password or registration code was not accepted, or the code was wrong
    /// too often.
    #[error("{0}")]
    Refused(String),
    /// The first code was wrong; the message says how many tries are left.
    #[error("{0}")]
    WrongCode(String),
    /// The provisioner cannot enrol now.
    #[error("{0}")]
    Unavailable(String),
}

impl EnrolError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Local(_) => exit::FAILURE,
            Self::Unreachable(_) => exit::UNREACHABLE,
            Self::Refused(_) | Self::WrongCode(_) => exit::CREDENTIALS,
            Self::Unavailable(_) => exit::BUSY,
        }
    }
}

#[derive(Serialize)]
struct StartRequest<'a> {
    username: &'a str,
    password: &'a str,
    registration_code: &'a str,
}

#[derive(Deserialize)]
struct Started {
    enrolment_id: String,
    username: String,
    secret: String,
    issuer: String,
    #[serde(default)]
    qr_svg: Option<String>,
    #[serde(default)]
    qr_text: Option<String>,
}

#[derive(Serialize)]
struct ConfirmRequest<'a> {
    username: &'a str,
    code: &'a str,
}

#[derive(Deserialize)]
struct Refusal {
    error: String,
    message: String,
}

/// The provisioner's enrolment address: `--provisioner`, else the profile's.
pub fn enrol_url(flag: Option<&str>, profile: Option<&Profile>) -> Result<String, EnrolError> {
    let url = flag
        .map(str::to_owned)
        .or_else(|| profile.and_then(|p| p.enrol_url.clone()))
        .ok_or_else(|| {
            EnrolError::Local(
                "no enrolment address: your profile has none; pass --provisioner https://HOST:PORT as your \
                 enrolment letter says, or ask the service desk"
                    .into(),
            )
        })?;
    let url = url.trim().trim_end_matches('/').to_owned();
    if !url.starts_with("https://") {
        return Err(EnrolError::Local(format!("{url} is not an https:// address")));
    }
    Ok(url)
}

/// Starts the enrolment, shows the QR code and the key, asks for the first code with `ask`
/// until it is accepted, and confirms. `qr_file` gets the QR code (SVG, owner-only) and is
/// removed once the enrolment is confirmed or abandoned.
pub async fn enrol(
    url: &str,
    ca_pem: &str,
    credentials: Credentials,
    qr_file: &Path,
    ask: &(dyn Fn(&str) -> Result<String, EnrolError> + Sync),
) -> Result<String, EnrolError> {
    let http = client(ca_pem)?;
    let response = http
        .post(format!("{url}/v1/enrolment"))
        .json(&StartRequest {
            username: &credentials.username,
            password: credentials.password.expose(),
            registration_code: credentials.registration_code.expose(),
        })
        .send()
        .await
        .map_err(|e| unreachable_error(url, &e))?;
    drop(credentials.password);
    let started: Started = answer(response).await?;
    let _qr = QrFile::write(qr_file, started.qr_svg.as_deref())?;
    println!(
        "Add this account to your authenticator app ({} for {}): scan the QR code",
        printable(&started.issuer),
        printable(&started.username)
    );
    if let Some(text) = &started.qr_text {
        println!("{}", rampart_core::text::printable_lines(text));
    }
    if qr_file.exists() {
        println!("(also saved, until you confirm, to {})", qr_file.display());
    }
    println!("or type this key into the app: {}", grouped(&started.secret));
    loop {
        let code = Sensitive::new(ask("Code the app shows now: ")?);
        let response = http
            .post(format!("{url}/v1/enrolment/{}/confirm", started.enrolment_id))
            .json(&ConfirmRequest {
                username: &started.username,
                code: code.expose(),
            })
            .send()
            .await
            .map_err(|e| unreachable_error(url, &e))?;
        match answer::<serde_json::Value>(response).await {
            Ok(_) => return Ok(started.username),
            Err(EnrolError::WrongCode(message)) => eprintln!("{message}"),
            Err(other) => return Err(other),
        }
    }
}

fn client(ca_pem: &str) -> Result<reqwest::Client, EnrolError> {
    let roots = rampart_certs::certs_from_pem(ca_pem)
        .map_err(|e| EnrolError::Local(format!("the organisation CA in your profile cannot be read: {e}")))?;
    let tls = rampart_certs::client_config(roots, &[b"http/1.1"])
        .map_err(|e| EnrolError::Local(format!("TLS configuration: {e}")))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        // A redirect would carry the password elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| EnrolError::Local(format!("cannot build the HTTPS client: {e}")))
}

/// The answer's body, or the refusal in the person's words.
async fn answer<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, EnrolError> {
    let status = response.status();
    if status.is_success() {
        return response
            .json()
            .await
            .map_err(|e| EnrolError::Unavailable(format!("unexpected answer from the provisioner: {e}")));
    }
    let refusal: Option<Refusal> = response.json().await.ok();
    let message = refusal.as_ref().map_or_else(
        || format!("the provisioner answered {status}"),
        |r| printable(&r.message),
    );
    Err(match refusal.as_ref().map(|r| r.error.as_str()) {
        Some("wrong_code") => EnrolError::WrongCode(message),
        Some("not_accepted" | "gone") => EnrolError::Refused(message),
        _ if status.is_server_error() => EnrolError::Unavailable(format!(
            "the provisioner cannot enrol you now ({message}); try again later"
        )),
        _ => EnrolError::Local(message),
    })
}

fn unreachable_error(url: &str, e: &reqwest::Error) -> EnrolError {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        reason = format!("{reason}: {inner}");
        source = inner.source();
    }
    if reason.contains("UnknownIssuer") || reason.contains("certificate") {
        EnrolError::Unreachable(format!(
            "the enrolment service at {url} is not trusted: its certificate is not signed by the organisation CA \
             in your profile ({reason}); check the address in your letter"
        ))
    } else {
        EnrolError::Unreachable(format!(
            "cannot reach the enrolment service at {url} ({reason}); check your Internet connection and the address"
        ))
    }
}

/// `JBSWY3DPEHPK3PXP` as `JBSW Y3DP EHPK 3PXP`, easier to type.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The QR code's file, removed when dropped: it holds the secret.
struct QrFile(Option<PathBuf>);

impl QrFile {
    fn write(path: &Path, svg: Option<&str>) -> Result<Self, EnrolError> {
        // An earlier run stopped before it could clean up (Ctrl-C, a kill): its secret goes.
        let _ = std::fs::remove_file(path);
        let Some(svg) = svg else { return Ok(Self(None)) };
        write_private(path, svg.as_bytes())
            .map_err(|e| EnrolError::Local(format!("cannot write the QR code to {}: {e}", path.display())))?;
        Ok(Self(Some(path.to_owned())))
    }
}

impl Drop for QrFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    // A new file, so it gets this mode whatever was there before.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_address_comes_from_the_flag_then_the_profile_and_must_be_https() {
        let mut profile = Profile {
            version: 1,
            organisation: String::new(),
            gateways: vec!["gw1:4433".into()],
            ca_pem: String::new(),
            user: None,
            forwards: Vec::new(),
            enrol_url: None,
        };
        assert!(matches!(enrol_url(None, Some(&profile)), Err(EnrolError::Local(m)) if m.contains("--provisioner")));
        profile.enrol_url = Some("https://prov.bank.example:8443/".into());
        assert_eq!(
            enrol_url(None, Some(&profile)).unwrap(),
            "https://prov.bank.example:8443"
        );
        assert_eq!(
            enrol_url(Some("https://other:1"), Some(&profile)).unwrap(),
            "https://other:1"
        );
        assert!(enrol_url(Some("http://plain:80"), None).is_err());
        assert_eq!(grouped("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
    }
}
