//! The store traits for the fleet and the store itself: VMs and pools, seal keys, gateway
//! nodes, readiness, health.

use super::{Backend, begin_write, commit, dialect, gateways, readiness, reseal, seal_keys, vms};
use crate::{
    AllocationRequest, GatewayNode, GatewayStore, KeyStore, PoolCounts, PoolRecord, SealedSeed, StoreError,
    StoreHealth, VmChange, VmEvent, VmRecord, VmState, VmStore, WrappedSealKey, sql,
};

#[async_trait::async_trait]
impl VmStore for Backend {
    async fn create_pool(&self, pool: &PoolRecord) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            let mut tx = begin_write(&self.pool()).await?;
            vms::create_pool(&mut tx, pool).await?;
            commit(tx).await
        })
        .await
    }

    async fn pools(&self, name: Option<&str>) -> Result<Vec<PoolRecord>, StoreError> {
        self.bounded(async move { vms::pools(&self.pool(), name).await }).await
    }

    async fn add_vms(&self, list: &[VmRecord], actor: &str, now: i64) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            let mut tx = begin_write(&self.pool()).await?;
            vms::add_vms(&mut tx, list, actor, now).await?;
            commit(tx).await
        })
        .await
    }

    async fn vms(
        &self,
        pool: Option<&str>,
        state: Option<VmState>,
        holder: Option<&str>,
    ) -> Result<Vec<VmRecord>, StoreError> {
        self.bounded(async move { vms::vms(&self.pool(), pool, state, holder).await })
            .await
    }

    async fn vm(&self, id: &str) -> Result<Option<VmRecord>, StoreError> {
        self.bounded(async move { vms::vm(&self.pool(), id).await }).await
    }

    async fn allocate_vm(&self, request: &AllocationRequest, now: i64) -> Result<VmRecord, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            let mut tx = begin_write(&self.pool()).await?;
            let vm = vms::allocate(&mut tx, request, now).await?;
            commit(tx).await?;
            Ok(vm)
        })
        .await
    }

    async fn change_vm(&self, change: &VmChange, now: i64) -> Result<VmRecord, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            let mut tx = begin_write(&self.pool()).await?;
            let vm = vms::change(&mut tx, change, now).await?;
            commit(tx).await?;
            Ok(vm)
        })
        .await
    }

    async fn reassign_vm(
        &self,
        vm_id: &str,
        user_id: &str,
        username: &str,
        actor: &str,
        now: i64,
    ) -> Result<VmRecord, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            let mut tx = begin_write(&self.pool()).await?;
            let vm = vms::reassign(&mut tx, vm_id, user_id, username, actor, now).await?;
            commit(tx).await?;
            Ok(vm)
        })
        .await
    }

    async fn vm_held(&self, user_id: &str, pool: &str) -> Result<Option<VmRecord>, StoreError> {
        self.bounded(async move { vms::held(&self.pool(), user_id, pool).await })
            .await
    }

    async fn touch_vm_flow(&self, vm_id: &str, now: i64) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            let mut tx = begin_write(&self.pool()).await?;
            vms::touch_flow(&mut tx, vm_id, now).await?;
            commit(tx).await
        })
        .await
    }

    async fn pool_counts(&self) -> Result<Vec<PoolCounts>, StoreError> {
        self.bounded(async move { vms::counts(&self.pool()).await }).await
    }

    async fn vm_events(&self, pool: Option<&str>, since: i64) -> Result<Vec<VmEvent>, StoreError> {
        self.bounded(async move { vms::events(&self.pool(), pool, since).await })
            .await
    }
}

#[async_trait::async_trait]
impl KeyStore for Backend {
    async fn sealed_seeds(&self) -> Result<Vec<(String, SealedSeed)>, StoreError> {
        self.bounded(async move { reseal::sealed_seeds(&self.pool()).await })
            .await
    }

    async fn reseal(&self, token_id: &str, old: &SealedSeed, new: &SealedSeed) -> Result<bool, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            reseal::reseal(&self.pool(), token_id, old, new).await
        })
        .await
    }

    async fn seal_keys(&self) -> Result<Vec<WrappedSealKey>, StoreError> {
        self.bounded(async move { seal_keys::all(&self.pool()).await }).await
    }

    async fn add_seal_key(&self, key: &WrappedSealKey) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            seal_keys::add(&self.pool(), key).await
        })
        .await
    }

    async fn retire_seal_key(&self, id: u32) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            let mut tx = begin_write(&self.pool()).await?;
            seal_keys::retire(&mut tx, id).await?;
            commit(tx).await
        })
        .await
    }
}

#[async_trait::async_trait]
impl GatewayStore for Backend {
    async fn register_gateway(&self, node: &GatewayNode) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            gateways::register(&self.pool(), node).await
        })
        .await
    }

    async fn gateway_heartbeat(&self, id: &str, now: i64, sessions: u64, flows: u64) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            gateways::heartbeat(&self.pool(), id, now, sessions, flows).await
        })
        .await
    }

    async fn gateway_stopped(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            gateways::stopped(&self.pool(), id, now).await
        })
        .await
    }

    async fn gateway_nodes(&self) -> Result<Vec<GatewayNode>, StoreError> {
        self.bounded(async move { gateways::all(&self.pool()).await }).await
    }
}

#[async_trait::async_trait]
impl crate::ReadinessStore for Backend {
    async fn record_rehearsal(&self, rehearsal: &crate::readiness::Rehearsal) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            readiness::record(&self.pool(), rehearsal).await
        })
        .await
    }

    async fn latest_rehearsal(&self, user_id: &str) -> Result<Option<crate::readiness::Rehearsal>, StoreError> {
        self.bounded(async move { readiness::latest(&self.pool(), user_id).await })
            .await
    }

    async fn readiness(
        &self,
        group: Option<&str>,
        now: i64,
    ) -> Result<Vec<crate::readiness::ReadinessRow>, StoreError> {
        self.bounded(async move { readiness::readiness(&self.pool(), group, now).await })
            .await
    }
}

#[async_trait::async_trait]
impl StoreHealth for Backend {
    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(async move {
            sqlx::query(sql::PING)
                .execute(&self.pool())
                .await
                .map(|_| ())
                .map_err(StoreError::from_sqlx)
        })
        .await
    }

    async fn database_time_ms(&self) -> Result<i64, StoreError> {
        self.bounded(async move {
            sqlx::query_scalar(dialect::DATABASE_TIME_MS)
                .fetch_one(&self.pool())
                .await
                .map_err(StoreError::from_sqlx)
        })
        .await
    }

    fn describe(&self) -> String {
        self.describe_backend()
    }
}
