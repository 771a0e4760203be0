//! QUIC transport settings: TLS 1.3 only, no 0-RTT, stream limits and flow-control windows
//! sized for many forwarded connections per session on fast links.

use crate::config::GatewaySettings;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{IdleTimeout, TransportConfig, VarInt};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Per-stream receive window: enough for one flow at several Gbit/s on a LAN-like RTT.
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// Connection-wide receive and send windows, shared by a session's flows.
const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;
/// Streams the QUIC layer admits beyond `max_streams_per_connection`: the gateway answers
/// them with a `too_many_streams` refusal instead of leaving the client blocked on credit.
const STREAM_HEADROOM: u32 = 16;

/// Concurrent streams a logged-in connection is given at first; [`grant_streams`] raises it as
/// its flows use it.
const INITIAL_STREAMS: u32 = 32;

/// Streams a connection may open before it logs in: the control stream and a few refusals.
const PRE_LOGIN_STREAMS: u32 = 4;
/// Connection-wide receive window before login: login frames are at most 16 KiB, so a peer
/// that has not logged in can make the gateway hold no more than this for it.
const PRE_LOGIN_WINDOW: u32 = 64 * 1024;

/// UDP socket buffers asked of the kernel, each way. A login storm's first packets (a thousand
/// clients' 1,200-byte Initials at once) and a fast flow's bursts arrive faster than one receive
/// pass drains them; at the kernel's usual default (about 208 KiB) the rest are dropped, and each
/// dropped Initial costs its client a retransmission a second or more later.
const UDP_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// Below this receive buffer the gateway warns at start (the kernel's `net.core.rmem_max` caps it).
const UDP_BUFFER_WARN_BYTES: usize = 2 * 1024 * 1024;

/// Label mixed into the stateless-reset key, so the key is used for nothing else.
const RESET_KEY_LABEL: &[u8] = b"rampart gateway QUIC stateless reset v1";

/// The endpoint config, with a stateless-reset key derived from the gateway's private key
/// (one-way, by HMAC-SHA256). A gateway restarted with the same key recognises its earlier
/// connections' reset tokens, so clients learn at their next packet that the connection is gone
/// and resume at once, instead of waiting out the idle timeout against a silent peer.
pub(crate) fn endpoint_config(key: &PrivateKeyDer<'_>) -> quinn::EndpointConfig {
    let secret = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.secret_der());
    let derived = ring::hmac::sign(&secret, RESET_KEY_LABEL);
    let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref());
    quinn::EndpointConfig::new(Arc::new(reset_key))
}

/// Binds the gateway's UDP socket asking for [`UDP_BUFFER_BYTES`] each way; warns when the kernel
/// grants a receive buffer under [`UDP_BUFFER_WARN_BYTES`], naming the setting to raise (Linux
/// caps the request at `net.core.rmem_max` and reports twice what it keeps, for bookkeeping).
pub(crate) fn bind_socket(listen: std::net::SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(listen)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    // A refused request leaves the kernel's default in place; the size read back tells.
    let _ = state.set_recv_buffer_size((&socket).into(), UDP_BUFFER_BYTES);
    let _ = state.set_send_buffer_size((&socket).into(), UDP_BUFFER_BYTES);
    // Linux reports twice what it keeps (the rest is for its bookkeeping).
    let granted = state.recv_buffer_size((&socket).into()).unwrap_or(0) / 2;
    if granted < UDP_BUFFER_WARN_BYTES {
        tracing::warn!(
            target: "rampart::transport", receive_buffer_bytes = granted, wanted_bytes = UDP_BUFFER_BYTES,
            "the kernel gave the QUIC socket a small receive buffer; under a login storm packets will be dropped \
             and logins delayed: raise net.core.rmem_max (sysctl) to at least {UDP_BUFFER_BYTES}"
        );
    } else {
        tracing::debug!(target: "rampart::transport", receive_buffer_bytes = granted, "QUIC socket buffers sized");
    }
    Ok(socket)
}

/// Builds the quinn server config from the gateway's certificate.
pub(crate) fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    settings: &GatewaySettings,
) -> anyhow::Result<quinn::ServerConfig> {
    let tls = rampart_certs::server_config(chain, key, &[rampart_core::ALPN])?;
    // rampart-certs sets max_early_data_size = 0; QuicServerConfig keeps it, so 0-RTT stays off.
    let crypto = QuicServerConfig::try_from(tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport(settings)?));
    Ok(config)
}

fn transport(settings: &GatewaySettings) -> anyhow::Result<TransportConfig> {
    let mut t = TransportConfig::default();
    // Small until login: an unauthenticated peer gets a small budget (see `open_up`).
    t.max_concurrent_bidi_streams(VarInt::from_u32(PRE_LOGIN_STREAMS));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.max_idle_timeout(Some(IdleTimeout::try_from(Duration::from_secs(
        settings.idle_timeout_secs,
    ))?));
    t.stream_receive_window(VarInt::from_u32(STREAM_WINDOW));
    t.receive_window(VarInt::from_u32(PRE_LOGIN_WINDOW));
    t.send_window(u64::from(CONNECTION_WINDOW));
    t.ack_frequency_config(Some(rampart_core::quic_relay::ack_frequency()));
    Ok(t)
}

/// Gives a connection that has logged in (or resumed) its budget: the connection-wide window for
/// fast flows, and streams as [`grant_streams`] says for no flow yet.
pub(crate) fn open_up(connection: &quinn::Connection, settings: &GatewaySettings, credit: &Mutex<u32>) {
    grant_streams(connection, settings, credit, 0);
    connection.set_receive_window(VarInt::from_u32(CONNECTION_WINDOW));
}

/// Raises a logged-in connection's stream credit (`credit`: what it was given so far) when its
/// `open` forwarded connections reach half of it: to at least [`INITIAL_STREAMS`] and twice the
/// open flows, doubling, up to `max_streams_per_connection` plus the headroom. quinn keeps state
/// for every stream a peer may open, so the whole limit granted at login cost each idle session
/// about 84 KiB (of 120 KiB; 0.8 GiB of 1.2 GiB for 10,000 idle sessions).
pub(crate) fn grant_streams(
    connection: &quinn::Connection,
    settings: &GatewaySettings,
    credit: &Mutex<u32>,
    open: u32,
) {
    let most = settings.max_streams_per_connection.saturating_add(STREAM_HEADROOM);
    let mut given = credit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let needed = open.saturating_mul(2).max(INITIAL_STREAMS).min(most);
    if *given >= needed {
        return;
    }
    let wanted = needed.max(given.saturating_mul(2)).min(most);
    // Under the lock, so two raises never reach quinn out of order.
    connection.set_max_concurrent_bi_streams(VarInt::from_u32(wanted));
    *given = wanted;
}
