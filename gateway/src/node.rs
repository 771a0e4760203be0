//! This gateway as the other nodes see it: an id in the store (its host name and QUIC port,
//! stable across restarts), a registration when it starts serving, a heartbeat with its live
//! sessions and flows every [`HEARTBEAT`], and a mark when it stops cleanly, so
//! `rampart gateways list` on any node shows every gateway and which ones went silent.

use std::sync::Arc;
use std::time::Duration;

use rampart_store::GatewayNode;
use tokio_util::sync::CancellationToken;

pub(crate) use crate::state::Node;
use crate::state::Shared;

/// How often a gateway reports itself. Operators treat one silent for three beats as gone.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Registers the gateway (replacing what a previous run on this host and port left).
pub(crate) async fn register(shared: &Shared, admin_url: Option<String>) {
    let now = shared.clock.now();
    let node = GatewayNode {
        id: shared.node.id.clone(),
        address: shared.node.address.clone(),
        admin_url,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: now,
        last_seen_at: now,
        sessions: 0,
        flows: 0,
        stopped_at: None,
    };
    if let Err(e) = shared.store.register_gateway(&node).await {
        tracing::warn!(target: "rampart::gateway", node = %node.id, error = %e, "cannot register in the store; will retry with the heartbeat");
    }
}

/// Beats until `stop`, then marks the gateway stopped.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken, admin_url: Option<String>) {
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => beat(&shared, admin_url.as_deref()).await,
        }
    }
    if let Err(e) = shared.store.gateway_stopped(&shared.node.id, shared.clock.now()).await {
        tracing::warn!(target: "rampart::gateway", error = %e, "cannot mark this gateway stopped in the store");
    }
}

async fn beat(shared: &Shared, admin_url: Option<&str>) {
    let live = shared.registry.all();
    let sessions = u64::try_from(live.iter().filter(|s| s.connections() > 0).count()).unwrap_or(u64::MAX);
    let flows = live.iter().map(|s| u64::from(s.view().active_flows)).sum();
    match shared
        .store
        .gateway_heartbeat(&shared.node.id, shared.clock.now(), sessions, flows)
        .await
    {
        Ok(()) => {}
        // The store lost the registration (a restored backup, a failover before it replicated).
        Err(rampart_store::StoreError::NotFound) => register(shared, admin_url.map(str::to_owned)).await,
        Err(e) => tracing::warn!(target: "rampart::gateway", error = %e, "cannot send the heartbeat"),
    }
}

#[cfg(test)]
mod tests {
    use super::Node;

    #[test]
    fn the_id_is_the_host_and_the_quic_port() {
        let node = Node::new("192.0.2.1:4433".parse().unwrap_or_else(|_| unreachable!()));
        assert!(node.id.ends_with(":4433"), "{}", node.id);
        assert!(!node.id.starts_with(':'));
        assert_eq!(node.address, "192.0.2.1:4433");
    }
}
