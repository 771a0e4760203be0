//! The admin HTTPS listener: binds the address and serves the admin routes over the shared
//! HTTPS listener of `rampart_serve` (TLS 1.3 only, ALPN `http/1.1`), stopping gracefully when
//! told to.

use super::{AdminBackend, ReadyzLimits, routes};
use anyhow::Context;
use rampart_audit::AuditLog;
use rampart_serve::HttpsListener;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// A bound, not yet serving, admin listener.
#[derive(Debug)]
pub struct AdminServer {
    listener: HttpsListener,
    backend: Arc<dyn AdminBackend>,
    audit: AuditLog,
    readyz: ReadyzLimits,
}

impl AdminServer {
    /// Binds `listen` with the given certificate, serving `backend`.
    pub fn bind(
        listen: SocketAddr,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        backend: Arc<dyn AdminBackend>,
        audit: AuditLog,
    ) -> anyhow::Result<Self> {
        let listener = HttpsListener::bind(listen, cert_chain, key).context("admin listener")?;
        Ok(Self {
            listener,
            backend,
            audit,
            readyz: ReadyzLimits::default(),
        })
    }

    /// Other limits for `/readyz` than the defaults.
    #[must_use]
    pub fn with_readyz_limits(mut self, limits: ReadyzLimits) -> Self {
        self.readyz = limits;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes, then lets running requests finish (at most
    /// ten seconds, [`rampart_serve::https::DRAIN`]).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        let app = routes::router(self.backend, self.audit, self.readyz);
        tracing::info!(target: "rampart::admin", listen = %addr, "admin listener serving HTTPS");
        self.listener
            .serve(app, shutdown)
            .await
            .context("admin HTTPS server failed")?;
        tracing::info!(target: "rampart::admin", "admin listener stopped");
        Ok(())
    }
}
