//! Local port forwards: listen on local TCP addresses and carry each accepted connection to a
//! resource through the gateway, one QUIC stream per connection. A lost gateway connection is
//! re-established by the [`Tunnel`] on the next accepted connection.

use crate::ClientError;
use crate::messages::{Context, explain};
pub use crate::tunnel::Tunnel;
use rampart_core::io::relay;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// One `LOCAL_ADDR=RESOURCE` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Local address to listen on.
    pub local: SocketAddr,
    /// Resource name at the gateway.
    pub resource: String,
}

impl std::str::FromStr for Mapping {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (local, resource) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected LOCAL_ADDR=RESOURCE"))?;
        let local: SocketAddr = local
            .parse()
            .map_err(|_| format!("{local:?}: expected an address such as 127.0.0.1:8080"))?;
        // Whoever connects to a forward uses this person's session, with no password asked.
        if !local.ip().is_loopback() {
            return Err(format!(
                "{s:?}: forwards listen on this computer only (127.0.0.1 or [::1]), not on {}",
                local.ip()
            ));
        }
        if resource.is_empty() {
            return Err(format!("{s:?}: the resource name is missing"));
        }
        Ok(Self {
            local,
            resource: resource.to_owned(),
        })
    }
}

/// Binds every mapping's listener; fails before serving if any address is taken.
pub async fn bind(mappings: &[Mapping]) -> Result<Vec<(TcpListener, String)>, ClientError> {
    let mut listeners = Vec::new();
    for m in mappings {
        let listener = TcpListener::bind(m.local)
            .await
            .map_err(|e| ClientError::Local(format!("cannot listen on {}: {e}", m.local)))?;
        listeners.push((listener, m.resource.clone()));
    }
    Ok(listeners)
}

/// Serves one listener forever.
pub async fn serve(tunnel: Arc<Tunnel>, listener: TcpListener, resource: String) {
    let slots = Arc::new(tokio::sync::Semaphore::new(crate::tunnel::MAX_LOCAL_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let (tunnel, resource) = (tunnel.clone(), resource.clone());
                tokio::spawn(async move {
                    carry(tunnel, tcp, peer, resource).await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn carry(tunnel: Arc<Tunnel>, tcp: TcpStream, peer: SocketAddr, resource: String) {
    let _ = tcp.set_nodelay(true);
    match tunnel.open(&resource).await {
        Ok((send, recv)) => {
            let (tcp_read, tcp_write) = tcp.into_split();
            let outcome = relay(tcp_read, tcp_write, recv, send).await;
            tracing::debug!(%peer, %resource, sent = outcome.left_to_right, received = outcome.right_to_left, "connection closed");
        }
        Err(e) => {
            let context = Context {
                resource: Some(&resource),
                ..Context::default()
            };
            eprintln!("{resource}: {}", explain(&e, context));
            tracing::debug!(%peer, %resource, "connection refused");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_mappings() {
        let m: Mapping = "127.0.0.1:8080=intranet".parse().unwrap();
        assert_eq!(m.local.port(), 8080);
        assert_eq!(m.resource, "intranet");
        assert!("[::1]:8080=intranet".parse::<Mapping>().is_ok());
        for bad in [
            "127.0.0.1:8080",
            "nohost=x",
            "127.0.0.1:1=",
            "0.0.0.0:3389=desktop",
            "192.168.1.5:80=x",
        ] {
            assert!(bad.parse::<Mapping>().is_err(), "{bad}");
        }
    }
}
