//! A connection to a gateway: QUIC handshake against the organisation CA, the control stream
//! (hello, login, resume, logout), and data streams opened per forwarded connection. A login
//! binds the session to a new key; a resume proves that key on this connection and takes the
//! session's next ticket.

use crate::{ClientError, ClientKey, ResumeCredential};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Endpoint, IdleTimeout, TransportConfig, VarInt};
use rampart_core::io::{read_frame, write_frame};
use rampart_core::protocol::{ClientMessage, ServerMessage, SessionGrant};
use rampart_core::resume_proof::{EXPORTER_LABEL, EXPORTER_LEN};
use rampart_core::secret::Sensitive;
use rampart_core::text::printable;
use rampart_core::{ErrorCode, PROTOCOL_VERSION};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long name resolution may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the answer to an open: beyond the gateway's largest connect timeout
/// (120 s), so the gateway's own `target_timeout` arrives first. A dead link is noticed sooner
/// by the [`Tunnel`](crate::tunnel::Tunnel)'s liveness check.
const OPEN_REPLY_TIMEOUT: Duration = Duration::from_secs(150);

/// The QUIC application close code with which a gateway closes a connection that did not log
/// in before its login deadline (`settings.login_deadline_secs`, gateway/src/connection.rs).
pub const CLOSE_LOGIN_DEADLINE: u32 = 0x10;

/// Connects to the first of `gateways` that answers, in order. A gateway that does not answer
/// is passed over; one whose certificate is not trusted, or a local problem, stops the search.
pub async fn connect_any(gateways: &[String], ca_pem: &str) -> Result<(String, GatewayClient), ClientError> {
    let mut last = None;
    for gateway in gateways {
        match GatewayClient::connect(gateway, ca_pem).await {
            Ok(client) => return Ok((gateway.clone(), client)),
            Err(e) if e.is_connection_failure() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ClientError::Local("no gateway to connect to".into())))
}

/// A live connection to one gateway.
#[derive(Debug)]
pub struct GatewayClient {
    endpoint: Endpoint,
    connection: quinn::Connection,
    control: Mutex<(quinn::SendStream, quinn::RecvStream)>,
    server_time: i64,
    /// Set when this side gave the connection up because the gateway stopped answering.
    abandoned: AtomicBool,
    /// What resumes the session this connection logged in to or resumed, as of its grant.
    credential: std::sync::Mutex<Option<ResumeCredential>>,
}

impl GatewayClient {
    /// Connects to `gateway` (`HOST:PORT`), trusting only the CA certificates in `ca_pem`, and
    /// exchanges `Hello`/`Welcome`.
    pub async fn connect(gateway: &str, ca_pem: &str) -> Result<Self, ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable {
            gateway: gateway.to_owned(),
            reason,
        };
        let (host, addr) = resolve(gateway).await.map_err(unreachable)?;
        let ca =
            rampart_certs::certs_from_pem(ca_pem).map_err(|e| ClientError::Local(format!("organisation CA: {e}")))?;
        let mut tls = rampart_certs::client_config(ca.clone(), &[rampart_core::ALPN])
            .map_err(|e| ClientError::Local(e.to_string()))?;
        let refused = Arc::new(std::sync::Mutex::new(None));
        let verifier = Recording::new(ca, tls.crypto_provider().clone(), refused.clone())?;
        tls.dangerous().set_certificate_verifier(Arc::new(verifier));
        let crypto = QuicClientConfig::try_from(tls).map_err(|e| ClientError::Local(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::new(transport()));
        let bind: SocketAddr = if addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }
            .parse()
            .map_err(|_| unreachable("bad bind address".into()))?;
        let mut endpoint = Endpoint::client(bind).map_err(|e| unreachable(format!("cannot open a UDP socket: {e}")))?;
        endpoint.set_default_client_config(config);
        let connecting = endpoint.connect(addr, &host).map_err(|e| unreachable(e.to_string()))?;
        let connection = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
            .await
            .map_err(|_| unreachable("no answer (is UDP blocked, or the gateway down?)".into()))?
            .map_err(|e| {
                let recorded = refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                match (recorded, e) {
                    (Some(problem), _) => ClientError::Untrusted {
                        gateway: gateway.to_owned(),
                        reason: problem.to_string(),
                        problem,
                    },
                    (None, quinn::ConnectionError::TransportError(t)) if t.to_string().contains("certificate") => {
                        ClientError::Untrusted {
                            gateway: gateway.to_owned(),
                            reason: format!("its certificate is not signed by your organisation's CA ({t})"),
                            problem: CertificateProblem::NotOurs,
                        }
                    }
                    (None, other) => unreachable(describe_connection_error(&other)),
                }
            })?;
        let greeting = async {
            let (mut send, mut recv) = connection.open_bi().await.map_err(lost)?;
            let hello = ClientMessage::Hello {
                versions: vec![PROTOCOL_VERSION],
                client: concat!("rampart-connect/", env!("CARGO_PKG_VERSION")).into(),
            };
            write_frame(&mut send, &hello)
                .await
                .map_err(|e| ClientError::ConnectionLost(e.to_string()))?;
            match read_reply(&mut recv, REPLY_TIMEOUT).await? {
                ServerMessage::Welcome { server_time, .. } => Ok((send, recv, server_time)),
                other => Err(unexpected(other)),
            }
        };
        let (send, recv, server_time) = tokio::time::timeout(REPLY_TIMEOUT, greeting)
            .await
            .map_err(|_| ClientError::ConnectionLost("the gateway did not greet in time".into()))??;
        Ok(Self {
            endpoint,
            connection,
            control: Mutex::new((send, recv)),
            server_time,
            abandoned: AtomicBool::new(false),
            credential: std::sync::Mutex::new(None),
        })
    }

    /// UDP datagrams received on this connection so far: if it does not grow while a request is
    /// outstanding, the gateway is not even acknowledging it.
    pub fn datagrams_received(&self) -> u64 {
        self.connection.stats().udp_rx.datagrams
    }

    /// The gateway's clock at connection time, unix seconds.
    pub fn server_time(&self) -> i64 {
        self.server_time
    }

    /// Logs in with password and code, binding the session to a new key; afterwards
    /// [`credential`](Self::credential) resumes it.
    pub async fn login(
        &self,
        username: &str,
        password: Sensitive<String>,
        otp: Sensitive<String>,
    ) -> Result<SessionGrant, ClientError> {
        let key = ClientKey::generate()?;
        let grant = self
            .request_grant(ClientMessage::Login {
                username: username.to_owned(),
                password,
                otp,
                client_key: Some(key.public_key()?),
            })
            .await?;
        let ticket = grant
            .ticket
            .clone()
            .ok_or_else(|| ClientError::Protocol("no session ticket in the answer".into()))?;
        self.remember(ResumeCredential {
            session_id: grant.session_id.clone(),
            ticket,
            key,
        });
        Ok(grant)
    }

    /// Attaches this connection to an existing session, proving the session's key on this
    /// connection. On success `credential` holds the session's next ticket: the one presented
    /// is spent, and presenting it again ends the session.
    pub async fn resume(&self, credential: &mut ResumeCredential) -> Result<SessionGrant, ClientError> {
        let mut exporter = [0u8; EXPORTER_LEN];
        self.connection
            .export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
            .map_err(|_| ClientError::Local("cannot derive the resume proof from this connection".into()))?;
        let proof = credential.key.prove(&exporter, &credential.session_id)?;
        let grant = self
            .request_grant(ClientMessage::Resume {
                ticket: credential.ticket.clone(),
                proof,
            })
            .await?;
        let ticket = grant
            .ticket
            .clone()
            .ok_or_else(|| ClientError::Protocol("no new session ticket in the answer".into()))?;
        credential.ticket = ticket;
        self.remember(credential.clone());
        Ok(grant)
    }

    /// What resumes the session of this connection's latest login or resume.
    pub fn credential(&self) -> Option<ResumeCredential> {
        self.credential
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn remember(&self, credential: ResumeCredential) {
        *self
            .credential
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(credential);
    }

    /// Ends the session on the gateway.
    pub async fn logout(&self) -> Result<(), ClientError> {
        match self.request(&ClientMessage::Logout).await? {
            ServerMessage::LoggedOut => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Opens a data stream to `resource`; on success, raw bytes flow on the returned halves.
    pub async fn open(&self, resource: &str) -> Result<(quinn::SendStream, quinn::RecvStream), ClientError> {
        let started = tokio::time::Instant::now();
        let request = async {
            let (mut send, recv) = self.connection.open_bi().await.map_err(lost)?;
            let open = ClientMessage::Open {
                resource: resource.to_owned(),
            };
            write_frame(&mut send, &open)
                .await
                .map_err(|e| ClientError::ConnectionLost(e.to_string()))?;
            Ok::<_, ClientError>((send, recv))
        };
        let (send, mut recv) = tokio::time::timeout(OPEN_REPLY_TIMEOUT, request).await.map_err(|_| {
            ClientError::ConnectionLost("the gateway gave no room for a new connection in time".into())
        })??;
        let left = OPEN_REPLY_TIMEOUT.saturating_sub(started.elapsed());
        match read_reply(&mut recv, left).await? {
            ServerMessage::Opened => Ok((send, recv)),
            other => Err(unexpected(other)),
        }
    }

    /// Resolves when the QUIC connection has closed, with why (the gateway's close code and
    /// reason, a timeout, or this side closing it).
    pub async fn closed(&self) -> quinn::ConnectionError {
        self.connection.closed().await
    }

    /// True while the QUIC connection is up.
    pub fn is_open(&self) -> bool {
        self.connection.close_reason().is_none()
    }

    /// Whether the gateway closed this connection because it had not logged in by the
    /// gateway's login deadline (so a login sent on it was never checked).
    pub fn closed_by_login_deadline(&self) -> bool {
        matches!(
            self.connection.close_reason(),
            Some(quinn::ConnectionError::ApplicationClosed(close))
                if close.error_code == VarInt::from_u32(CLOSE_LOGIN_DEADLINE)
        )
    }

    /// Gives the connection up without waiting (it is taken for dead).
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
        self.connection.close(VarInt::from_u32(0), b"gone");
    }

    /// Whether the connection ended because the gateway went silent (given up by
    /// [`abandon`](Self::abandon), or QUIC's idle timeout) rather than being closed or reset
    /// by the gateway: a silent gateway is likely dead, a closing one likely restarting.
    pub fn went_silent(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
            || matches!(self.connection.close_reason(), Some(quinn::ConnectionError::TimedOut))
    }

    /// Closes the connection and waits briefly for the close to reach the gateway.
    pub async fn close(&self) {
        self.connection.close(VarInt::from_u32(0), b"bye");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }

    async fn request_grant(&self, message: ClientMessage) -> Result<SessionGrant, ClientError> {
        match self.request(&message).await? {
            ServerMessage::SessionGranted(grant) => Ok(grant),
            other => Err(unexpected(other)),
        }
    }

    async fn request(&self, message: &ClientMessage) -> Result<ServerMessage, ClientError> {
        let exchange = async {
            let mut control = self.control.lock().await;
            let (send, recv) = &mut *control;
            write_frame(send, message)
                .await
                .map_err(|e| ClientError::ConnectionLost(e.to_string()))?;
            read_reply(recv, REPLY_TIMEOUT).await
        };
        tokio::time::timeout(REPLY_TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::ConnectionLost("the gateway did not answer in time".into()))?
    }
}

/// What is wrong with a gateway's certificate, as far as this client can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateProblem {
    /// Not signed by the organisation CA this client trusts (or not readable as a certificate).
    NotOurs,
    /// Signed by the organisation CA, but made for other names than the one dialled.
    WrongName {
        /// The name (or address) the client dialled, from the profile or `--gateway`.
        dialled: String,
        /// The names and addresses the certificate covers.
        covers: Vec<String>,
    },
    /// Past its end date by this computer's clock (the gateway's, or its CA's).
    Expired {
        /// The end date, unix seconds, when known.
        not_after: Option<i64>,
    },
    /// Before its start date by this computer's clock.
    NotYetValid {
        /// The start date, unix seconds, when known.
        not_before: Option<i64>,
    },
}

impl CertificateProblem {
    /// The problem `error` (from verifying the certificate `end_entity` for `dialled`) means.
    fn of(error: &rustls::Error, end_entity: &CertificateDer<'_>, dialled: &ServerName<'_>) -> Self {
        use rustls::CertificateError as E;
        let rustls::Error::InvalidCertificate(error) = error else {
            return Self::NotOurs;
        };
        match error {
            E::NotValidForName | E::NotValidForNameContext { .. } => Self::WrongName {
                dialled: dialled.to_str().into_owned(),
                covers: rampart_certs::describe_der(end_entity)
                    .map(|summary| summary.names().iter().map(|n| printable(n)).collect())
                    .unwrap_or_default(),
            },
            E::Expired => Self::Expired { not_after: None },
            E::ExpiredContext { not_after, .. } => Self::Expired {
                not_after: i64::try_from(not_after.as_secs()).ok(),
            },
            E::NotValidYet => Self::NotYetValid { not_before: None },
            E::NotValidYetContext { not_before, .. } => Self::NotYetValid {
                not_before: i64::try_from(not_before.as_secs()).ok(),
            },
            _ => Self::NotOurs,
        }
    }

    /// The names the certificate covers, as a list: "gw1.bank.example, 127.0.0.1".
    pub fn covered(covers: &[String]) -> String {
        if covers.is_empty() {
            "no names at all".to_owned()
        } else {
            covers.join(", ")
        }
    }
}

impl std::fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotOurs => write!(f, "its certificate is not signed by your organisation's CA"),
            Self::WrongName { dialled, covers } => write!(
                f,
                "its certificate is not made for the name {dialled} (it covers {})",
                Self::covered(covers)
            ),
            Self::Expired { not_after } => match not_after {
                Some(at) => write!(f, "its certificate expired on {} by this computer's clock", utc(*at)),
                None => write!(f, "its certificate has expired by this computer's clock"),
            },
            Self::NotYetValid { not_before } => match not_before {
                Some(at) => write!(
                    f,
                    "its certificate is not valid until {} by this computer's clock",
                    utc(*at)
                ),
                None => write!(f, "its certificate is not valid yet by this computer's clock"),
            },
        }
    }
}

/// `unix` as "2026-12-05 22:40 UTC".
pub fn utc(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// The organisation CA's verifier (the same checks `rampart_certs::client_config` makes), which
/// also keeps what was wrong with a refused certificate: the handshake's error carries only
/// text, and the person must be told a wrong name apart from a wrong CA.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    refused: Arc<std::sync::Mutex<Option<CertificateProblem>>>,
}

impl Recording {
    fn new(
        ca: Vec<CertificateDer<'static>>,
        provider: Arc<rustls::crypto::CryptoProvider>,
        refused: Arc<std::sync::Mutex<Option<CertificateProblem>>>,
    ) -> Result<Self, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in ca {
            roots
                .add(cert)
                .map_err(|e| ClientError::Local(format!("unusable organisation CA certificate: {e}")))?;
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| ClientError::Local(format!("organisation CA: {e}")))?;
        Ok(Self { inner, refused })
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .inspect_err(|e| {
                *self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(CertificateProblem::of(e, end_entity, server_name));
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn transport() -> TransportConfig {
    let mut t = TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_secs(10)));
    if let Ok(idle) = IdleTimeout::try_from(Duration::from_secs(60)) {
        t.max_idle_timeout(Some(idle));
    }
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.max_concurrent_bidi_streams(VarInt::from_u32(0));
    t.stream_receive_window(VarInt::from_u32(8 * 1024 * 1024));
    t.receive_window(VarInt::from_u32(32 * 1024 * 1024));
    t.send_window(32 * 1024 * 1024);
    t
}

async fn read_reply(recv: &mut quinn::RecvStream, limit: Duration) -> Result<ServerMessage, ClientError> {
    match tokio::time::timeout(limit, read_frame::<ServerMessage, _>(recv)).await {
        Err(_) => Err(ClientError::ConnectionLost("the gateway did not answer in time".into())),
        Ok(Err(e)) => Err(ClientError::ConnectionLost(e.to_string())),
        Ok(Ok(None)) => Err(ClientError::ConnectionLost("the gateway closed the stream".into())),
        Ok(Ok(Some(ServerMessage::Refused {
            code: ErrorCode::Busy,
            retry_after_secs: Some(retry_after_secs),
            ..
        }))) => Err(ClientError::Busy { retry_after_secs }),
        Ok(Ok(Some(ServerMessage::Refused { code, message, .. }))) => Err(ClientError::Refused {
            code,
            message: printable(&message),
        }),
        Ok(Ok(Some(message))) => Ok(message),
    }
}

fn unexpected(message: ServerMessage) -> ClientError {
    match message {
        ServerMessage::Refused { code, message, .. } => ClientError::Refused {
            code,
            message: printable(&message),
        },
        other => ClientError::Protocol(printable(&format!("{other:?}"))),
    }
}

fn lost(e: quinn::ConnectionError) -> ClientError {
    ClientError::ConnectionLost(describe_connection_error(&e))
}

fn describe_connection_error(e: &quinn::ConnectionError) -> String {
    match e {
        quinn::ConnectionError::TransportError(t) if t.to_string().contains("certificate") => {
            format!("the gateway's certificate is not trusted by your organisation CA ({t})")
        }
        quinn::ConnectionError::ApplicationClosed(close) => {
            let reason = printable(&String::from_utf8_lossy(&close.reason));
            format!("closed by the gateway: {reason}")
        }
        quinn::ConnectionError::TimedOut => "the connection timed out".into(),
        other => other.to_string(),
    }
}

/// Splits `HOST:PORT` and resolves it; returns the TLS server name and an address.
async fn resolve(gateway: &str) -> Result<(String, SocketAddr), String> {
    let (host, port) = if let Some(rest) = gateway.strip_prefix('[') {
        rest.split_once("]:").ok_or("expected [IPv6]:PORT")?
    } else {
        gateway.rsplit_once(':').ok_or("expected HOST:PORT")?
    };
    let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
    let addr = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("cannot resolve {host}: no answer from the name server in time"))?
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    Ok((host.to_owned(), addr))
}

/// Whether an error code means the session is gone.
pub fn session_ended(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::SessionExpired | ErrorCode::NotAuthenticated | ErrorCode::TicketReused
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use rampart_certs::{CertificateAuthority, Validity};
    use std::time::{Duration, SystemTime};

    /// What the organisation CA's verifier records for `leaf` dialled as `name`.
    fn refused(ca: &CertificateAuthority, leaf: &CertificateDer<'_>, name: &str) -> Option<CertificateProblem> {
        let slot = Arc::new(std::sync::Mutex::new(None));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Recording::new(vec![ca.cert_der().clone()], provider, slot.clone()).unwrap();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let verified = verifier.verify_server_cert(leaf, &[], &name, &[], UnixTime::now());
        let recorded = slot.lock().unwrap().take();
        assert_eq!(verified.is_ok(), recorded.is_none(), "{verified:?} {recorded:?}");
        recorded
    }

    fn leaf(ca: &CertificateAuthority, names: &[&str], validity: Validity) -> CertificateDer<'static> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let issued = ca.issue_server_with_validity(&names, validity).unwrap();
        issued.cert_chain().unwrap().remove(0)
    }

    #[test]
    fn a_wrong_name_a_wrong_ca_and_an_expired_certificate_are_told_apart() {
        let ca = CertificateAuthority::create("Test Bank").unwrap();
        let gw1 = leaf(&ca, &["gw1.bank.example", "127.0.0.1"], Validity::from_now(30));
        assert_eq!(refused(&ca, &gw1, "gw1.bank.example"), None);
        assert_eq!(refused(&ca, &gw1, "127.0.0.1"), None);
        let wrong_name = refused(&ca, &gw1, "localhost").unwrap();
        assert_eq!(
            wrong_name,
            CertificateProblem::WrongName {
                dialled: "localhost".into(),
                covers: vec!["gw1.bank.example".into(), "127.0.0.1".into()],
            }
        );
        assert_eq!(
            wrong_name.to_string(),
            "its certificate is not made for the name localhost (it covers gw1.bank.example, 127.0.0.1)"
        );

        let other = CertificateAuthority::create("Someone Else").unwrap();
        let theirs = leaf(&other, &["gw1.bank.example"], Validity::from_now(30));
        assert_eq!(
            refused(&ca, &theirs, "gw1.bank.example"),
            Some(CertificateProblem::NotOurs)
        );
        // A certificate of another CA is not ours, whatever names it carries.
        assert_eq!(refused(&ca, &theirs, "localhost"), Some(CertificateProblem::NotOurs));

        let started = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
        let expired = leaf(&ca, &["gw1.bank.example"], Validity::new(started, 2));
        let Some(CertificateProblem::Expired { not_after: Some(at) }) = refused(&ca, &expired, "gw1.bank.example")
        else {
            panic!("not reported as expired");
        };
        let want = started + Duration::from_secs(2 * 24 * 3600);
        let want = i64::try_from(want.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()).unwrap();
        assert!((at - want).abs() <= 1, "{at} vs {want}");

        let later = SystemTime::now() + Duration::from_secs(3 * 24 * 3600);
        let early = leaf(&ca, &["gw1.bank.example"], Validity::new(later, 2));
        assert!(matches!(
            refused(&ca, &early, "gw1.bank.example"),
            Some(CertificateProblem::NotYetValid { not_before: Some(_) })
        ));
    }
}
