//! LDAP connections: servers tried in order with failed ones skipped for a while (failover),
//! and a bounded pool of connections with connect and operation timeouts. A pool either binds
//! every connection as the service account, or leaves them for user binds — never both. An
//! exchange that fails or times out on a pooled connection marks its server failed too, and
//! pooled connections to a failed server are not reused, so a server that hangs after its
//! connections were opened costs one exchange, not one per pooled connection.

use super::config::LdapConfig;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use rampart_core::secret::Sensitive;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The configured servers and which of them failed recently.
#[derive(Debug)]
pub(crate) struct Servers {
    urls: Vec<String>,
    down_until: Mutex<Vec<Option<Instant>>>,
    tls: Option<Arc<rustls::ClientConfig>>,
    starttls: bool,
    connect_timeout: Duration,
    operation_timeout: Duration,
    retry_after: Duration,
}

impl Servers {
    pub(crate) fn new(config: &LdapConfig, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        Self {
            urls: config.urls.clone(),
            down_until: Mutex::new(vec![None; config.urls.len()]),
            tls,
            starttls: config.starttls,
            connect_timeout: config.connect_timeout(),
            operation_timeout: config.operation_timeout(),
            retry_after: config.retry_after(),
        }
    }

    /// Servers in the order to try: healthy ones first, recently failed ones last.
    fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let down = self
            .down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (healthy, failed): (Vec<usize>, Vec<usize>) =
            (0..self.urls.len()).partition(|&i| down.get(i).copied().flatten().is_none_or(|until| until <= now));
        healthy.into_iter().chain(failed).collect()
    }

    /// Whether server `index` failed within the last `retry_failed_server_secs`.
    fn is_down(&self, index: usize) -> bool {
        let down = self
            .down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        down.get(index)
            .copied()
            .flatten()
            .is_some_and(|until| until > Instant::now())
    }

    fn mark(&self, index: usize, failed: bool) {
        let mut down = self
            .down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = down.get_mut(index) {
            *slot = failed.then(|| Instant::now() + self.retry_after);
        }
    }

    /// Opens a connection, trying each server in turn; `bind` authenticates it as the service
    /// account. A server that fails or hangs is skipped for `retry_failed_server_secs`. Returns
    /// the connection and the index of its server.
    async fn connect(&self, bind: Option<&(String, Sensitive<String>)>) -> Result<(usize, Ldap), String> {
        let mut errors = Vec::new();
        for index in self.order() {
            let url = &self.urls[index];
            match self.connect_one(url, bind).await {
                Ok(ldap) => {
                    self.mark(index, false);
                    return Ok((index, ldap));
                }
                Err(e) => {
                    tracing::warn!(target: "rampart::directory", server = %url, error = %e, "LDAP server failed; trying the next");
                    self.mark(index, true);
                    errors.push(format!("{url}: {e}"));
                }
            }
        }
        Err(errors.join("; "))
    }

    async fn connect_one(&self, url: &str, bind: Option<&(String, Sensitive<String>)>) -> Result<Ldap, String> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.connect_timeout)
            .set_starttls(self.starttls && url.to_ascii_lowercase().starts_with("ldap://"));
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let handshake = self.connect_timeout + self.operation_timeout;
        let (conn, mut ldap) = tokio::time::timeout(handshake, LdapConnAsync::with_settings(settings, url))
            .await
            .map_err(|_| "connection timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(target: "rampart::directory", error = %e, "LDAP connection ended");
            }
        });
        if let Some((dn, password)) = bind {
            let result = tokio::time::timeout(
                self.operation_timeout,
                ldap.with_timeout(self.operation_timeout)
                    .simple_bind(dn, password.expose()),
            )
            .await
            .map_err(|_| "service bind timed out".to_owned())?
            .map_err(|e| e.to_string())?;
            if result.rc != 0 {
                return Err(format!("service account bind refused (LDAP result {})", result.rc));
            }
        }
        Ok(ldap)
    }

    pub(crate) fn operation_timeout(&self) -> Duration {
        self.operation_timeout
    }
}

/// A bounded set of reusable connections.
#[derive(Debug)]
pub(crate) struct Pool {
    servers: Arc<Servers>,
    bind: Option<(String, Sensitive<String>)>,
    /// Connections ready for reuse, each with its server's index.
    idle: Mutex<Vec<(usize, Ldap)>>,
    permits: Semaphore,
}

/// One connection borrowed from a pool. Call [`Lease::keep`] after a successful exchange to
/// return it; dropped otherwise (its state is unknown after an error or timeout), which marks
/// its server failed.
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    server: usize,
    ldap: Option<Ldap>,
    _permit: SemaphorePermit<'a>,
}

impl Pool {
    /// A pool of at most `size` connections; with `bind`, each is bound as that account.
    pub(crate) fn new(servers: Arc<Servers>, size: usize, bind: Option<(String, Sensitive<String>)>) -> Self {
        Self {
            servers,
            bind,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size),
        }
    }

    /// Borrows a connection, waiting at most the operation timeout for a free slot.
    pub(crate) async fn get(&self) -> Result<Lease<'_>, String> {
        let wait = self.servers.operation_timeout();
        let permit = tokio::time::timeout(wait, self.permits.acquire())
            .await
            .map_err(|_| "all directory connections are busy".to_owned())?
            .map_err(|_| "directory pool closed".to_owned())?;
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut found = None;
            while let Some((server, mut ldap)) = idle.pop() {
                if !ldap.is_closed() && !self.servers.is_down(server) {
                    found = Some((server, ldap));
                    break;
                }
            }
            found
        };
        let (server, ldap) = match reused {
            Some(reused) => reused,
            None => self.servers.connect(self.bind.as_ref()).await?,
        };
        Ok(Lease {
            pool: self,
            server,
            ldap: Some(ldap),
            _permit: permit,
        })
    }

    pub(crate) fn operation_timeout(&self) -> Duration {
        self.servers.operation_timeout()
    }
}

impl Lease<'_> {
    /// The connection, with the operation timeout set for the next request.
    pub(crate) fn ldap(&mut self) -> Result<&mut Ldap, String> {
        let timeout = self.pool.operation_timeout();
        self.ldap
            .as_mut()
            .map(|l| l.with_timeout(timeout))
            .ok_or_else(|| "connection already returned".to_owned())
    }

    /// Returns the connection to the pool for reuse.
    pub(crate) fn keep(mut self) {
        if let Some(ldap) = self.ldap.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((self.server, ldap));
        }
    }
}

impl Drop for Lease<'_> {
    /// A connection not kept ended in an error or a timeout: its server is tried last for a
    /// while, and the pools stop reusing their other connections to it.
    fn drop(&mut self) {
        if self.ldap.take().is_some() {
            self.pool.servers.mark(self.server, true);
        }
    }
}
