//! A session's connection to the gateway, kept up for forwards and the SOCKS listener: made on
//! demand by resuming the session (its latest ticket and the proof of its key, no new code;
//! [`crate::resume`]), retried with backoff, and failed over to the
//! person's next gateway (their stable order, [`crate::spread`]) when one stops answering.
//! Listeners never notice: only the forwarded connection that finds the link down waits for the
//! reconnect. One slow or refused resource never takes the link down for the others, and a
//! session the gateway has ended is remembered, so the listeners stop instead of knocking on the
//! gateway for every new connection.

use crate::{ClientError, GatewayClient, Home, ResumeCredential, SavedSession};
use rampart_core::ErrorCode;
use rampart_core::protocol::ResourceInfo;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, watch};

/// Waits before each round of attempts over every gateway (about 15 s in all).
const BACKOFF_MS: [u64; 6] = [0, 250, 500, 1_000, 3_000, 10_000];
/// Longest wait a busy gateway may ask for between rounds.
const MAX_BUSY_WAIT: Duration = Duration::from_secs(30);
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

/// Why the session is over, once the gateway has said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The gateway's reason.
    pub code: ErrorCode,
    /// Its words.
    pub message: String,
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
}

impl Tunnel {
    /// Connects and resumes the saved session now, so a dead session is reported at start.
    /// The gateway holding the session comes first, then the person's order of the others.
    /// Each resume's new ticket, and the gateway it was made on (after a fail-over, the new
    /// one), is saved in `home`, shared with other processes.
    pub async fn start(home: Home, saved: SavedSession) -> Result<Arc<Self>, ClientError> {
        let gateways = crate::spread::starting_with(Some(&saved.gateway), &saved.user, &saved.gateways);
        let credential = saved.credential()?;
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
        });
        tunnel.client().await?;
        Ok(tunnel)
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
        let lost = link.current.as_ref().map(|(i, client)| (*i, client.went_silent()));
        let first = attempt_order(self.gateways.len(), lost, 0)
            .first()
            .copied()
            .unwrap_or(0);
        let had_link = link.current.take().is_some();
        let mut last: Option<ClientError> = None;
        for (round, delay) in BACKOFF_MS.into_iter().enumerate() {
            let busy_wait = match &last {
                Some(ClientError::Busy { retry_after_secs }) => {
                    Duration::from_secs(u64::from(*retry_after_secs)).min(MAX_BUSY_WAIT)
                }
                _ => Duration::ZERO,
            };
            tokio::time::sleep(Duration::from_millis(delay).max(busy_wait)).await;
            for index in attempt_order(self.gateways.len(), lost, round) {
                let gateway = &self.gateways[index];
                match self.connect(gateway, &mut link.credential).await {
                    Ok(client) => {
                        if had_link || index != first {
                            eprintln!("reconnected to the gateway at {gateway}");
                        }
                        link.current = Some((index, client.clone()));
                        link.failed = None;
                        return Ok(client);
                    }
                    Err(e) if retryable(&e) => {
                        tracing::debug!(gateway = %gateway, error = %e, "gateway not available");
                        last = Some(e);
                    }
                    Err(ClientError::Refused { code, message }) if crate::gateway::session_ended(code) => {
                        self.ended.send_replace(Some(Ended {
                            code,
                            message: message.clone(),
                        }));
                        return Err(ClientError::Refused { code, message });
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let error = last.unwrap_or(ClientError::NotLoggedIn);
        link.failed = Some((Instant::now(), error.to_string()));
        Err(error)
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

/// The gateways (indexes into the tunnel's order) to try in reconnect round `round`, after the
/// link on gateway `lost.0` was lost (`lost.1`: it went silent), or at start (`None`). A gateway
/// that went silent is likely dead (killed, or its host lost): the others come first, and it is
/// left out of the first round, where its handshake could only time out. One that closed or
/// reset the link is likely restarting: it comes first, so people stay on their own gateway.
fn attempt_order(n: usize, lost: Option<(usize, bool)>, round: usize) -> Vec<usize> {
    let (first, skip) = match lost {
        Some((i, true)) if n > 1 => ((i + 1) % n, (round == 0).then_some(i)),
        Some((i, _)) => (i % n.max(1), None),
        None => (0, None),
    };
    (0..n).map(|k| (first + k) % n).filter(|i| Some(*i) != skip).collect()
}

/// Errors after which another attempt (later, or at another gateway) may succeed.
fn retryable(error: &ClientError) -> bool {
    error.is_connection_failure()
        || matches!(error, ClientError::Busy { .. })
        || matches!(
            error,
            ClientError::Refused {
                code: ErrorCode::TryLater,
                ..
            }
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_gateway_goes_last_and_a_closing_one_first() {
        // At start: the session's gateway, then the person's order.
        assert_eq!(attempt_order(3, None, 0), vec![0, 1, 2]);
        // Gateway 1 closed or reset the link (a restart): it is tried again first.
        assert_eq!(attempt_order(3, Some((1, false)), 0), vec![1, 2, 0]);
        // Gateway 1 went silent (killed): the next ones first, it only from the second round.
        assert_eq!(attempt_order(3, Some((1, true)), 0), vec![2, 0]);
        assert_eq!(attempt_order(3, Some((1, true)), 1), vec![2, 0, 1]);
        assert_eq!(attempt_order(2, Some((1, true)), 0), vec![0]);
        // With one gateway there is nowhere else to go.
        assert_eq!(attempt_order(1, Some((0, true)), 0), vec![0]);
        assert_eq!(attempt_order(1, Some((0, false)), 3), vec![0]);
    }
}
