//! Transport hardening and login-storm admission of a real `rampart-gateway` process, seen from
//! raw QUIC clients (quinn + rustls, frames written by hand) and from `GatewayClient`: the login
//! deadline despite keep-alives, the per-connection stream limit, TLS 1.3 only without 0-RTT,
//! QUIC Retry above the handshake threshold, distinct target errors, and a login storm that is
//! answered "busy, retry in N s" while an established bulk tunnel keeps flowing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use quinn::crypto::rustls::QuicClientConfig;
use quinn::rustls;
use quinn::{ConnectionError, IdleTimeout, TransportConfig, VarInt};
use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::io::{read_frame, write_frame};
use rampart_core::protocol::{ClientMessage, ServerMessage};
use rampart_core::secret::Sensitive;
use rampart_tests::gateway::{GatewayProc, GatewaySpec};
use rampart_tests::slapd::{ALICE, BOB, Person, SERVICE_DN, SERVICE_PASSWORD, Slapd, generated_person};
use rampart_tests::{metric_sum, now, oathtool_code};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// QUIC application close code the gateway uses when no login came before the deadline.
const CLOSE_LOGIN_DEADLINE: u32 = 0x10;

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

/// Bind password file for the gateway's LDAP service account, and an echo target.
struct Setup {
    dir: tempfile::TempDir,
    echo: String,
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bind-password"), format!("{SERVICE_PASSWORD}\n")).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = tcp.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        Self { dir, echo }
    }

    /// The `[directory]` table for `slapd`.
    fn directory(&self, slapd: &Slapd) -> String {
        format!(
            "[directory]\nkind = \"ldap\"\nurls = [\"{url}\"]\nbind_dn = \"{SERVICE_DN}\"\n\
             bind_password_file = \"{pw}\"\nuser_base = \"ou=people,dc=bank,dc=example\"\n\
             group_base = \"ou=groups,dc=bank,dc=example\"\nconnect_timeout_secs = 2\noperation_timeout_secs = 5\n",
            url = slapd.url,
            pw = self.dir.path().join("bind-password").display()
        )
    }

    /// `staff-app` → the echo target, for the `staff` group (alice).
    fn echo_policy(&self) -> String {
        format!(
            "[[resource]]\nname = \"staff-app\"\ntarget = \"{}\"\nallow_groups = [\"staff\"]\n",
            self.echo
        )
    }

    /// A gateway checking passwords against `slapd`, with `policy` and `settings` lines.
    fn gateway(&self, slapd: &Slapd, policy: &str, settings: &str) -> GatewayProc {
        let directory = self.directory(slapd);
        GatewayProc::start(
            GatewayProc::new_ca(),
            &GatewaySpec {
                directory: &directory,
                policy,
                settings,
                ..GatewaySpec::default()
            },
        )
    }
}

/// A gateway with the local directory and no resources (for tests that never log in).
fn plain_gateway(settings: &str) -> GatewayProc {
    GatewayProc::start(
        GatewayProc::new_ca(),
        &GatewaySpec {
            directory: "",
            policy: "",
            settings,
            ..GatewaySpec::default()
        },
    )
}

/// `person` logged in with their password and an `oathtool` code; the connection stays open.
async fn logged_in(gw: &GatewayProc, person: &Person, secret: &str) -> GatewayClient {
    let client = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    client
        .login(
            person.uid,
            Sensitive::new(person.password.into()),
            Sensitive::new(oathtool_code(secret, now())),
        )
        .await
        .unwrap_or_else(|e| panic!("{} cannot log in: {e:?}\n{}", person.uid, gw.log()));
    client
}

/// The gateway's `/metrics` text, read with an auditor key.
async fn metrics(gw: &GatewayProc, auditor_key: &str) -> String {
    let (status, body) = gw.admin("GET", "/metrics", Some(auditor_key)).await;
    assert_eq!(status, 200, "{body}");
    body.as_str().expect("metrics are text").to_owned()
}

// ---------------------------------------------------------------------------------------------
// Raw QUIC client
// ---------------------------------------------------------------------------------------------

/// The client TLS config Rampart clients use (TLS 1.3, organisation CA, ALPN `rampart/1`).
fn rampart_tls(ca_pem: &str) -> rustls::ClientConfig {
    let ca = rampart_certs::certs_from_pem(ca_pem).unwrap();
    rampart_certs::client_config(ca, &[rampart_core::ALPN]).unwrap()
}

fn quic_config(tls: rustls::ClientConfig, transport: TransportConfig) -> quinn::ClientConfig {
    let crypto = QuicClientConfig::try_from(tls).unwrap();
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    config
}

/// A transport like the real client's, idle timeout 60 s, no keep-alives unless set.
fn transport() -> TransportConfig {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(IdleTimeout::try_from(Duration::from_secs(60)).unwrap()));
    t.max_concurrent_bidi_streams(VarInt::from_u32(0));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t
}

fn client_endpoint() -> quinn::Endpoint {
    quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap()
}

fn gateway_addr(gw: &GatewayProc) -> SocketAddr {
    gw.addr.parse().unwrap()
}

/// Completes a QUIC handshake with the gateway.
async fn raw_connect(endpoint: &quinn::Endpoint, gw: &GatewayProc, config: quinn::ClientConfig) -> quinn::Connection {
    let connecting = endpoint.connect_with(config, gateway_addr(gw), "127.0.0.1").unwrap();
    tokio::time::timeout(Duration::from_secs(20), connecting)
        .await
        .expect("handshake timed out")
        .expect("handshake failed")
}

/// Opens the control stream and exchanges `Hello`/`Welcome` by hand.
async fn hello(connection: &quinn::Connection) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    let hello = ClientMessage::Hello {
        versions: vec![rampart_core::PROTOCOL_VERSION],
        client: "gateway-transport-test".into(),
    };
    write_frame(&mut send, &hello).await.unwrap();
    let welcome = tokio::time::timeout(Duration::from_secs(20), read_frame::<ServerMessage, _>(&mut recv))
        .await
        .expect("no Welcome in time")
        .unwrap();
    assert!(
        matches!(welcome, Some(ServerMessage::Welcome { version, .. }) if version == rampart_core::PROTOCOL_VERSION),
        "{welcome:?}"
    );
    (send, recv)
}

// ---------------------------------------------------------------------------------------------
// 1. Login deadline
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn keep_alives_do_not_keep_an_unauthenticated_connection_open() {
    let gw = plain_gateway("login_deadline_secs = 2");
    let endpoint = client_endpoint();
    let mut t = transport();
    t.keep_alive_interval(Some(Duration::from_millis(500)));
    let started = Instant::now();
    let connection = raw_connect(&endpoint, &gw, quic_config(rampart_tls(&gw.ca_pem), t)).await;
    let _control = hello(&connection).await;

    // Never log in: only keep-alive PINGs flow until the gateway closes the connection.
    let closed = tokio::time::timeout(Duration::from_secs(10), connection.closed())
        .await
        .expect("the gateway kept an unauthenticated connection open past its login deadline");
    let elapsed = started.elapsed();
    match &closed {
        ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, VarInt::from_u32(CLOSE_LOGIN_DEADLINE), "{close:?}");
            assert_eq!(&close.reason[..], b"login deadline passed");
        }
        other => panic!("expected an application close 0x10 from the gateway, got {other:?}"),
    }
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed <= Duration::from_secs(5),
        "closed {elapsed:?} after connecting; the deadline is 2 s"
    );
    let pings = connection.stats().frame_tx.ping;
    assert!(
        pings >= 2,
        "the client sent {pings} keep-alive PINGs; the test needs some"
    );
    assert_eq!(
        gw.wait_log(
            "closing connection: no login before the deadline",
            1,
            Duration::from_secs(5)
        )
        .len(),
        1
    );
}

#[tokio::test]
async fn after_logout_the_login_deadline_applies_again() {
    let slapd = Slapd::start(None, "");
    let setup = Setup::new().await;
    let gw = setup.gateway(&slapd, &setup.echo_policy(), "login_deadline_secs = 2");
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let client = logged_in(&gw, &ALICE, &secret).await;
    // Logged in, the connection outlives the deadline.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        client.is_open(),
        "a logged-in connection was closed at the login deadline"
    );
    client.logout().await.unwrap();
    let logged_out = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.is_open() {
        assert!(
            Instant::now() < deadline,
            "a logged-out connection stayed open past the login deadline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(logged_out.elapsed() >= Duration::from_millis(1500), "closed too soon");
    assert!(
        gw.log().contains("closing connection: no login before the deadline"),
        "{}",
        gw.log()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Stream limit
// ---------------------------------------------------------------------------------------------

/// Writes `data` on an open echo stream and reads the same number of bytes back.
async fn echo_on(send: &mut quinn::SendStream, recv: &mut quinn::RecvStream, data: &[u8]) {
    send.write_all(data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    tokio::time::timeout(Duration::from_secs(10), recv.read_exact(&mut back))
        .await
        .expect("echo timed out")
        .unwrap();
    assert_eq!(back, data);
}

#[tokio::test]
async fn more_streams_than_the_limit_are_refused_and_the_gateway_carries_on() {
    let slapd = Slapd::start(None, "");
    let setup = Setup::new().await;
    let gw = setup.gateway(&slapd, &setup.echo_policy(), "max_streams_per_connection = 4");
    let alice_secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let bob_secret = gw.enrol(BOB.uuid, BOB.uid).await;
    let auditor = gw.operator("auditor", "auditor").await;
    let client = logged_in(&gw, &ALICE, &alice_secret).await;

    let mut held = Vec::new();
    for i in 0..4u8 {
        let (mut send, mut recv) = client.open("staff-app").await.unwrap();
        echo_on(&mut send, &mut recv, &[i; 1000]).await;
        held.push((send, recv));
    }
    for i in 0..10 {
        match client.open("staff-app").await {
            Err(ClientError::Refused { code, .. }) => {
                assert_eq!(code, ErrorCode::TooManyStreams, "extra stream #{i}")
            }
            other => panic!("extra stream #{i} beyond the limit of 4 was not refused: {other:?}"),
        }
    }
    assert!(client.is_open(), "the refusals must not close the connection");
    for (i, (send, recv)) in held.iter_mut().enumerate() {
        echo_on(send, recv, format!("still here {i}").as_bytes()).await;
    }

    // Close the four: the gateway frees their places once each relay has ended.
    for (mut send, mut recv) in held.drain(..) {
        send.finish().unwrap();
        let rest = tokio::time::timeout(Duration::from_secs(10), recv.read_to_end(1 << 20))
            .await
            .expect("echo stream did not end")
            .unwrap();
        assert!(rest.is_empty());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut reopened = Vec::new();
    while reopened.len() < 4 {
        match client.open("staff-app").await {
            Ok((mut send, mut recv)) => {
                echo_on(&mut send, &mut recv, b"again").await;
                reopened.push((send, recv));
            }
            // A flow's place is released just after its stream ends; allow that moment.
            Err(ClientError::Refused {
                code: ErrorCode::TooManyStreams,
                ..
            }) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("no new stream after the old ones closed: {e:?}"),
        }
    }

    let text = metrics(&gw, &auditor).await;
    let refused = metric_sum(
        &text,
        "rampart_gateway_refused_streams_total",
        &[("reason", "stream_limit")],
    );
    assert!(refused >= 10.0, "stream_limit refusals counted: {refused}\n{text}");

    // The gateway still serves everyone else.
    let bob = logged_in(&gw, &BOB, &bob_secret).await;
    bob.close().await;
    client.close().await;
}

#[tokio::test]
async fn an_unauthenticated_peer_gets_a_small_budget_until_it_logs_in() {
    let slapd = Slapd::start(None, "");
    let setup = Setup::new().await;
    let gw = setup.gateway(&slapd, &setup.echo_policy(), "");
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let endpoint = client_endpoint();
    let connection = raw_connect(&endpoint, &gw, quic_config(rampart_tls(&gw.ca_pem), transport())).await;
    let (mut send, mut recv) = hello(&connection).await;

    // Before login: four streams in all (the control stream and three more), not 1040.
    let mut unused = Vec::new();
    for _ in 0..3 {
        unused.push(connection.open_bi().await.unwrap());
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(500), connection.open_bi())
            .await
            .is_err(),
        "a peer that has not logged in was given a fifth stream"
    );

    // Logged in, the connection gets its full budget at once.
    let login = ClientMessage::Login {
        username: "alice".into(),
        password: Sensitive::new(ALICE.password.into()),
        otp: Sensitive::new(oathtool_code(&secret, now())),
        client_key: None,
    };
    write_frame(&mut send, &login).await.unwrap();
    let granted = read_frame::<ServerMessage, _>(&mut recv).await.unwrap();
    assert!(matches!(granted, Some(ServerMessage::SessionGranted(_))), "{granted:?}");
    for i in 0..8 {
        tokio::time::timeout(Duration::from_secs(5), connection.open_bi())
            .await
            .unwrap_or_else(|_| panic!("stream {i} after login was not allowed"))
            .unwrap();
    }
    connection.close(VarInt::from_u32(0), b"done");
}

// ---------------------------------------------------------------------------------------------
// 3. TLS 1.3 only, no 0-RTT
// ---------------------------------------------------------------------------------------------

/// The ring provider, as Rampart uses it.
fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_pem: &str) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rampart_certs::certs_from_pem(ca_pem).unwrap() {
        roots.add(cert).unwrap();
    }
    roots
}

/// A TLS client speaking only `versions`, trusting the gateway's CA, offering `alpn`.
fn tls_with_versions(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[u8],
) -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder_with_provider(ring())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots(ca_pem))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

/// A blocking TLS handshake over TCP to `addr`: the negotiated version, or the error.
fn tcp_handshake(addr: &str, config: rustls::ClientConfig) -> Result<rustls::ProtocolVersion, rustls::Error> {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while conn.is_handshaking() {
        match conn.complete_io(&mut tcp) {
            Ok(_) => {}
            Err(e) => {
                return Err(e
                    .into_inner()
                    .and_then(|inner| inner.downcast::<rustls::Error>().ok())
                    .map(|b| *b)
                    .unwrap_or_else(|| rustls::Error::General("i/o error during handshake".into())));
            }
        }
    }
    Ok(conn.protocol_version().unwrap())
}

#[tokio::test]
async fn only_tls_1_3_is_spoken_and_0rtt_is_refused() {
    let gw = plain_gateway("");
    let admin_addr = gw.admin_url.strip_prefix("https://").unwrap().to_owned();

    // (i) A TLS 1.2-only client. quinn's QuicClientConfig::try_from does NOT check the versions
    // (it only needs the provider's TLS13_AES_128_GCM_SHA256 suite), so the refusal comes from
    // rustls when a QUIC session is started: QUIC is TLS 1.3 by definition (RFC 9001 §4.2).
    // (Through quinn's `Endpoint::connect` that error becomes a panic: quinn-proto unwraps it in
    // `QuicClientConfig::start_session`; so the session is started with rustls directly here.)
    let tls12 = tls_with_versions(&gw.ca_pem, &[&rustls::version::TLS12], rampart_core::ALPN);
    assert!(
        QuicClientConfig::try_from(tls12.clone()).is_ok(),
        "quinn changed: it now refuses a TLS 1.2 config itself; assert that error here instead"
    );
    let quic_session = rustls::quic::ClientConnection::new(
        Arc::new(tls12),
        rustls::quic::Version::V1,
        rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
        Vec::new(),
    );
    match quic_session {
        Err(rustls::Error::General(message)) => assert!(message.contains("TLS 1.3"), "{message}"),
        other => panic!("a TLS 1.2-only QUIC client session was created: {:?}", other.err()),
    }

    // The gateway's own TLS configuration (rampart_certs::server_config, shared by the QUIC
    // listener and the admin listener) offers TLS 1.3 only: over TCP, where TLS 1.2 exists,
    // a TLS 1.2-only client is refused with a protocol_version alert...
    match tcp_handshake(
        &admin_addr,
        tls_with_versions(&gw.ca_pem, &[&rustls::version::TLS12], b"http/1.1"),
    ) {
        Err(rustls::Error::AlertReceived(alert)) => {
            assert_eq!(alert, rustls::AlertDescription::ProtocolVersion)
        }
        other => panic!("a TLS 1.2-only client was not refused by the gateway: {other:?}"),
    }
    // ...and a client offering both gets TLS 1.3.
    let both = |alpn: &[u8]| tls_with_versions(&gw.ca_pem, &[&rustls::version::TLS12, &rustls::version::TLS13], alpn);
    assert_eq!(
        tcp_handshake(&admin_addr, both(b"http/1.1")).unwrap(),
        rustls::ProtocolVersion::TLSv1_3
    );
    // Over QUIC the same client (its TLS 1.2 support unused) completes a handshake that
    // negotiated the Rampart ALPN; quinn exposes no version, and QUIC has only TLS 1.3.
    let endpoint = client_endpoint();
    let connection = raw_connect(&endpoint, &gw, quic_config(both(rampart_core::ALPN), transport())).await;
    let data = connection
        .handshake_data()
        .unwrap()
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .unwrap();
    assert_eq!(data.protocol.as_deref(), Some(rampart_core::ALPN));
    let _ = hello(&connection).await;
    connection.close(VarInt::from_u32(0), b"done");

    // (ii) 0-RTT: a client that wants early data and keeps session tickets.
    let store = Arc::new(RecordingStore::default());
    let mut tls = rampart_tls(&gw.ca_pem);
    tls.enable_early_data = true;
    tls.resumption = rustls::client::Resumption::store(store.clone());
    let config = quic_config(tls, transport());
    let first = raw_connect(&endpoint, &gw, config.clone()).await;
    let _ = hello(&first).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.tickets().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tickets = store.tickets();
    assert!(
        !tickets.is_empty(),
        "the gateway sent no session ticket; 0-RTT cannot be tested"
    );
    assert!(
        tickets.iter().all(|&max_early| max_early == 0),
        "tickets allow early data: max_early_data_size {tickets:?}"
    );
    first.close(VarInt::from_u32(0), b"done");

    let connecting = endpoint.connect_with(config, gateway_addr(&gw), "127.0.0.1").unwrap();
    let second = match connecting.into_0rtt() {
        Err(connecting) => connecting.await.expect("the resumed handshake failed"),
        Ok((connection, accepted)) => {
            assert!(!accepted.await, "the gateway accepted 0-RTT data");
            connection
        }
    };
    assert!(
        store.takes() >= 1,
        "the second connection did not offer the ticket, so it never tried to resume"
    );
    let _ = hello(&second).await;
    second.close(VarInt::from_u32(0), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
}

/// rustls' in-memory session store, recording each TLS 1.3 ticket's early-data allowance and
/// how many tickets were handed out to resume with.
#[derive(Debug, Default)]
struct RecordingStore {
    inner: DefaultStore,
    max_early: Mutex<Vec<u32>>,
    takes: AtomicU64,
}

#[derive(Debug)]
struct DefaultStore(rustls::client::ClientSessionMemoryCache);

impl Default for DefaultStore {
    fn default() -> Self {
        Self(rustls::client::ClientSessionMemoryCache::new(32))
    }
}

impl RecordingStore {
    fn tickets(&self) -> Vec<u32> {
        self.max_early.lock().unwrap().clone()
    }

    fn takes(&self) -> u64 {
        self.takes.load(Ordering::SeqCst)
    }
}

impl rustls::client::ClientSessionStore for RecordingStore {
    fn set_kx_hint(&self, name: rustls::pki_types::ServerName<'static>, group: rustls::NamedGroup) {
        self.inner.0.set_kx_hint(name, group);
    }

    fn kx_hint(&self, name: &rustls::pki_types::ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.inner.0.kx_hint(name)
    }

    fn set_tls12_session(
        &self,
        name: rustls::pki_types::ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.0.set_tls12_session(name, value);
    }

    fn tls12_session(
        &self,
        name: &rustls::pki_types::ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.0.tls12_session(name)
    }

    fn remove_tls12_session(&self, name: &rustls::pki_types::ServerName<'static>) {
        self.inner.0.remove_tls12_session(name);
    }

    fn insert_tls13_ticket(
        &self,
        name: rustls::pki_types::ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.max_early.lock().unwrap().push(value.max_early_data_size());
        self.inner.0.insert_tls13_ticket(name, value);
    }

    fn take_tls13_ticket(
        &self,
        name: &rustls::pki_types::ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        let ticket = self.inner.0.take_tls13_ticket(name);
        if ticket.is_some() {
            self.takes.fetch_add(1, Ordering::SeqCst);
        }
        ticket
    }
}

// ---------------------------------------------------------------------------------------------
// 4. QUIC Retry
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn retry_is_asked_above_the_handshake_threshold_only() {
    let slapd = Slapd::start(None, "");
    let setup = Setup::new().await;
    let policy = setup.echo_policy();
    for (settings, expect_retry) in [("retry_threshold = 0", true), ("", false)] {
        let gw = setup.gateway(&slapd, &policy, settings);
        let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
        let auditor = gw.operator("auditor", "auditor").await;
        let client = logged_in(&gw, &ALICE, &secret).await;
        let (mut send, mut recv) = client.open("staff-app").await.unwrap();
        echo_on(&mut send, &mut recv, b"after retry").await;
        client.close().await;
        let retries = metric_sum(&metrics(&gw, &auditor).await, "rampart_gateway_quic_retries_total", &[]);
        if expect_retry {
            assert!(
                retries >= 1.0,
                "threshold 0: every new client is asked to Retry: {retries}"
            );
        } else {
            assert_eq!(retries, 0.0, "default threshold: one connection needs no Retry");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Target errors
// ---------------------------------------------------------------------------------------------

/// A TCP listener whose accept queue is full and never drained: Linux then drops further SYNs
/// (`tcp_conn_request`: `sk_acceptq_is_full` → drop, with or without syncookies), so a connect
/// to it times out. Off-link addresses such as 10.255.255.1 are no use here: this sandbox
/// answers TCP connects to them at once.
struct BlackHole {
    addr: SocketAddr,
    _listener: tokio::net::TcpListener,
    _queued: Vec<std::net::TcpStream>,
}

impl BlackHole {
    fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        // Fill the queue; the first connect that times out proves it is full.
        loop {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(tcp) => queued.push(tcp),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(e) => panic!("filling the accept queue of {addr}: {e}"),
            }
            assert!(queued.len() < 64, "the accept queue of {addr} never filled");
        }
        Self {
            addr,
            _listener: listener,
            _queued: queued,
        }
    }
}

#[tokio::test]
async fn refused_unreachable_and_timed_out_targets_get_distinct_errors() {
    let slapd = Slapd::start(None, "");
    let setup = Setup::new().await;
    let closed_port = rampart_tests::slapd::free_port();
    let hole = BlackHole::new();
    let policy = format!(
        "[[resource]]\nname = \"refused\"\ntarget = \"127.0.0.1:{closed_port}\"\nallow_groups = [\"staff\"]\n\n\
         [[resource]]\nname = \"unreachable\"\ntarget = \"nowhere.invalid:80\"\nallow_groups = [\"staff\"]\n\n\
         [[resource]]\nname = \"timeout\"\ntarget = \"{}\"\nallow_groups = [\"staff\"]\n",
        hole.addr
    );
    let gw = setup.gateway(&slapd, &policy, "connect_timeout_secs = 1");
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let client = logged_in(&gw, &ALICE, &secret).await;

    for (resource, expected, slowest) in [
        ("refused", ErrorCode::TargetRefused, Duration::from_secs(1)),
        ("unreachable", ErrorCode::TargetUnreachable, Duration::from_secs(1)),
        ("timeout", ErrorCode::TargetTimeout, Duration::from_secs(3)),
    ] {
        let started = Instant::now();
        let result = client.open(resource).await;
        let elapsed = started.elapsed();
        match result {
            Err(ClientError::Refused { code, .. }) => assert_eq!(code, expected, "{resource}"),
            other => panic!("{resource}: expected {expected:?}, got {other:?}"),
        }
        assert!(elapsed < slowest, "{resource} answered after {elapsed:?}");
        if expected == ErrorCode::TargetTimeout {
            assert!(
                elapsed >= Duration::from_millis(900),
                "timed out after {elapsed:?}, before connect_timeout_secs = 1"
            );
        }
    }
    assert!(client.is_open(), "target errors end the stream, not the connection");
    client.close().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Login storm
// ---------------------------------------------------------------------------------------------

/// How one storm login was answered (the fields are read through `Debug` in failure messages).
#[derive(Debug)]
#[allow(dead_code)]
enum StormAnswer {
    Busy { retry_after: u32, message: String },
    Other(ServerMessage),
    Failed(String),
}

/// Tunnel progress: bytes echoed back, and the longest pause between two reads.
#[derive(Debug, Default)]
struct Progress {
    bytes: AtomicU64,
    longest_gap_micros: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_storm_is_told_to_retry_while_a_bulk_tunnel_keeps_flowing() {
    const STORM: usize = 80;
    let people: String = (0..STORM)
        .map(|i| {
            let (uid, pw, uuid) = generated_person(i);
            format!(
                "dn: uid={uid},ou=people,dc=bank,dc=example\nobjectClass: inetOrgPerson\nuid: {uid}\n\
                 cn: Person {i}\nsn: Generated\nuserPassword: {pw}\nentryUUID: {uuid}\n\n"
            )
        })
        .collect();
    let slapd = Slapd::start_with(None, &people, false);
    let setup = Setup::new().await;
    let gw = setup.gateway(
        &slapd,
        &setup.echo_policy(),
        "max_logins_in_progress = 2\nlogin_queue = 2\nlogin_queue_wait_secs = 1",
    );
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let auditor = gw.operator("auditor", "auditor").await;
    let alice = logged_in(&gw, &ALICE, &secret).await;

    // The bulk tunnel: write continuously, read the echo back, note the longest pause.
    let (mut send, mut recv) = alice.open("staff-app").await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Progress::default());
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let chunk = vec![0x5au8; 64 * 1024];
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                send.write_all(&chunk).await.unwrap();
                sent += chunk.len() as u64;
            }
            send.finish().unwrap();
            sent
        })
    };
    let reader = {
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut last = Instant::now();
            let mut samples = Vec::new();
            loop {
                let n = tokio::time::timeout(Duration::from_secs(10), recv.read(&mut buf))
                    .await
                    .expect("the tunnel stalled for 10 s")
                    .unwrap();
                let Some(n) = n else { break };
                let gap = last.elapsed();
                last = Instant::now();
                progress
                    .longest_gap_micros
                    .fetch_max(u64::try_from(gap.as_micros()).unwrap(), Ordering::Relaxed);
                let total = progress.bytes.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                samples.push((last, total));
            }
            samples
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        progress.bytes.load(Ordering::Relaxed) > 0,
        "the bulk tunnel does not flow"
    );

    // The storm: STORM connections complete their handshake and Hello, then all send a Login
    // at the same moment (correct directory password, but no token: a full LDAP search, bind
    // and group search, then a store lookup — answered InvalidCredentials).
    let endpoint = client_endpoint();
    let config = quic_config(rampart_tls(&gw.ca_pem), transport());
    let barrier = Arc::new(tokio::sync::Barrier::new(STORM));
    let mut storm = Vec::new();
    for i in 0..STORM {
        let (endpoint, config, barrier) = (endpoint.clone(), config.clone(), barrier.clone());
        let addr = gateway_addr(&gw);
        storm.push(tokio::spawn(async move {
            let connected = async {
                let connection = endpoint.connect_with(config, addr, "127.0.0.1").ok()?.await.ok()?;
                let (mut send, mut recv) = connection.open_bi().await.ok()?;
                let hello = ClientMessage::Hello {
                    versions: vec![rampart_core::PROTOCOL_VERSION],
                    client: "storm".into(),
                };
                write_frame(&mut send, &hello).await.ok()?;
                match read_frame::<ServerMessage, _>(&mut recv).await {
                    Ok(Some(ServerMessage::Welcome { .. })) => Some((connection, send, recv)),
                    _ => None,
                }
            };
            let connected = tokio::time::timeout(Duration::from_secs(30), connected)
                .await
                .ok()
                .flatten();
            barrier.wait().await;
            let Some((connection, mut send, mut recv)) = connected else {
                return (Instant::now(), StormAnswer::Failed("no connection".into()));
            };
            let (uid, pw, _) = generated_person(i);
            let login = ClientMessage::Login {
                username: uid,
                password: Sensitive::new(pw),
                otp: Sensitive::new("123456".into()),
                client_key: None,
            };
            let sent_at = Instant::now();
            if let Err(e) = write_frame(&mut send, &login).await {
                return (sent_at, StormAnswer::Failed(e.to_string()));
            }
            let answer =
                match tokio::time::timeout(Duration::from_secs(30), read_frame::<ServerMessage, _>(&mut recv)).await {
                    Ok(Ok(Some(ServerMessage::Refused {
                        code: ErrorCode::Busy,
                        message,
                        retry_after_secs,
                    }))) => StormAnswer::Busy {
                        retry_after: retry_after_secs.expect("a busy answer without retry_after_secs"),
                        message,
                    },
                    Ok(Ok(Some(other))) => StormAnswer::Other(other),
                    other => StormAnswer::Failed(format!("{other:?}")),
                };
            connection.close(VarInt::from_u32(0), b"storm over");
            (sent_at, answer)
        }));
    }
    let storm_started = Instant::now();
    let mut answers = Vec::new();
    for task in storm {
        answers.push(task.await.unwrap());
    }
    let storm_ended = Instant::now();
    let during_storm = progress.bytes.load(Ordering::Relaxed);

    // Let the tunnel run on for a moment, then end it and check it completes.
    tokio::time::sleep(Duration::from_millis(750)).await;
    stop.store(true, Ordering::Relaxed);
    let sent = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("the writer stalled")
        .unwrap();
    let samples = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the echo did not end")
        .unwrap();
    let received = progress.bytes.load(Ordering::Relaxed);
    assert_eq!(
        received, sent,
        "the bulk transfer must complete: every byte echoed back"
    );
    assert!(during_storm > 0);

    let mut busy = Vec::new();
    let mut invalid = 0usize;
    for (_, answer) in &answers {
        match answer {
            StormAnswer::Busy { retry_after, message } => busy.push((*retry_after, message.clone())),
            StormAnswer::Other(ServerMessage::Refused {
                code: ErrorCode::InvalidCredentials,
                ..
            }) => invalid += 1,
            other => panic!("a storm login got neither busy nor a normal answer: {other:?}"),
        }
    }
    assert!(!busy.is_empty(), "no login was told to retry: {answers:?}");
    for (retry_after, message) in &busy {
        assert!((1..=60).contains(retry_after), "retry_after_secs {retry_after}");
        assert!(
            message.contains("retry in") && message.contains(&format!("{retry_after} s")),
            "{message}"
        );
    }
    assert!(
        invalid >= 2,
        "the logins holding the 2 slots get their real answer: {invalid} did"
    );

    // The tunnel kept flowing during the storm: no pause of a second, and progress in (nearly)
    // every 250 ms window from the storm's start to its end.
    let longest_gap = Duration::from_micros(progress.longest_gap_micros.load(Ordering::Relaxed));
    assert!(
        longest_gap < Duration::from_secs(1),
        "the tunnel stalled for {longest_gap:?}"
    );
    let window = Duration::from_millis(250);
    let mut windows = 0;
    let mut idle_windows = 0;
    let mut at = storm_started;
    while at + window <= storm_ended.max(storm_started + window) {
        windows += 1;
        if !samples.iter().any(|(t, _)| *t >= at && *t < at + window) {
            idle_windows += 1;
        }
        at += window;
    }
    assert_eq!(
        idle_windows, 0,
        "{idle_windows} of {windows} 250 ms windows during the storm carried no tunnel bytes"
    );

    let text = metrics(&gw, &auditor).await;
    let busy_logins = metric_sum(&text, "rampart_gateway_logins_total", &[("result", "busy")]);
    assert!(busy_logins > 0.0, "{text}");
    assert_eq!(busy_logins as usize, busy.len(), "one busy count per busy answer");
    let logins_sent = answers.iter().map(|(at, _)| *at).min().unwrap();
    eprintln!(
        "storm: {} connections in {:?} (logins answered within {:?}): {} busy, {invalid} answered; tunnel {} MiB, \
         longest pause {longest_gap:?}, {windows} windows of 250 ms",
        answers.len(),
        storm_ended - storm_started,
        storm_ended - logins_sent,
        busy.len(),
        received >> 20,
    );
    alice.close().await;
}
