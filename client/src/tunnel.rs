//! A session's connection to the gateway, kept up for forwards and the SOCKS listener: made on
//! demand by resuming the session (its latest ticket and the proof of its key, no new code;
//! [`crate::resume`]), retried with backoff, and failed over to the person's next gateway
//! (their stable order, [`crate::spread`]; the attempts, [`crate::failover`]) when one stops
//! answering.
//! Listeners never notice: only the forwarded connection that finds the link down waits for the
//! reconnect. One slow or refused resource never takes the link down for the others, and a
//! session the gateway has ended is remembered, so the listeners stop instead of knocking on the
//! gateway for every new connection. The end is noticed when it happens, not at the next
//! connection: the gateway closes a live link with its session-ended code and the reason
//! (killed, idle, logged out…), and the session's end time is watched here as well.

use crate::error::session_ended;
use crate::failover::{self, Attempt, Failed, Lost, Plan};
use crate::{ClientError, GatewayClient, Home, ResumeCredential, SavedSession};
use rampart_core::ErrorCode;
use rampart_core::protocol::ResourceInfo;
use rampart_core::text::printable;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, watch};

/// How long an open may go unanswered before the link itself is checked: if nothing at all has
/// come back from the gateway since the open was sent, the gateway is gone (crashed, or the
/// network changed) and the link is remade.
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for an open on a link that is alive: longer than the gateway's largest connect
/// timeout (120 s), so a slow target is reported by the gateway as `target_timeout`.
const OPEN_LIMIT: Duration = Duration::from_secs(150);
/// After a whole round of reconnect attempts failed, later callers within this time get the
/// same answer at once instead of starting another round each.
const FAILURE_MEMORY: Duration = Duration::from_secs(5);

/// Local connections carried at once per listener; more wait in the listen backlog, so a
/// runaway program cannot exhaust this process's file descriptors.
pub const MAX_LOCAL_CONNECTIONS: usize = 1024;

/// The QUIC application close code with which a gateway closes a connection whose session
/// ended (gateway/src/attachment.rs); the close reason reads `session ended: REASON`.
pub const CLOSE_SESSION_ENDED: u32 = 0x12;
/// How long after the session's end time (by the gateway's clock) the tunnel calls it expired
/// itself, if the gateway has not closed the link by then (it checks periodically).
const EXPIRY_GRACE: Duration = Duration::from_secs(2);
/// Longer than any session lasts: bounds an end time too far ahead to wait for.
const MAX_SESSION_SECS: u64 = 366 * 24 * 3600;

/// Why the session is over, once the gateway has said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The gateway's reason.
    pub code: ErrorCode,
    /// Its words.
    pub message: String,
    /// The gateway's name for why the session ended (`admin_kill`, `expired`, `idle`,
    /// `logout`…), when it closed the link with it.
    pub reason: Option<String>,
}

impl Ended {
    /// The one line the person reads: that the session ended, why as far as known, and what
    /// to do.
    pub fn explain(&self) -> String {
        // Without a reason of the gateway's (or for a copied session), the words every command
        // uses for the refusal.
        let refusal = |code| {
            crate::messages::explain(
                &ClientError::Refused {
                    code,
                    message: self.message.clone(),
                },
                crate::messages::Context::default(),
            )
        };
        if self.code == ErrorCode::TicketReused || self.reason.as_deref() == Some("ticket_reused") {
            return refusal(ErrorCode::TicketReused);
        }
        // Ends a new login undoes, and ends only the service desk can undo: telling someone whose
        // account is disabled to log in again sends them round in a circle.
        let login_again = "Log in again: rampart-connect login";
        let (why, next) = match self.reason.as_deref() {
            Some("admin_kill") => (
                "the service desk ended it",
                "Log in again if you still need access: rampart-connect login",
            ),
            Some("expired") => ("it reached the end of its time", login_again),
            Some("idle") => ("it was not used for too long", login_again),
            Some("logout") => ("you logged out (rampart-connect logout)", login_again),
            Some("session_limit") => ("you logged in again and the newer session took its place", login_again),
            Some("ended_elsewhere") => ("it was ended on another gateway", login_again),
            Some("account_disabled") => (
                "your account was disabled",
                "Logging in again will not work until it is enabled: call the service desk.",
            ),
            Some("groups_changed") => (
                "your access was withdrawn",
                "If you still need it, call the service desk.",
            ),
            Some(token) if token.starts_with("token_") => (
                "the service desk changed your token (revoked, reported lost or replaced)",
                "Logging in again with it will not work: call the service desk.",
            ),
            _ => return refusal(self.code),
        };
        format!("Your session has ended ({why}). {next}")
    }

    /// The end a gateway's close of the link means, if it means one.
    pub fn from_close(error: &quinn::ConnectionError) -> Option<Self> {
        let quinn::ConnectionError::ApplicationClosed(close) = error else {
            return None;
        };
        if close.error_code != quinn::VarInt::from_u32(CLOSE_SESSION_ENDED) {
            return None;
        }
        let text = printable(&String::from_utf8_lossy(&close.reason));
        let reason = text.strip_prefix("session ended: ").unwrap_or(&text).trim().to_owned();
        Some(Self {
            code: if reason == "ticket_reused" {
                ErrorCode::TicketReused
            } else {
                ErrorCode::SessionExpired
            },
            message: text,
            reason: Some(reason).filter(|r| !r.is_empty()),
        })
    }
}

#[derive(Debug)]
struct Link {
    current: Option<(usize, Arc<GatewayClient>)>,
    failed: Option<(Instant, String)>,
    /// The session's id, key and the latest ticket this process knows.
    credential: ResumeCredential,
}

/// The link to the gateways for one saved session.
#[derive(Debug)]
pub struct Tunnel {
    gateways: Vec<String>,
    ca_pem: String,
    home: Home,
    link: Mutex<Link>,
    resources: RwLock<Vec<ResourceInfo>>,
    ended: watch::Sender<Option<Ended>>,
    /// The link's current connection, for the watch on its close.
    links: watch::Sender<Option<Arc<GatewayClient>>>,
}

impl Tunnel {
    /// Connects and resumes the saved session now, so a dead session is reported at start.
    /// The gateway holding the session comes first, then the person's order of the others.
    /// Each resume's new ticket, and the gateway it was made on (after a fail-over, the new
    /// one), is saved in `home`, shared with other processes. From then on the session's end
    /// ([`ended`](Self::ended)) is noticed when it happens: the gateway closing the link with
    /// its session-ended code, or the session's end time passing.
    pub async fn start(home: Home, saved: SavedSession) -> Result<Arc<Self>, ClientError> {
        let gateways = saved.gateways_in_order();
        let credential = saved.credential()?;
        let expires_at = saved.expires_at;
        let tunnel = Arc::new(Self {
            gateways,
            ca_pem: saved.ca_pem,
            home,
            link: Mutex::new(Link {
                current: None,
                failed: None,
                credential,
            }),
            resources: RwLock::new(saved.resources),
            ended: watch::Sender::new(None),
            links: watch::Sender::new(None),
        });
        let client = tunnel.client().await?;
        // The session's end time by the gateway's clock, which said its time at connection.
        let left = u64::try_from(expires_at.saturating_sub(client.server_time())).unwrap_or(0);
        let expiry = tokio::time::Instant::now() + Duration::from_secs(left.min(MAX_SESSION_SECS)) + EXPIRY_GRACE;
        tokio::spawn(watch_for_end(Arc::downgrade(&tunnel), tunnel.links.subscribe(), expiry));
        Ok(tunnel)
    }

    /// Records that the session is over (the first reason stays).
    fn end(&self, ended: Ended) {
        self.ended.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(ended);
            true
        });
    }

    /// The resources the session may open, as the gateway last said.
    pub fn resources(&self) -> Vec<ResourceInfo> {
        self.resources.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The gateway the link is on now, if up.
    pub async fn gateway(&self) -> Option<String> {
        let link = self.link.lock().await;
        link.current.as_ref().map(|(i, _)| self.gateways[*i].clone())
    }

    /// Resolves once the gateway has said the session is over (ended, expired, killed).
    pub async fn ended(&self) -> Ended {
        let mut watch = self.ended.subscribe();
        loop {
            if let Some(ended) = watch.borrow_and_update().clone() {
                return ended;
            }
            if watch.changed().await.is_err() {
                // The sender lives in `self`, so this is unreachable while `self` is borrowed.
                std::future::pending::<()>().await;
            }
        }
    }

    fn ended_error(&self) -> Option<ClientError> {
        self.ended.borrow().as_ref().map(|e| ClientError::Refused {
            code: e.code,
            message: e.message.clone(),
        })
    }

    async fn client(&self) -> Result<Arc<GatewayClient>, ClientError> {
        if let Some(e) = self.ended_error() {
            return Err(e);
        }
        let mut link = self.link.lock().await;
        if let Some((_, client)) = link.current.as_ref().filter(|(_, c)| c.is_open()) {
            return Ok(client.clone());
        }
        if let Some(e) = self.ended_error() {
            return Err(e);
        }
        if let Some((at, reason)) = &link.failed
            && at.elapsed() < FAILURE_MEMORY
        {
            return Err(ClientError::ConnectionLost(reason.clone()));
        }
        let lost = link.current.as_ref().map(|(index, client)| Lost {
            index: *index,
            went_silent: client.went_silent(),
        });
        let plan = Plan::reconnect(lost);
        let first = plan.first(self.gateways.len());
        let had_link = link.current.take().is_some();
        let mut resuming = Resuming {
            tunnel: self,
            credential: &mut link.credential,
        };
        let tried = failover::first_answering(&self.gateways, &plan, &mut resuming).await;
        match tried {
            Ok((index, client)) => {
                if had_link || index != first {
                    eprintln!("reconnected to the gateway at {}", self.gateways[index]);
                }
                link.current = Some((index, client.clone()));
                link.failed = None;
                self.links.send_replace(Some(client.clone()));
                Ok(client)
            }
            Err(Failed::Stopped(ClientError::Refused { code, message })) if session_ended(code) => {
                self.end(Ended {
                    code,
                    message: message.clone(),
                    reason: None,
                });
                Err(ClientError::Refused { code, message })
            }
            Err(Failed::Stopped(error)) => Err(error),
            Err(Failed::Exhausted(last)) => {
                let error = last.unwrap_or(ClientError::NotLoggedIn);
                link.failed = Some((Instant::now(), error.to_string()));
                Err(error)
            }
        }
    }

    async fn connect(
        &self,
        gateway: &str,
        credential: &mut ResumeCredential,
    ) -> Result<Arc<GatewayClient>, ClientError> {
        let client = GatewayClient::connect(gateway, &self.ca_pem).await?;
        let grant = crate::resume::resume_saved(&self.home, &client, gateway, credential).await?;
        *self.resources.write().unwrap_or_else(PoisonError::into_inner) = grant.resources;
        Ok(Arc::new(client))
    }

    /// Opens a stream to `resource`, reconnecting (with backoff and fail-over) if the link is
    /// down. A refusal or a slow target concerns this stream only: the link stays up.
    pub async fn open(&self, resource: &str) -> Result<(quinn::SendStream, quinn::RecvStream), ClientError> {
        let client = self.client().await?;
        match open_on(&client, resource).await {
            Err(e) if e.is_connection_failure() && !client.is_open() => {
                // The link is gone (closed, reset by a restarted gateway, or silent): start over.
                let client = self.client().await?;
                open_on(&client, resource).await
            }
            other => other,
        }
    }
}

/// An attempt of the tunnel's: connect, and resume the session there.
struct Resuming<'t> {
    tunnel: &'t Tunnel,
    credential: &'t mut ResumeCredential,
}

impl Attempt for Resuming<'_> {
    type Made = Arc<GatewayClient>;

    fn attempt<'s>(
        &'s mut self,
        gateway: &'s str,
    ) -> impl Future<Output = Result<Arc<GatewayClient>, ClientError>> + Send + 's {
        self.tunnel.connect(gateway, self.credential)
    }
}

/// Watches the tunnel's links until the session ends: a link the gateway closes with its
/// session-ended code ends it with the gateway's reason, and so does the session's end time
/// (`expiry`) if nothing else ended it first. Any other close (a restart, the network) leaves
/// the next connection to reconnect, as before. Stops when the tunnel is dropped.
async fn watch_for_end(
    tunnel: Weak<Tunnel>,
    mut links: watch::Receiver<Option<Arc<GatewayClient>>>,
    expiry: tokio::time::Instant,
) {
    let mut current = links.borrow_and_update().clone();
    loop {
        let watched = current.clone();
        let closed = async move {
            match watched {
                Some(client) => client.closed().await,
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            error = closed => {
                current = None;
                Ended::from_close(&error)
            }
            changed = links.changed() => {
                if changed.is_err() {
                    return;
                }
                current = links.borrow_and_update().clone();
                None
            }
            () = tokio::time::sleep_until(expiry) => Some(Ended {
                code: ErrorCode::SessionExpired,
                message: "the session reached its end time".into(),
                reason: Some("expired".into()),
            }),
        };
        if let Some(ended) = ended {
            if let Some(tunnel) = tunnel.upgrade() {
                tunnel.end(ended);
            }
            return;
        }
    }
}

/// One open on one link. A link that has not heard from the gateway at all within
/// [`LIVENESS_TIMEOUT`] is given up (the caller reconnects); a live link waits for the
/// gateway's answer, whose connect timeout bounds it.
async fn open_on(
    client: &GatewayClient,
    resource: &str,
) -> Result<(quinn::SendStream, quinn::RecvStream), ClientError> {
    let heard = client.datagrams_received();
    let open = client.open(resource);
    tokio::pin!(open);
    match tokio::time::timeout(LIVENESS_TIMEOUT, &mut open).await {
        Ok(result) => result,
        Err(_) if client.datagrams_received() > heard => tokio::time::timeout(OPEN_LIMIT - LIVENESS_TIMEOUT, open)
            .await
            .unwrap_or_else(|_| Err(ClientError::Protocol(format!("no answer about {resource} in time")))),
        Err(_) => {
            client.abandon();
            Err(ClientError::ConnectionLost("the gateway stopped answering".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ClientKey;
    use rampart_core::secret::Sensitive;

    #[test]
    fn only_the_session_ended_close_code_is_an_end() {
        let close = |code: u32, reason: &[u8]| {
            quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
                error_code: quinn::VarInt::from_u32(code),
                reason: reason.to_vec().into(),
            })
        };
        let killed = Ended::from_close(&close(CLOSE_SESSION_ENDED, b"session ended: admin_kill")).unwrap();
        assert_eq!(killed.reason.as_deref(), Some("admin_kill"));
        assert_eq!(killed.code, ErrorCode::SessionExpired);
        let copied = Ended::from_close(&close(CLOSE_SESSION_ENDED, b"session ended: ticket_reused")).unwrap();
        assert_eq!(copied.code, ErrorCode::TicketReused);
        let silent = Ended::from_close(&close(CLOSE_SESSION_ENDED, b"")).unwrap();
        assert_eq!(silent.reason, None);
        // A restart, or this side giving the link up, is no end.
        assert_eq!(Ended::from_close(&close(0, b"gateway shutting down")), None);
        assert_eq!(Ended::from_close(&quinn::ConnectionError::LocallyClosed), None);
        assert_eq!(Ended::from_close(&quinn::ConnectionError::TimedOut), None);
    }

    #[tokio::test]
    async fn the_end_time_ends_the_session_with_no_link_and_later_opens_are_told_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let tunnel = Arc::new(Tunnel {
            // Nothing listens there: an open that tried the gateway would fail otherwise.
            gateways: vec!["127.0.0.1:9".into()],
            ca_pem: String::new(),
            home: Home::resolve(Some(dir.path().into())).unwrap(),
            link: Mutex::new(Link {
                current: None,
                failed: None,
                credential: ResumeCredential {
                    session_id: "s".into(),
                    ticket: Sensitive::new("t".into()),
                    key: ClientKey::generate().unwrap(),
                },
            }),
            resources: RwLock::new(Vec::new()),
            ended: watch::Sender::new(None),
            links: watch::Sender::new(None),
        });
        let expiry = tokio::time::Instant::now() + Duration::from_millis(50);
        tokio::spawn(watch_for_end(Arc::downgrade(&tunnel), tunnel.links.subscribe(), expiry));
        let ended = tokio::time::timeout(Duration::from_secs(5), tunnel.ended())
            .await
            .unwrap();
        assert_eq!(ended.reason.as_deref(), Some("expired"));
        assert!(
            ended.explain().contains("(it reached the end of its time)"),
            "{}",
            ended.explain()
        );
        let open = tunnel.open("echo").await;
        assert!(
            matches!(
                open,
                Err(ClientError::Refused {
                    code: ErrorCode::SessionExpired,
                    ..
                })
            ),
            "{open:?}"
        );
    }

    #[test]
    fn an_end_names_its_reason_in_words() {
        let ended = |reason: Option<&str>| Ended {
            code: ErrorCode::SessionExpired,
            message: String::new(),
            reason: reason.map(str::to_owned),
        };
        let killed = ended(Some("admin_kill")).explain();
        assert_eq!(
            killed,
            "Your session has ended (the service desk ended it). Log in again if you still need access: \
             rampart-connect login"
        );
        assert!(ended(Some("expired")).explain().contains("end of its time"));
        assert!(ended(Some("idle")).explain().contains("not used for too long"));
        assert!(ended(Some("token_revoked")).explain().contains("changed your token"));
        // Ends a new login undoes say to log in; the others send the person to the service desk.
        for undone in ["expired", "idle", "logout", "session_limit", "ended_elsewhere"] {
            let said = ended(Some(undone)).explain();
            assert!(
                said.ends_with("Log in again: rampart-connect login"),
                "{undone}: {said}"
            );
            assert!(!said.contains("service desk"), "{undone}: {said}");
        }
        for stuck in [
            "account_disabled",
            "groups_changed",
            "token_revoked",
            "token_lost",
            "token_replaced",
        ] {
            let said = ended(Some(stuck)).explain();
            assert!(said.contains("call the service desk"), "{stuck}: {said}");
            assert!(!said.contains("Log in again"), "{stuck}: {said}");
        }
        assert_eq!(
            ended(Some("account_disabled")).explain(),
            "Your session has ended (your account was disabled). Logging in again will not work until it is \
             enabled: call the service desk."
        );
        assert!(
            ended(None)
                .explain()
                .contains("it expired, or you or the service desk ended it")
        );
        assert!(ended(Some("ticket_reused")).explain().contains("a copy of it was used"));
    }
}
