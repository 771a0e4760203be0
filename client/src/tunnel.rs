//! A session's connection to the gateway, kept up for forwards and the SOCKS listener: made on
//! demand with the resume ticket (no new code), retried with backoff, and failed over to the
//! profile's next gateway when one stops answering. Listeners never notice: only the forwarded
//! connection that finds the link down waits for the reconnect.

use crate::{ClientError, GatewayClient, SavedSession};
use rampart_core::ErrorCode;
use rampart_core::protocol::ResourceInfo;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::Mutex;

/// Waits before each round of attempts over every gateway (about 15 s in all).
const BACKOFF_MS: [u64; 6] = [0, 250, 500, 1_000, 3_000, 10_000];
/// How long opening a stream may take before the link is taken for dead.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The link to the gateways for one saved session.
#[derive(Debug)]
pub struct Tunnel {
    gateways: Vec<String>,
    ca_pem: String,
    ticket: rampart_core::secret::Sensitive<String>,
    current: Mutex<Option<(usize, Arc<GatewayClient>)>>,
    resources: RwLock<Vec<ResourceInfo>>,
}

impl Tunnel {
    /// Connects and resumes the saved session now, so a dead session is reported at start.
    pub async fn start(saved: SavedSession) -> Result<Arc<Self>, ClientError> {
        let mut gateways = vec![saved.gateway.clone()];
        gateways.extend(saved.gateways.iter().filter(|g| **g != saved.gateway).cloned());
        let tunnel = Arc::new(Self {
            gateways,
            ca_pem: saved.ca_pem,
            ticket: saved.ticket,
            current: Mutex::new(None),
            resources: RwLock::new(saved.resources),
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
        let current = self.current.lock().await;
        current.as_ref().map(|(i, _)| self.gateways[*i].clone())
    }

    async fn client(&self) -> Result<Arc<GatewayClient>, ClientError> {
        let mut current = self.current.lock().await;
        if let Some((_, client)) = current.as_ref().filter(|(_, c)| c.is_open()) {
            return Ok(client.clone());
        }
        let first = current.as_ref().map_or(0, |(i, _)| *i);
        let had_link = current.take().is_some();
        let mut last = None;
        for delay in BACKOFF_MS {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            for k in 0..self.gateways.len() {
                let index = (first + k) % self.gateways.len();
                let gateway = &self.gateways[index];
                match self.connect(gateway).await {
                    Ok(client) => {
                        if had_link || index != first {
                            eprintln!("reconnected to the gateway at {gateway}");
                        }
                        *current = Some((index, client.clone()));
                        return Ok(client);
                    }
                    Err(e) if retryable(&e) => {
                        tracing::debug!(gateway = %gateway, error = %e, "gateway not available");
                        last = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(last.unwrap_or(ClientError::NotLoggedIn))
    }

    async fn connect(&self, gateway: &str) -> Result<Arc<GatewayClient>, ClientError> {
        let client = GatewayClient::connect(gateway, &self.ca_pem).await?;
        let grant = client.resume(&self.ticket).await?;
        *self.resources.write().unwrap_or_else(PoisonError::into_inner) = grant.resources;
        Ok(Arc::new(client))
    }

    /// Opens a stream to `resource`, reconnecting (with backoff and fail-over) if the link is
    /// down.
    pub async fn open(&self, resource: &str) -> Result<(quinn::SendStream, quinn::RecvStream), ClientError> {
        let client = self.client().await?;
        match tokio::time::timeout(OPEN_TIMEOUT, client.open(resource)).await {
            Ok(Err(e)) if !e.is_connection_failure() => Err(e),
            Ok(Ok(stream)) => Ok(stream),
            _ => {
                // The link is dead (closed, or silent after a gateway crash): start over.
                client.abandon();
                self.client().await?.open(resource).await
            }
        }
    }
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
