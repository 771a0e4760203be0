//! Real in-memory TLS handshakes between configs built by this crate: TLS 1.3 and ALPN are
//! negotiated, and wrong CAs, names, purposes, expired certificates and TLS 1.2 are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_certs::{CertificateAuthority, IssuedCert, Validity, client_config, server_config};
use rustls::pki_types::ServerName;
use rustls::{
    CertificateError, ClientConnection, Connection, Error, PeerIncompatible, ProtocolVersion, ServerConnection,
};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const ALPN: &[u8] = b"rampart/1";

/// Which side of the handshake failed, and how.
#[derive(Debug)]
enum Failure {
    Client(Error),
    Server(Error),
}

fn ca() -> CertificateAuthority {
    CertificateAuthority::create("Example Corp").unwrap()
}

fn server_names() -> Vec<String> {
    vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
}

fn server_for(cert: &IssuedCert, alpn: &[&[u8]]) -> ServerConnection {
    let config = server_config(cert.cert_chain().unwrap(), cert.private_key().unwrap(), alpn);
    ServerConnection::new(Arc::new(config.unwrap())).unwrap()
}

fn client_for(ca: &CertificateAuthority, name: &str, alpn: &[&[u8]]) -> ClientConnection {
    let config = client_config(vec![ca.cert_der().clone()], alpn).unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    ClientConnection::new(Arc::new(config), name).unwrap()
}

/// Moves all pending TLS bytes from `from` to `to` and lets `to` process them.
fn transfer(from: &mut Connection, to: &mut Connection) -> Result<usize, Error> {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).unwrap();
    }
    let mut rest = &buf[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).unwrap();
        to.process_new_packets()?;
    }
    Ok(buf.len())
}

fn handshake(client: ClientConnection, server: ServerConnection) -> Result<(Connection, Connection), Failure> {
    let mut client = Connection::from(client);
    let mut server = Connection::from(server);
    for _ in 0..10 {
        let sent = transfer(&mut client, &mut server).map_err(Failure::Server)?
            + transfer(&mut server, &mut client).map_err(Failure::Client)?;
        if sent == 0 && !client.is_handshaking() && !server.is_handshaking() {
            return Ok((client, server));
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn handshake_negotiates_tls13_and_rampart_alpn() {
    let ca = ca();
    let cert = ca.issue_server(&server_names()).unwrap();
    for name in ["localhost", "127.0.0.1"] {
        let (mut client, mut server) = handshake(client_for(&ca, name, &[ALPN]), server_for(&cert, &[ALPN])).unwrap();
        for conn in [&client, &server] {
            assert_eq!(conn.protocol_version(), Some(ProtocolVersion::TLSv1_3));
            assert_eq!(conn.alpn_protocol(), Some(ALPN));
        }

        client.writer().write_all(b"hello gateway").unwrap();
        transfer(&mut client, &mut server).unwrap();
        let mut got = [0u8; 13];
        server.reader().read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello gateway");
    }
}

#[test]
fn client_trusting_another_ca_rejects_the_server() {
    let cert = ca().issue_server(&server_names()).unwrap();
    let other = CertificateAuthority::create("Other Org").unwrap();
    let failure = handshake(client_for(&other, "localhost", &[ALPN]), server_for(&cert, &[ALPN]));
    assert!(
        matches!(
            failure,
            Err(Failure::Client(Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )))
        ),
        "{failure:?}"
    );

    // An impostor CA with the very same name is found as issuer but its signature fails.
    let impostor = ca();
    let failure = handshake(client_for(&impostor, "localhost", &[ALPN]), server_for(&cert, &[ALPN]));
    assert!(
        matches!(
            failure,
            Err(Failure::Client(Error::InvalidCertificate(
                CertificateError::BadSignature
            )))
        ),
        "{failure:?}"
    );
}

#[test]
fn name_not_in_the_certificate_is_rejected() {
    let ca = ca();
    let cert = ca.issue_server(&server_names()).unwrap();
    for name in ["gateway.example.com", "127.0.0.2"] {
        let failure = handshake(client_for(&ca, name, &[ALPN]), server_for(&cert, &[ALPN]));
        assert!(
            matches!(failure, Err(Failure::Client(Error::InvalidCertificate(_)))),
            "{name}: {failure:?}"
        );
    }
}

#[test]
fn device_certificate_cannot_serve() {
    let ca = ca();
    let device = ca.issue_client("laptop-42").unwrap();
    let failure = handshake(client_for(&ca, "laptop-42", &[ALPN]), server_for(&device, &[ALPN]));
    // webpki checks the chain, including the serverAuth purpose, before the name.
    match failure {
        Err(Failure::Client(Error::InvalidCertificate(e))) => {
            assert!(format!("{e:?}").starts_with("InvalidPurpose"), "{e:?}");
        }
        other => panic!("expected an invalid purpose, got {other:?}"),
    }
}

#[test]
fn expired_server_certificate_is_rejected() {
    let ca = ca();
    let long_ago = SystemTime::now() - Duration::from_secs(400 * 86_400);
    let cert = ca
        .issue_server_with_validity(&server_names(), Validity::new(long_ago, 30))
        .unwrap();
    let failure = handshake(client_for(&ca, "localhost", &[ALPN]), server_for(&cert, &[ALPN]));
    match failure {
        Err(Failure::Client(Error::InvalidCertificate(e))) => {
            assert!(format!("{e:?}").starts_with("Expired"), "{e:?}");
        }
        other => panic!("expected an expired certificate, got {other:?}"),
    }
}

#[test]
fn client_without_rampart_alpn_is_refused() {
    let ca = ca();
    let cert = ca.issue_server(&server_names()).unwrap();
    let failure = handshake(client_for(&ca, "localhost", &[b"h2"]), server_for(&cert, &[ALPN]));
    assert!(
        matches!(failure, Err(Failure::Server(Error::NoApplicationProtocol))),
        "{failure:?}"
    );
}

#[test]
fn early_data_is_disabled_on_both_sides() {
    let ca = ca();
    let cert = ca.issue_server(&server_names()).unwrap();
    let server = server_config(cert.cert_chain().unwrap(), cert.private_key().unwrap(), &[ALPN]).unwrap();
    assert_eq!(server.max_early_data_size, 0);
    assert_eq!(server.alpn_protocols, vec![ALPN.to_vec()]);
    let client = client_config(vec![ca.cert_der().clone()], &[ALPN]).unwrap();
    assert!(!client.enable_early_data);
    assert_eq!(client.alpn_protocols, vec![ALPN.to_vec()]);
}

#[test]
fn configs_need_alpn_and_a_ca() {
    let ca = ca();
    let cert = ca.issue_server(&server_names()).unwrap();
    assert!(server_config(cert.cert_chain().unwrap(), cert.private_key().unwrap(), &[]).is_err());
    assert!(server_config(vec![], cert.private_key().unwrap(), &[ALPN]).is_err());
    assert!(client_config(vec![], &[ALPN]).is_err());
    assert!(client_config(vec![ca.cert_der().clone()], &[b""]).is_err());
}

#[test]
fn key_that_does_not_match_the_certificate_is_refused() {
    let ca = ca();
    let a = ca.issue_server(&server_names()).unwrap();
    let b = ca.issue_server(&server_names()).unwrap();
    let mismatched = server_config(a.cert_chain().unwrap(), b.private_key().unwrap(), &[ALPN]);
    assert!(mismatched.is_err());
}

/// The workspace builds rustls without its `tls12` feature, so no TLS 1.2 client config can be
/// built. Instead this sends the ClientHello a TLS 1.2-only client would (no
/// `supported_versions` extension, TLS 1.2 ECDHE-ECDSA suites) and checks the server refuses
/// it with a `protocol_version` alert. This holds even if another crate enables `tls12`.
#[test]
fn tls12_only_client_hello_is_refused() {
    let cert = ca().issue_server(&server_names()).unwrap();
    let mut server = Connection::from(server_for(&cert, &[ALPN]));

    let mut body = vec![0x03, 0x03]; // legacy_version: TLS 1.2
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // empty session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2c]); // ECDHE_ECDSA_AES_GCM suites
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, // supported_groups: secp256r1
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, // signature_algorithms: ecdsa p256
    ];
    body.extend_from_slice(&u16::try_from(extensions.len()).unwrap().to_be_bytes());
    body.extend_from_slice(extensions);

    let mut handshake_msg = vec![0x01]; // client_hello
    handshake_msg.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    handshake_msg.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01]; // handshake record
    record.extend_from_slice(&u16::try_from(handshake_msg.len()).unwrap().to_be_bytes());
    record.extend_from_slice(&handshake_msg);

    server.read_tls(&mut &record[..]).unwrap();
    let err = server.process_new_packets().unwrap_err();
    assert!(
        matches!(
            err,
            Error::PeerIncompatible(PeerIncompatible::SupportedVersionsExtensionRequired)
        ),
        "{err:?}"
    );
    let mut alert = Vec::new();
    server.write_tls(&mut alert).unwrap();
    // Plaintext alert record: type 21, fatal (2), protocol_version (70).
    assert_eq!(alert.first(), Some(&0x15));
    assert_eq!(alert.last(), Some(&70));
}
