//! The HTTPS server: the API router over the shared HTTPS listener of `rampart_serve` (TLS 1.3
//! only), started from a config file or from parts (as `rampart dev` does), stopped gracefully
//! on a shutdown signal.

use crate::config::ProvisionerConfig;
use crate::http::AppState;
use crate::service::Provisioner;
use anyhow::Context;
use rampart_audit::{AuditLog, AuditWriter};
use rampart_core::clock::Clock;
use rampart_serve::HttpsListener;
use rampart_store::Store;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How often ended and expired console sessions and expired enrolments are removed from the store.
const SWEEP: Duration = Duration::from_secs(600);

/// A bound, not yet serving, provisioner.
#[derive(Debug)]
pub struct ProvisionerServer {
    listener: HttpsListener,
    state: AppState,
    audit_writer: Option<AuditWriter>,
}

impl ProvisionerServer {
    /// Binds `listen` with the given certificate and operations.
    pub fn bind(
        listen: SocketAddr,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        provisioner: Provisioner,
    ) -> anyhow::Result<Self> {
        let listener = HttpsListener::bind(listen, cert_chain, key)?;
        Ok(Self {
            listener,
            state: AppState { provisioner },
            audit_writer: None,
        })
    }

    /// Opens the store, key ring and directory named by `config` and binds its address.
    /// Everything reads `clock`.
    pub async fn from_config(config: &ProvisionerConfig, clock: Clock) -> anyhow::Result<Self> {
        let mut provisioner = open(config, clock.clone()).await?;
        let audit_writer = match config.audit.settings(&config.state_dir, "provisioner") {
            Some(settings) => {
                let book = Arc::new(rampart_audit::anchor::StoreBook::new(provisioner.store().clone()));
                let (log, writer) = AuditLog::open_anchored(&settings, env!("CARGO_PKG_VERSION"), book, clock)
                    .await
                    .with_context(|| format!("cannot open the audit trail in {}", settings.dir.display()))?;
                provisioner = provisioner.with_audit(log);
                Some(writer)
            }
            None => None,
        };
        let cert_chain = rampart_certs::load_certs(&config.cert).context("server certificate")?;
        let key = rampart_certs::load_key(&config.key).context("server key")?;
        let mut server = Self::bind(config.listen, cert_chain, key, provisioner)?;
        server.audit_writer = audit_writer;
        Ok(server)
    }

    /// The bound address.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes, then lets running requests finish. First, VMs a
    /// stopped provisioner left in the middle of a hook go to maintenance once that hook would
    /// have timed out (those not yet due are watched in the background). The clock is compared
    /// with the database's before serving, then every `clock_check_secs` in a task of its own.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        let provisioner = self.state.provisioner.clone();
        let offset_secs = provisioner.clock().drill_offset_secs();
        if offset_secs != 0 {
            tracing::warn!(
                target: rampart_store::clock::TARGET, offset_secs,
                "DRILL: settings.clock_offset_secs shifts this provisioner's clock; never set it in production"
            );
        }
        let mut interrupted = provisioner
            .interrupted_hooks()
            .await
            .context("cannot look for VM hooks the last stop cut short")?;
        let now = provisioner.now();
        provisioner
            .fail_interrupted_hooks(&mut interrupted, now)
            .await
            .context("cannot recover VMs from hooks the last stop cut short")?;
        // Compared once before the first request, then in a task of its own.
        provisioner.check_clock().await;
        let checker = provisioner.clone();
        let period = Duration::from_secs(provisioner.settings().clock_check_secs);
        let clock_task = tokio::spawn(async move {
            rampart_store::clock::every(period, || checker.check_clock()).await;
        });
        let sweeper = provisioner.clone();
        let sweep_task = tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP);
            loop {
                every.tick().await;
                sweeper.sweep_expired().await;
            }
        });
        let recovery = (!interrupted.is_empty())
            .then(|| tokio::spawn(async move { provisioner.recover_interrupted_hooks(interrupted).await }));
        let app = crate::routes::router(self.state);
        let audit_writer = self.audit_writer;
        tracing::info!(target: "rampart::provisioner", listen = %addr, "provisioner serving HTTPS");
        let served = self.listener.serve(app, shutdown).await;
        if let Some(recovery) = recovery {
            recovery.abort();
        }
        clock_task.abort();
        sweep_task.abort();
        served.context("HTTPS server failed")?;
        if let Some(writer) = audit_writer {
            writer.finish().await;
        }
        tracing::info!(target: "rampart::provisioner", "provisioner stopped");
        Ok(())
    }
}

/// The operations over the store, key ring and directory that `config` names, reading `clock`.
pub async fn open(config: &ProvisionerConfig, clock: Clock) -> anyhow::Result<Provisioner> {
    let store: Arc<dyn Store> = config
        .store
        .open(&config.state_dir)
        .await
        .context("cannot open the store")?;
    let keys = Arc::new(
        config
            .store
            .key_ring(store.clone(), &config.state_dir, false, clock.now())
            .await
            .context("cannot load the seed-sealing keys (run `rampart-provisioner init` first?)")?,
    );
    let directory = rampart_directory::open_directory(&config.directory, store.clone())?;
    Ok(Provisioner::new(store, keys, directory, config.settings.clone(), clock)
        .with_dual_control(config.dual_control)
        .with_console(console_of(config)))
}

/// The console's settings, searching this provisioner's own audit folder, checked with its
/// own checkpoint key, unless told which.
fn console_of(config: &ProvisionerConfig) -> crate::config::ConsoleConfig {
    let mut console = config.console.clone();
    if let Some(settings) = config.audit.settings(&config.state_dir, "provisioner") {
        if console.audit_dirs.is_empty() {
            console.audit_dirs.push(settings.dir);
        }
        if console.audit_public_key.is_none() {
            console.audit_public_key = Some(rampart_audit::keys::public_key_path(&settings.signing_key));
        }
    }
    console
}
