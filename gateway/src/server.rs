//! The gateway server: binds the QUIC endpoint, accepts connections until shutdown, and holds
//! the state every connection shares (store, keys, directory, policy, flow log, clock).

use crate::clock::Clock;
use crate::config::{GatewayConfig, GatewaySettings};
use crate::flowlog::{FlowLog, FlowLogWriter};
use crate::{connection, transport};
use anyhow::Context;
use rampart_core::policy::Policy;
use rampart_directory::{Directory, open_directory};
use rampart_store::{KeyRing, SqliteStore, Store};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub directory: Arc<dyn Directory>,
    pub flows: FlowLog,
    pub settings: GatewaySettings,
    pub clock: Clock,
    policy: RwLock<Arc<Policy>>,
}

impl Shared {
    /// The policy in force now.
    pub fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Everything a gateway is built from, for embedding (e.g. `rampart dev`) and tests.
#[derive(Debug)]
pub struct GatewayParts {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Server certificate chain.
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
    /// Flow record sink.
    pub flows: FlowLog,
    /// Limits and timers.
    pub settings: GatewaySettings,
    /// Time source.
    pub clock: Clock,
}

/// A bound gateway, ready to [`run`](Gateway::run).
#[derive(Debug)]
pub struct Gateway {
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    flow_writer: Option<FlowLogWriter>,
}

impl Gateway {
    /// Binds the QUIC endpoint.
    pub fn bind(parts: GatewayParts) -> anyhow::Result<Self> {
        let server_config = transport::server_config(parts.cert_chain, parts.key, &parts.settings)?;
        let endpoint = quinn::Endpoint::server(server_config, parts.listen)
            .with_context(|| format!("cannot listen on UDP {}", parts.listen))?;
        let shared = Arc::new(Shared {
            store: parts.store,
            keys: parts.keys,
            directory: parts.directory,
            flows: parts.flows,
            settings: parts.settings,
            clock: parts.clock,
            policy: RwLock::new(Arc::new(parts.policy)),
        });
        Ok(Self {
            endpoint,
            shared,
            flow_writer: None,
        })
    }

    /// Builds a gateway from its config file: store, master key, local directory, policy,
    /// certificate and flow log.
    pub async fn from_config(config: &GatewayConfig) -> anyhow::Result<Self> {
        let store = SqliteStore::open(&config.state_dir)
            .await
            .with_context(|| format!("cannot open the store in {}", config.state_dir.display()))?;
        let store: Arc<dyn Store> = Arc::new(store);
        let keys =
            KeyRing::load_or_create(&config.state_dir.join("master.key")).context("cannot load the master key")?;
        let directory = open_directory(&config.directory, store.clone())?;
        let policy_text = std::fs::read_to_string(&config.policy)
            .with_context(|| format!("cannot read policy {}", config.policy.display()))?;
        let policy = Policy::parse(&policy_text).with_context(|| format!("policy {}", config.policy.display()))?;
        let cert_chain = rampart_certs::load_certs(&config.cert)?;
        let key = rampart_certs::load_key(&config.key)?;
        let (flows, writer) = FlowLog::open(&config.flow_log_path())
            .await
            .with_context(|| format!("cannot open flow log {}", config.flow_log_path().display()))?;
        let mut gateway = Self::bind(GatewayParts {
            listen: config.listen,
            cert_chain,
            key,
            store,
            keys: Arc::new(keys),
            directory,
            policy,
            flows,
            settings: config.settings.clone(),
            clock: Clock::system(),
        })?;
        gateway.flow_writer = Some(writer);
        Ok(gateway)
    }

    /// The bound UDP address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Replaces the policy for new streams.
    pub fn set_policy(&self, policy: Policy) {
        match self.shared.policy.write() {
            Ok(mut guard) => *guard = Arc::new(policy),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(policy),
        }
    }

    /// Serves until `shutdown` completes, then closes every connection and flushes the flow log.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let addr = self.endpoint.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(target: "rampart::gateway", listen = %addr, "gateway ready");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                incoming = self.endpoint.accept() => match incoming {
                    Some(incoming) => {
                        tokio::spawn(connection::serve(self.shared.clone(), incoming));
                    }
                    None => break,
                },
                () = &mut shutdown => break,
            }
        }
        tracing::info!(target: "rampart::gateway", "shutting down");
        self.endpoint
            .close(quinn::VarInt::from_u32(0), b"gateway shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(5), self.endpoint.wait_idle()).await;
        drop(self.shared);
        if let Some(writer) = self.flow_writer {
            writer.finish().await;
        }
    }
}
