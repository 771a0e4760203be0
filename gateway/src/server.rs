//! The gateway server: binds the QUIC endpoint (and the admin listener), builds the state every
//! connection shares (`state`), accepts connections until shutdown and starts the background
//! tasks (maintenance, clock check, node heartbeat, policy reload).

use crate::admin::AdminServer;
use crate::admission::Admission;
use crate::backoff::LoginBackoff;
use crate::config::{GatewayConfig, GatewaySettings};
use crate::flowlog::{FlowLog, FlowLogWriter};
use crate::metrics::Metrics;
use crate::node::{self, Node};
use crate::registry::Registry;
use crate::reload::PolicyHolder;
use crate::state::Shared;
use crate::{backend, clock_check, connection, maintenance, transport};
use anyhow::Context;
use rampart_audit::{AuditLog, AuditWriter};
use rampart_core::clock::Clock;
use rampart_core::policy::Policy;
use rampart_directory::{Directory, open_directory};
use rampart_store::{KeyRing, Store};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Everything a gateway is built from, for embedding (e.g. `rampart dev`) and tests.
#[derive(Debug)]
pub struct GatewayParts {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// TCP address of the admin HTTPS listener, if any.
    pub admin_listen: Option<SocketAddr>,
    /// Server certificate chain (QUIC and admin listener).
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// Server private key.
    pub key: PrivateKeyDer<'static>,
    /// Store shared with other gateways and the provisioner.
    pub store: Arc<dyn Store>,
    /// Keys that open sealed seeds.
    pub keys: Arc<KeyRing>,
    /// Where passwords and groups are checked.
    pub directory: Arc<dyn Directory>,
    /// Resources and who may reach them.
    pub policy: Policy,
    /// The file `policy` was read from, to reload on SIGHUP and on change; None: fixed.
    pub policy_file: Option<PathBuf>,
    /// Flow record sink.
    pub flows: FlowLog,
    /// Audit trail ([`AuditLog::disabled`] for none).
    pub audit: AuditLog,
    /// Limits and timers.
    pub settings: GatewaySettings,
    /// Time source.
    pub clock: Clock,
}

/// A bound gateway, ready to [`run`](Gateway::run).
#[derive(Debug)]
pub struct Gateway {
    endpoint: quinn::Endpoint,
    admin: Option<AdminServer>,
    shared: Arc<Shared>,
    flow_writer: Option<FlowLogWriter>,
    audit_writer: Option<AuditWriter>,
}

impl Gateway {
    /// Binds the QUIC endpoint and the admin listener.
    pub fn bind(parts: GatewayParts) -> anyhow::Result<Self> {
        let server_config = transport::server_config(parts.cert_chain.clone(), parts.key.clone_key(), &parts.settings)?;
        let socket =
            transport::bind_socket(parts.listen).with_context(|| format!("cannot listen on UDP {}", parts.listen))?;
        let runtime = quinn::default_runtime().context("no async runtime for QUIC")?;
        let endpoint = quinn::Endpoint::new(
            transport::endpoint_config(&parts.key),
            Some(server_config),
            socket,
            runtime,
        )
        .with_context(|| format!("cannot listen on UDP {}", parts.listen))?;
        let policy_text = match &parts.policy_file {
            Some(path) => {
                Some(std::fs::read_to_string(path).with_context(|| format!("cannot read policy {}", path.display()))?)
            }
            None => None,
        };
        let settings = parts.settings;
        let admission = Admission::new(
            usize::try_from(settings.max_logins_in_progress).unwrap_or(1),
            usize::try_from(settings.login_queue).unwrap_or(0),
            Duration::from_secs(settings.login_queue_wait_secs),
        );
        let node = Node::new(endpoint.local_addr().context("no local address")?);
        let metrics = Metrics::new();
        let drill_offset_secs = parts.clock.drill_offset_secs();
        metrics.clock_drill(drill_offset_secs);
        if settings.clock_offset_secs != drill_offset_secs {
            tracing::warn!(
                target: "rampart::clock", setting = settings.clock_offset_secs, clock_offset_secs = drill_offset_secs,
                "settings.clock_offset_secs differs from the clock this gateway was given; the clock counts"
            );
        }
        if drill_offset_secs != 0 {
            tracing::warn!(
                target: "rampart::clock", offset_secs = drill_offset_secs,
                "DRILL: settings.clock_offset_secs shifts this gateway's clock; never set it in production"
            );
        }
        let shared = Arc::new(Shared {
            node,
            store: parts.store,
            keys: parts.keys,
            directory: parts.directory,
            flows: parts.flows,
            audit: parts.audit,
            clock: parts.clock.clone(),
            clock_check: clock_check::new(&settings),
            policy: PolicyHolder::new(
                parts.policy,
                parts.policy_file,
                policy_text.as_deref(),
                parts.clock.now(),
            ),
            registry: Registry::default(),
            admission,
            metrics,
            login_backoff: LoginBackoff::new(settings.failed_login_delay()),
            settings,
        });
        let admin = match parts.admin_listen {
            Some(addr) => Some(AdminServer::bind(
                addr,
                parts.cert_chain,
                parts.key,
                Arc::new(backend::GatewayAdmin::new(shared.clone())),
                shared.audit.clone(),
            )?),
            None => None,
        };
        Ok(Self {
            endpoint,
            admin,
            shared,
            flow_writer: None,
            audit_writer: None,
        })
    }

    /// Builds a gateway from its config file: store, master key, directory, policy,
    /// certificate, flow log and admin listener, all reading `clock`.
    pub async fn from_config(config: &GatewayConfig, clock: Clock) -> anyhow::Result<Self> {
        let store: Arc<dyn Store> = config
            .store
            .open(&config.state_dir)
            .await
            .context("cannot open the store")?;
        let keys = config
            .store
            .key_ring(store.clone(), &config.state_dir, true, clock.now())
            .await
            .context("cannot load the seed-sealing keys")?;
        let directory = open_directory(&config.directory, store.clone())?;
        let policy_text = std::fs::read_to_string(&config.policy)
            .with_context(|| format!("cannot read policy {}", config.policy.display()))?;
        let policy = Policy::parse(&policy_text).with_context(|| format!("policy {}", config.policy.display()))?;
        let cert_chain = rampart_certs::load_certs(&config.cert).context("cert")?;
        let key = rampart_certs::load_key(&config.key).context("key")?;
        let (flows, writer) = FlowLog::open(&config.flow_log_path())
            .await
            .with_context(|| format!("cannot open flow log {}", config.flow_log_path().display()))?;
        let (audit, audit_writer) = match config.audit.settings(&config.state_dir, "gateway") {
            Some(settings) => {
                let book = Arc::new(rampart_audit::anchor::StoreBook::new(store.clone()));
                let (log, writer) = AuditLog::open_anchored(&settings, env!("CARGO_PKG_VERSION"), book, clock.clone())
                    .await
                    .with_context(|| format!("cannot open the audit trail in {}", settings.dir.display()))?;
                (log, Some(writer))
            }
            None => (AuditLog::disabled(), None),
        };
        let mut gateway = Self::bind(GatewayParts {
            listen: config.listen,
            admin_listen: config.admin_listen,
            cert_chain,
            key,
            store,
            keys: Arc::new(keys),
            directory,
            policy,
            policy_file: Some(config.policy.clone()),
            flows,
            audit,
            settings: config.settings.clone(),
            clock,
        })?;
        gateway.flow_writer = Some(writer);
        gateway.audit_writer = audit_writer;
        Ok(gateway)
    }

    /// The bound UDP address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The bound admin address, if the admin listener is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|a| a.local_addr().ok())
    }

    /// Replaces the policy for new streams.
    pub fn set_policy(&self, policy: Policy) {
        self.shared.policy.set(policy, self.shared.clock.now());
    }

    /// Serves until `shutdown` completes, then closes every connection and flushes the flow log.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let addr = self.endpoint.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let stop = CancellationToken::new();
        let mut helpers = vec![
            tokio::spawn(maintenance::run(self.shared.clone(), stop.clone())),
            tokio::spawn(maintenance::run_directory_recheck(self.shared.clone(), stop.clone())),
        ];
        // Compared once before the first login, then in a task of its own.
        clock_check::check(&self.shared).await;
        helpers.push(tokio::spawn(clock_check::run(self.shared.clone(), stop.clone())));
        let admin_url = self.admin_addr().map(|addr| format!("https://{addr}"));
        node::register(&self.shared, admin_url.clone()).await;
        helpers.push(tokio::spawn(node::run(self.shared.clone(), stop.clone(), admin_url)));
        if self.shared.policy.path().is_some() {
            let hangup = maintenance::hangup_signal();
            helpers.push(tokio::spawn(maintenance::watch_policy(
                self.shared.clone(),
                stop.clone(),
                hangup,
            )));
        }
        if let Some(admin) = self.admin.take() {
            let stop = stop.clone();
            helpers.push(tokio::spawn(async move {
                if let Err(e) = admin.run(async move { stop.cancelled().await }).await {
                    tracing::error!(target: "rampart::admin", error = %format!("{e:#}"), "admin listener failed");
                }
            }));
        }
        tracing::info!(target: "rampart::gateway", listen = %addr, "gateway ready");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                incoming = self.endpoint.accept() => match incoming {
                    Some(incoming) => self.accept(incoming),
                    None => break,
                },
                () = &mut shutdown => break,
            }
        }
        tracing::info!(target: "rampart::gateway", "shutting down");
        stop.cancel();
        self.endpoint
            .close(quinn::VarInt::from_u32(0), b"gateway shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(5), self.endpoint.wait_idle()).await;
        for helper in helpers {
            let _ = tokio::time::timeout(Duration::from_secs(10), helper).await;
        }
        drop(self.shared);
        if let Some(writer) = self.flow_writer {
            writer.finish().await;
        }
        if let Some(writer) = self.audit_writer {
            writer.finish().await;
        }
    }

    /// Starts serving one incoming connection, or asks it to prove its address first when
    /// many handshakes are already in progress (a flood of spoofed Initial packets costs the
    /// gateway nothing beyond a Retry packet).
    fn accept(&self, incoming: quinn::Incoming) {
        let threshold = i64::from(self.shared.settings.retry_threshold);
        if incoming.may_retry() && self.shared.metrics.handshakes_in_progress().get() >= threshold {
            self.shared.metrics.quic_retry();
            if let Err(refused) = incoming.retry() {
                refused.into_incoming().ignore();
            }
            return;
        }
        // Counted before the task starts, so a burst of Initials sees itself at once.
        self.shared.metrics.handshakes_in_progress().inc();
        tokio::spawn(connection::serve(self.shared.clone(), incoming));
    }
}
