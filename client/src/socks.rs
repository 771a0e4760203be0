//! A SOCKS5 listener (RFC 1928, CONNECT, no authentication) on loopback only, so browsers and
//! `curl --socks5-hostname` reach resources by name: a CONNECT to a resource's name, or to its
//! target `host:port`, is carried to that resource through the gateway. Anything else is still
//! asked of the gateway (so the refusal is on the audit trail) and answered "not allowed".

use crate::error::exit;
use crate::messages::{Context, explain};
use crate::show::session_over;
use crate::tunnel::Tunnel;
use crate::{ClientError, Home};
use rampart_core::ErrorCode;
use rampart_core::protocol::ResourceInfo;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a client has to send its greeting and request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// SOCKS5 reply codes (RFC 1928 §6).
mod reply {
    pub const SUCCEEDED: u8 = 0x00;
    pub const GENERAL_FAILURE: u8 = 0x01;
    pub const NOT_ALLOWED: u8 = 0x02;
    pub const HOST_UNREACHABLE: u8 = 0x04;
    pub const CONNECTION_REFUSED: u8 = 0x05;
    pub const COMMAND_NOT_SUPPORTED: u8 = 0x07;
    pub const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;
}

/// `rampart-connect socks`: the proxy on `listen` until the session ends or Ctrl-C; the exit
/// code.
pub async fn run(home: &Home, listen: SocketAddr) -> Result<u8, ClientError> {
    let saved = home.load_session()?.ok_or(ClientError::NotLoggedIn)?;
    let listener = bind(listen).await?;
    let tunnel = Tunnel::start(home.clone(), saved).await?;
    let local = listener.local_addr().map_err(|e| ClientError::Local(e.to_string()))?;
    println!("SOCKS5 proxy on {local}; for example: curl --socks5-hostname {local} http://RESOURCE/");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    tokio::select! {
        () = serve(tunnel.clone(), listener) => {}
        ended = tunnel.ended() => return Ok(session_over(&ended)),
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(exit::OK)
}

/// Binds the SOCKS listener; only loopback addresses are accepted, since it asks for no
/// password.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ClientError> {
    if !addr.ip().is_loopback() {
        return Err(ClientError::Local(format!(
            "SOCKS listens on this computer only (127.0.0.1 or [::1]), not on {addr}: it asks for no password"
        )));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|e| ClientError::Local(format!("cannot listen on {addr}: {e}")))
}

/// Serves SOCKS clients forever.
pub async fn serve(tunnel: Arc<Tunnel>, listener: TcpListener) {
    let slots = Arc::new(tokio::sync::Semaphore::new(crate::tunnel::MAX_LOCAL_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((tcp, _)) => {
                let tunnel = tunnel.clone();
                tokio::spawn(async move {
                    handle(tunnel, tcp).await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Where a CONNECT asked to go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    Name(String, u16),
    Ip(IpAddr, u16),
}

impl Destination {
    /// The resource it names: by resource name, or by its target `host:port`. Unmatched
    /// destinations are asked of the gateway under their own name, which refuses them.
    fn resource(&self, resources: &[ResourceInfo]) -> String {
        let (host, port, v6) = match self {
            Self::Name(name, port) => (name.trim_end_matches('.').to_ascii_lowercase(), *port, false),
            Self::Ip(ip, port) => {
                let ip = ip.to_canonical();
                (ip.to_string(), *port, ip.is_ipv6())
            }
        };
        if let Some(r) = resources.iter().find(|r| r.name.eq_ignore_ascii_case(&host)) {
            return r.name.clone();
        }
        let wanted = if v6 {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        resources
            .iter()
            .find(|r| {
                r.target
                    .as_deref()
                    .is_some_and(|t| t.trim_end_matches('.').eq_ignore_ascii_case(&wanted))
            })
            .map_or(host, |r| r.name.clone())
    }
}

async fn handle(tunnel: Arc<Tunnel>, mut tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let destination = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut tcp)).await {
        Ok(Ok(destination)) => destination,
        Ok(Err(code)) => {
            if let Some(code) = code {
                let _ = send_reply(&mut tcp, code).await;
            }
            return;
        }
        Err(_) => return,
    };
    let resource = destination.resource(&tunnel.resources());
    match tunnel.open(&resource).await {
        Ok((mut send, mut recv)) => {
            if send_reply(&mut tcp, reply::SUCCEEDED).await.is_err() {
                return;
            }
            let (read, write) = tcp.into_split();
            rampart_core::quic_relay::relay(read, write, &mut recv, &mut send, |_| {}, |_| {}).await;
        }
        Err(e) => {
            let hours = tunnel
                .resources()
                .into_iter()
                .find(|r| r.name == resource)
                .and_then(|r| r.hours);
            let context = Context {
                resource: Some(&resource),
                hours: hours.as_deref(),
                ..Context::default()
            };
            // A session's end is announced once, by the command, not by every connection.
            if !e.ends_session() {
                eprintln!("SOCKS {resource}: {}", explain(&e, context));
            }
            let _ = send_reply(&mut tcp, reply_for(&e)).await;
        }
    }
}

/// Reads the greeting and the request. `Err(Some(code))`: answer with `code` and close;
/// `Err(None)`: close without an answer (not SOCKS5, or nothing acceptable to say).
async fn handshake(tcp: &mut TcpStream) -> Result<Destination, Option<u8>> {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.map_err(|_| None)?;
    if head[0] != 5 {
        return Err(None);
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    tcp.read_exact(&mut methods).await.map_err(|_| None)?;
    if !methods.contains(&0) {
        // "No acceptable methods": the client must offer no-authentication.
        let _ = tcp.write_all(&[5, 0xFF]).await;
        return Err(None);
    }
    tcp.write_all(&[5, 0]).await.map_err(|_| None)?;
    let mut request = [0u8; 4];
    tcp.read_exact(&mut request).await.map_err(|_| None)?;
    if request[0] != 5 {
        return Err(None);
    }
    let destination = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            tcp.read_exact(&mut ip).await.map_err(|_| None)?;
            Destination::Ip(IpAddr::V4(Ipv4Addr::from(ip)), read_port(tcp).await?)
        }
        3 => {
            let len = tcp.read_u8().await.map_err(|_| None)?;
            let mut name = vec![0u8; usize::from(len)];
            tcp.read_exact(&mut name).await.map_err(|_| None)?;
            let name = String::from_utf8(name).map_err(|_| Some(reply::ADDRESS_TYPE_NOT_SUPPORTED))?;
            if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(Some(reply::ADDRESS_TYPE_NOT_SUPPORTED));
            }
            Destination::Name(name, read_port(tcp).await?)
        }
        4 => {
            let mut ip = [0u8; 16];
            tcp.read_exact(&mut ip).await.map_err(|_| None)?;
            Destination::Ip(IpAddr::V6(Ipv6Addr::from(ip)), read_port(tcp).await?)
        }
        _ => return Err(Some(reply::ADDRESS_TYPE_NOT_SUPPORTED)),
    };
    if request[1] != 1 {
        return Err(Some(reply::COMMAND_NOT_SUPPORTED));
    }
    Ok(destination)
}

async fn read_port(tcp: &mut TcpStream) -> Result<u16, Option<u8>> {
    tcp.read_u16().await.map_err(|_| None)
}

async fn send_reply(tcp: &mut TcpStream, code: u8) -> std::io::Result<()> {
    // The bound address is not meaningful through a tunnel: 0.0.0.0:0.
    tcp.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tcp.flush().await
}

fn reply_for(error: &ClientError) -> u8 {
    match error {
        ClientError::Refused { code, .. } => match code {
            ErrorCode::UnknownResource
            | ErrorCode::Forbidden
            | ErrorCode::OutsideHours
            | ErrorCode::SessionTooOld
            | ErrorCode::SessionExpired
            | ErrorCode::TicketReused
            | ErrorCode::NotAuthenticated => reply::NOT_ALLOWED,
            ErrorCode::TargetRefused => reply::CONNECTION_REFUSED,
            ErrorCode::TargetUnreachable | ErrorCode::TargetTimeout => reply::HOST_UNREACHABLE,
            _ => reply::GENERAL_FAILURE,
        },
        _ => reply::GENERAL_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn resources() -> Vec<ResourceInfo> {
        vec![
            ResourceInfo {
                name: "intranet".into(),
                description: String::new(),
                target: Some("intranet.bank.example:443".into()),
                hours: None,
            },
            ResourceInfo {
                name: "db".into(),
                description: String::new(),
                target: Some("10.0.0.5:5432".into()),
                hours: None,
            },
        ]
    }

    #[test]
    fn destinations_map_to_resources_by_name_or_target() {
        let r = resources();
        assert_eq!(Destination::Name("INTRANET".into(), 80).resource(&r), "intranet");
        assert_eq!(
            Destination::Name("intranet.bank.example.".into(), 443).resource(&r),
            "intranet"
        );
        assert_eq!(
            Destination::Ip("10.0.0.5".parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), 5432).resource(&r),
            "db"
        );
        assert_eq!(
            Destination::Ip(
                "::ffff:10.0.0.5".parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                5432
            )
            .resource(&r),
            "db"
        );
        // Unmatched: asked of the gateway by name, which refuses it.
        assert_eq!(Destination::Name("payroll".into(), 80).resource(&r), "payroll");
        assert_eq!(
            Destination::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 6)), 5432).resource(&r),
            "10.0.0.6"
        );
    }

    /// A client on one end of a loopback connection, the handshake on the other.
    async fn handshake_with(bytes: &[u8]) -> (Result<Destination, Option<u8>>, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        client.write_all(bytes).await.unwrap();
        client.shutdown().await.unwrap();
        let result = handshake(&mut server).await;
        if let Err(Some(code)) = result {
            send_reply(&mut server, code).await.unwrap();
        }
        drop(server);
        // A close with unread input is a reset: what arrived before it is the answer.
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer).await;
        (result, answer)
    }

    #[tokio::test]
    async fn hostile_or_unsupported_requests_get_an_answer_or_a_close_never_a_panic() {
        let connect_name = [&[5u8, 1, 0, 5, 1, 0, 3, 4][..], b"echo", &[0, 80]].concat();
        let (ok, answer) = handshake_with(&connect_name).await;
        assert_eq!(ok, Ok(Destination::Name("echo".into(), 80)));
        assert_eq!(answer, [5, 0]);
        // SOCKS4, and SOCKS5 without the no-authentication method.
        assert_eq!(handshake_with(&[4, 1, 0, 80]).await, (Err(None), vec![]));
        assert_eq!(handshake_with(&[5, 1, 2]).await, (Err(None), vec![5, 0xFF]));
        // BIND, an unknown address type, a name with a newline, and a cut-off request.
        let bind = [5u8, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80];
        assert_eq!(handshake_with(&bind).await.0, Err(Some(reply::COMMAND_NOT_SUPPORTED)));
        let odd = [5u8, 1, 0, 5, 1, 0, 9];
        assert_eq!(
            handshake_with(&odd).await.0,
            Err(Some(reply::ADDRESS_TYPE_NOT_SUPPORTED))
        );
        let newline = [&[5u8, 1, 0, 5, 1, 0, 3, 3][..], b"a\nb", &[0, 80]].concat();
        assert_eq!(
            handshake_with(&newline).await.0,
            Err(Some(reply::ADDRESS_TYPE_NOT_SUPPORTED))
        );
        assert_eq!(handshake_with(&[5, 1, 0, 5, 1, 0, 3, 200, b'x']).await.0, Err(None));
    }

    #[test]
    fn refusals_map_to_socks_replies() {
        let refused = |code| ClientError::Refused {
            code,
            message: String::new(),
        };
        assert_eq!(reply_for(&refused(ErrorCode::Forbidden)), reply::NOT_ALLOWED);
        assert_eq!(reply_for(&refused(ErrorCode::UnknownResource)), reply::NOT_ALLOWED);
        assert_eq!(reply_for(&refused(ErrorCode::TargetRefused)), reply::CONNECTION_REFUSED);
        assert_eq!(reply_for(&ClientError::NotLoggedIn), reply::GENERAL_FAILURE);
    }
}
