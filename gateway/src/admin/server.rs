//! The admin HTTPS listener: binds the address, serves the admin routes over rustls (TLS 1.3
//! only, ALPN `http/1.1`) and stops gracefully when told to.

use super::{AdminBackend, ReadyzLimits, routes};
use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use rampart_audit::AuditLog;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// ALPN offered to HTTPS clients.
const ALPN: &[&[u8]] = &[b"http/1.1"];
/// How long running requests may finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// A bound, not yet serving, admin listener.
#[derive(Debug)]
pub struct AdminServer {
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
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
        let tls = rampart_certs::server_config(cert_chain, key, ALPN).context("admin TLS configuration")?;
        let listener =
            std::net::TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen} (admin)"))?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener,
            tls: Arc::new(tls),
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
    /// ten seconds).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopper.graceful_shutdown(Some(DRAIN));
        });
        let app = routes::router(self.backend, self.audit, self.readyz);
        tracing::info!(target: "rampart::admin", listen = %addr, "admin listener serving HTTPS");
        axum_server::from_tcp_rustls(self.listener, RustlsConfig::from_config(self.tls))
            .handle(handle)
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .context("admin HTTPS server failed")?;
        tracing::info!(target: "rampart::admin", "admin listener stopped");
        Ok(())
    }
}
