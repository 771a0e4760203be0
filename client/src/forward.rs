//! Local port forwards: listen on local TCP addresses and carry each accepted connection to a
//! resource through the gateway, one QUIC stream per connection. A lost gateway connection is
//! re-established by the [`Tunnel`] on the next accepted connection. Names the session may not
//! use are refused before anything listens ([`check_names`]).

use crate::error::exit;
use crate::messages::{Context, explain};
use crate::show::session_over;
pub use crate::tunnel::Tunnel;
use crate::{ClientError, Home};
use rampart_core::protocol::ResourceInfo;
use rampart_core::text::printable;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// `rampart-connect forward`: carries `mappings` (without any, the profile's) until the session
/// ends or Ctrl-C; the exit code. The gateway's current list of resources, from the resume at
/// start, is checked before anything listens.
pub async fn run(home: &Home, mappings: Vec<Mapping>) -> Result<u8, ClientError> {
    let mappings = if mappings.is_empty() {
        profile_forwards(home)?
    } else {
        mappings
    };
    let saved = home.load_session()?.ok_or(ClientError::NotLoggedIn)?;
    let tunnel = Tunnel::start(home.clone(), saved).await?;
    if let Err(refusal) = check_names(&mappings, &tunnel.resources()) {
        eprintln!("{refusal}");
        return Ok(exit::RESOURCE);
    }
    let listeners = bind(&mappings).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (listener, resource) in listeners {
        let local = listener.local_addr().map_err(|e| ClientError::Local(e.to_string()))?;
        println!("forwarding {local} -> {resource}");
        tasks.spawn(serve(tunnel.clone(), listener, resource));
    }
    let _ = std::io::stdout().flush();
    let ended = tokio::select! {
        ended = tunnel.ended() => Some(ended),
        _ = tokio::signal::ctrl_c() => None,
    };
    tasks.abort_all();
    Ok(ended.map_or(exit::OK, |ended| session_over(&ended)))
}

/// The profile's forwards, for `forward` without mappings.
fn profile_forwards(home: &Home) -> Result<Vec<Mapping>, ClientError> {
    let forwards = home.load_profile()?.map(|p| p.forwards).unwrap_or_default();
    if forwards.is_empty() {
        return Err(ClientError::Local(
            "name what to forward, e.g. 127.0.0.1:3389=desktop (your profile names none)".into(),
        ));
    }
    forwards.iter().map(|f| f.parse().map_err(ClientError::Local)).collect()
}

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

/// Checks every mapping's resource against those the session may use (`granted`, the
/// gateway's list at the session's latest resume). The refusal names each resource that is
/// not among them and lists the ones that are, so a typo or a resource never granted is found
/// at start instead of at the first connection.
pub fn check_names(mappings: &[Mapping], granted: &[ResourceInfo]) -> Result<(), String> {
    let mut unknown: Vec<String> = Vec::new();
    for m in mappings {
        let quoted = format!("{:?}", printable(&m.resource));
        if !granted.iter().any(|r| r.name == m.resource) && !unknown.contains(&quoted) {
            unknown.push(quoted);
        }
    }
    let Some((first, rest)) = unknown.split_first() else {
        return Ok(());
    };
    let named = if rest.is_empty() {
        format!("{first} is not a resource you may use")
    } else {
        format!("{} are not resources you may use", unknown.join(", "))
    };
    let open = if granted.is_empty() {
        "No resources are open to you yet.".to_owned()
    } else {
        let names: Vec<String> = granted.iter().map(|r| printable(&r.name)).collect();
        format!("You may use: {}.", names.join(", "))
    };
    Err(format!(
        "Not forwarding anything: {named}. {open} Check the spelling (`rampart-connect status` lists them \
         with descriptions); if you need {} for your work, ask the service desk.",
        if rest.is_empty() { "it" } else { "them" }
    ))
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
            let (mut send, mut recv) = (send, recv);
            let outcome =
                rampart_core::quic_relay::relay(tcp_read, tcp_write, &mut recv, &mut send, |_| {}, |_| {}).await;
            tracing::debug!(%peer, %resource, sent = outcome.to_quic, received = outcome.to_tcp, "connection closed");
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
                eprintln!("{resource}: {}", explain(&e, context));
            }
            tracing::debug!(%peer, %resource, "connection refused");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_the_session_may_not_use_are_refused_with_those_it_may() {
        let granted = vec![
            ResourceInfo {
                name: "echo".into(),
                description: "Echo service".into(),
                target: None,
                hours: None,
            },
            ResourceInfo {
                name: "desktop".into(),
                description: String::new(),
                target: None,
                hours: None,
            },
        ];
        let map = |text: &str| text.parse::<Mapping>().unwrap();
        assert!(check_names(&[map("127.0.0.1:1=echo"), map("127.0.0.1:2=desktop")], &granted).is_ok());
        let one = check_names(&[map("127.0.0.1:1=echo"), map("127.0.0.1:2=ecco")], &granted).unwrap_err();
        assert!(
            one.starts_with(
                "Not forwarding anything: \"ecco\" is not a resource you may use. You may use: echo, desktop."
            ),
            "{one}"
        );
        let two = check_names(&[map("127.0.0.1:1=payroll"), map("127.0.0.1:2=x")], &granted).unwrap_err();
        assert!(
            two.contains("\"payroll\", \"x\" are not resources you may use"),
            "{two}"
        );
        let none = check_names(&[map("127.0.0.1:1=echo")], &[]).unwrap_err();
        assert!(none.contains("No resources are open to you yet."), "{none}");
    }

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
