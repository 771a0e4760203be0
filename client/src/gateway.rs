//! A connection to a gateway: QUIC handshake against the organisation CA, the control stream
//! (hello, login, resume, logout), and data streams opened per forwarded connection. A login
//! binds the session to a new key; a resume proves that key on this connection and takes the
//! session's next ticket.

use crate::certificate::{CertificateProblem, RecordingVerifier};
use crate::failover::{self, Attempt, Plan};
use crate::{ClientError, ClientKey, ResumeCredential};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Endpoint, IdleTimeout, TransportConfig, VarInt};
use rampart_core::io::{read_frame, write_frame};
use rampart_core::protocol::{ClientMessage, ServerMessage, SessionGrant};
use rampart_core::resume_proof::{EXPORTER_LABEL, EXPORTER_LEN};
use rampart_core::secret::Sensitive;
use rampart_core::text::printable;
use rampart_core::{ErrorCode, PROTOCOL_VERSION};
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
/// by the session tunnel's liveness check.
const OPEN_REPLY_TIMEOUT: Duration = Duration::from_secs(150);

/// The QUIC application close code with which a gateway closes a connection that did not log
/// in before its login deadline (`settings.login_deadline_secs`, gateway/src/attachment.rs).
pub const CLOSE_LOGIN_DEADLINE: u32 = 0x10;

/// Connects to the first of `gateways` that answers, in order, in one pass
/// ([`Plan::single_pass`]). A gateway that does not answer is passed over; one whose
/// certificate is not trusted, or a local problem, stops the search.
pub async fn connect_any(gateways: &[String], ca_pem: &str) -> Result<(String, GatewayClient), ClientError> {
    let tried = failover::first_answering(gateways, &Plan::single_pass(), &mut Connecting { ca_pem }).await;
    match tried {
        Ok((index, client)) => Ok((gateways[index].clone(), client)),
        Err(failed) => Err(failed.into_error(|| ClientError::Local("no gateway to connect to".into()))),
    }
}

/// An attempt that connects, trusting `ca_pem`.
struct Connecting<'a> {
    ca_pem: &'a str,
}

impl Attempt for Connecting<'_> {
    type Made = GatewayClient;

    fn attempt<'s>(
        &'s mut self,
        gateway: &'s str,
    ) -> impl Future<Output = Result<GatewayClient, ClientError>> + Send + 's {
        GatewayClient::connect(gateway, self.ca_pem)
    }
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
        let verifier =
            RecordingVerifier::new(ca, tls.crypto_provider().clone(), refused.clone()).map_err(ClientError::Local)?;
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
    t.ack_frequency_config(Some(rampart_core::quic_relay::ack_frequency()));
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
