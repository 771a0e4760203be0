//! Tests of the HTTPS listener: a real listener on 127.0.0.1 with a certificate from a test CA,
//! called with a client that trusts only that CA.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{ALPN, BindError, HttpsListener};
use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use rampart_certs::{CertificateAuthority, IssuedCert};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

const LOOPBACK: &str = "127.0.0.1:0";

struct Pki {
    ca: CertificateAuthority,
    cert: IssuedCert,
}

fn pki() -> Pki {
    let ca = CertificateAuthority::create("Rampart Test").unwrap();
    let cert = ca.issue_server(&["127.0.0.1".into(), "localhost".into()]).unwrap();
    Pki { ca, cert }
}

fn bind(pki: &Pki) -> HttpsListener {
    HttpsListener::bind(
        LOOPBACK.parse().unwrap(),
        pki.cert.cert_chain().unwrap(),
        pki.cert.private_key().unwrap(),
    )
    .unwrap()
}

fn client(pki: &Pki) -> reqwest::Client {
    let tls = rampart_certs::client_config(vec![pki.ca.cert_der().clone()], ALPN).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Starts serving `app`; the sender ends the serving.
fn start(listener: HttpsListener, app: Router) -> (oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(listener.serve(app, async move {
        let _ = stopped.await;
    }));
    (stop, server)
}

async fn stopped(server: tokio::task::JoinHandle<std::io::Result<()>>) {
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops after the shutdown signal")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn serves_a_router_over_tls_with_the_peer_address_and_stops_on_shutdown() {
    let pki = pki();
    let listener = bind(&pki);
    let addr = listener.local_addr().unwrap();
    assert_ne!(addr.port(), 0, "the bound address, not the one asked for");
    let app = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    let (stop, server) = start(listener, app);
    let http = client(&pki);
    let response = http.get(format!("https://{addr}/peer")).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "127.0.0.1");

    stop.send(()).unwrap();
    stopped(server).await;
    let after = client(&pki).get(format!("https://{addr}/peer")).send().await;
    assert!(after.is_err(), "nothing answers once stopped");
}

#[tokio::test]
async fn a_request_running_at_shutdown_is_allowed_to_finish() {
    let pki = pki();
    let listener = bind(&pki);
    let addr = listener.local_addr().unwrap();
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let app = {
        let (entered, release) = (entered.clone(), release.clone());
        Router::new().route(
            "/slow",
            get(move || async move {
                entered.notify_one();
                release.notified().await;
                "finished"
            }),
        )
    };
    let (stop, server) = start(listener, app);
    let http = client(&pki);
    let request = tokio::spawn(async move { http.get(format!("https://{addr}/slow")).send().await });
    entered.notified().await;

    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!server.is_finished(), "the server waits for the running request");
    release.notify_one();
    let response = request.await.unwrap().unwrap();
    assert_eq!(response.text().await.unwrap(), "finished");
    stopped(server).await;
}

#[tokio::test]
async fn offers_tls_1_3_and_http_1_1_only() {
    let pki = pki();
    let listener = bind(&pki);
    let addr = listener.local_addr().unwrap();
    let (stop, server) = start(listener, Router::new());
    let config =
        Arc::new(rampart_certs::client_config(vec![pki.ca.cert_der().clone()], &[b"h2", b"http/1.1"]).unwrap());
    let (version, alpn) = tokio::task::spawn_blocking(move || {
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = rustls::ClientConnection::new(config, name).unwrap();
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp).unwrap();
        }
        (tls.protocol_version(), tls.alpn_protocol().map(<[u8]>::to_vec))
    })
    .await
    .unwrap();
    assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]), "HTTP/2 is not offered");
    stop.send(()).unwrap();
    stopped(server).await;
}

#[test]
fn binding_an_address_in_use_names_it() {
    let pki = pki();
    let taken = std::net::TcpListener::bind(LOOPBACK).unwrap();
    let addr = taken.local_addr().unwrap();
    let err = HttpsListener::bind(addr, pki.cert.cert_chain().unwrap(), pki.cert.private_key().unwrap()).unwrap_err();
    assert!(matches!(err, BindError::Listen { addr: a, .. } if a == addr), "{err:?}");
    assert_eq!(err.to_string(), format!("cannot listen on {addr}"));
}

#[test]
fn an_empty_certificate_chain_is_a_tls_configuration_error() {
    let pki = pki();
    let err = HttpsListener::bind(LOOPBACK.parse().unwrap(), Vec::new(), pki.cert.private_key().unwrap()).unwrap_err();
    assert!(matches!(err, BindError::Tls(_)), "{err:?}");
    assert_eq!(err.to_string(), "TLS configuration");
}
