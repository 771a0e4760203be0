//! HTTPS listeners: binds a TCP address with the service's certificate (rustls, TLS 1.3 only,
//! ALPN `http/1.1`, no early data), serves an axum router with each request's peer address
//! available as `ConnectInfo<SocketAddr>`, and on shutdown stops accepting and lets running
//! requests finish for at most [`DRAIN`].

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use rampart_certs::CertError;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// ALPN offered to HTTPS clients.
pub const ALPN: &[&[u8]] = &[b"http/1.1"];
/// How long running requests may finish after a shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Why an HTTPS listener could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The certificate chain and key make no TLS server configuration (empty chain, key not
    /// matching, unsupported key type).
    #[error("TLS configuration")]
    Tls(#[source] CertError),
    /// The address cannot be listened on (in use, not local, not permitted).
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// A bound, not yet serving, HTTPS listener.
#[derive(Debug)]
pub struct HttpsListener {
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
}

impl HttpsListener {
    /// Binds `listen` (port 0 picks a free one: see [`local_addr`](Self::local_addr)) with
    /// the given certificate chain and key.
    pub fn bind(
        listen: SocketAddr,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, BindError> {
        let tls = rampart_certs::server_config(cert_chain, key, ALPN).map_err(BindError::Tls)?;
        let listen_error = |source| BindError::Listen { addr: listen, source };
        let listener = TcpListener::bind(listen).map_err(listen_error)?;
        listener.set_nonblocking(true).map_err(listen_error)?;
        Ok(Self {
            listener,
            tls: Arc::new(tls),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `app` until `shutdown` completes, then stops accepting and lets running requests
    /// finish for at most [`DRAIN`]. An error is the server failing, not a request.
    pub async fn serve(self, app: Router, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        let watcher = tokio::spawn(async move {
            shutdown.await;
            stopper.graceful_shutdown(Some(DRAIN));
        });
        let served = axum_server::from_tcp_rustls(self.listener, RustlsConfig::from_config(self.tls))
            .handle(handle)
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await;
        // Only left running when the server failed before the signal came.
        watcher.abort();
        served
    }
}

#[cfg(test)]
mod tests;
