//! The statements' code, shared by every backend: each backend module includes this folder
//! with its own [`dialect`] (the database type, how a write transaction begins, row locks),
//! so SQLite and PostgreSQL run the same SQL text and the same Rust, and the few places where
//! they differ are named in that one module.

mod approvals;
mod audit_anchors;
mod gateways;
mod history;
mod issue;
mod operators;
mod readiness;
mod registration;
mod reseal;
mod seal_keys;
mod sessions;
mod temp_codes;
mod token_admin;
mod token_views;
mod tokens;
mod users;
mod vms;
mod web_sessions;

use sqlx::Transaction;

use super::Backend;
pub(super) use super::dialect;
use super::dialect::{Db, Pool};
use crate::{
    AllocationRequest, EndedBy, EndedSession, GatewayNode, GatewayStore, IssueOutcome, KeyStore, OperatorRecord,
    OperatorStore, PeopleStore, PoolCounts, PoolRecord, Rotation, SealedSeed, SessionRecord, SessionStore, StepOutcome,
    StoreError, StoreHealth, TempCodeRecord, TempCodeStore, TicketMatch, TokenEvent, TokenIssue, TokenQuery,
    TokenRecord, TokenState, TokenStore, TokenView, UserRecord, VmChange, VmEvent, VmRecord, VmState, VmStore,
    WrappedSealKey, sql,
};

#[async_trait::async_trait]
impl PeopleStore for Backend {
    async fn upsert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            let mut tx = begin_write(&self.pool()).await?;
            users::upsert(&mut tx, user).await?;
            commit(tx).await
        })
        .await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.bounded(async move { users::fetch(&self.pool(), sql::USER_BY_USERNAME, username).await })
            .await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.bounded(async move { users::fetch(&self.pool(), sql::USER_BY_ID, id).await })
            .await
    }

    async fn users_in_group(&self, group: &str) -> Result<Vec<UserRecord>, StoreError> {
        self.bounded(async move { users::in_group(&self.pool(), group).await })
            .await
    }
}

#[async_trait::async_trait]
impl TokenStore for Backend {
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            tokens::insert(&self.pool(), token).await
        })
        .await
    }

    async fn live_token_for_user(&self, user_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.bounded(async move { tokens::live_for_user(&self.pool(), user_id).await })
            .await
    }

    async fn set_token_state(&self, token_id: &str, state: TokenState, now: i64) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            tokens::set_state(&self.pool(), token_id, state, now).await
        })
        .await
    }

    async fn accept_step(
        &self,
        token_id: &str,
        step: u64,
        max_failures: u32,
        now: i64,
    ) -> Result<StepOutcome, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            tokens::accept_step(&self.pool(), token_id, step, max_failures, now).await
        })
        .await
    }

    async fn record_failure(&self, token_id: &str, now: i64) -> Result<u32, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            tokens::record_failure(&self.pool(), token_id, now).await
        })
        .await
    }

    async fn issue_token(&self, issue: &TokenIssue, now: i64) -> Result<IssueOutcome, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            issue::issue(&self.pool(), issue, now).await
        })
        .await
    }

    async fn issue_tokens(
        &self,
        issues: &[TokenIssue],
        now: i64,
    ) -> Result<Vec<Result<IssueOutcome, StoreError>>, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            issue::issue_many(&self.pool(), issues, now).await
        })
        .await
    }

    async fn confirm_delivery(&self, token_ids: &[String], actor: &str, now: i64) -> Result<u64, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            issue::confirm_delivery(&self.pool(), token_ids, actor, now).await
        })
        .await
    }

    async fn token_by_id(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.bounded(async move { tokens::by_id(&self.pool(), token_id).await })
            .await
    }

    async fn list_tokens(&self, query: &TokenQuery) -> Result<Vec<TokenView>, StoreError> {
        self.bounded(async move { token_views::list(&self.pool(), query).await })
            .await
    }

    async fn end_token(
        &self,
        token_id: &str,
        state: TokenState,
        actor: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            token_admin::end(&self.pool(), token_id, state, actor, detail, now).await
        })
        .await
    }

    async fn unlock_token(&self, token_id: &str, lock_at: u32, actor: &str, now: i64) -> Result<bool, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            token_admin::unlock(&self.pool(), token_id, lock_at, actor, now).await
        })
        .await
    }

    async fn resync_token(
        &self,
        token_id: &str,
        step: u64,
        drift_steps: i64,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            token_admin::resync(&self.pool(), token_id, step, drift_steps, actor, now).await
        })
        .await
    }

    async fn record_token_event(&self, event: &TokenEvent) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            let mut conn = self.pool().acquire().await.map_err(StoreError::from_sqlx)?;
            history::append(&mut conn, event).await
        })
        .await
    }

    async fn token_events(&self, user_id: Option<&str>, limit: u32) -> Result<Vec<TokenEvent>, StoreError> {
        self.bounded(async move { history::recent(&self.pool(), user_id, limit).await })
            .await
    }
}

#[async_trait::async_trait]
impl SessionStore for Backend {
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            sessions::insert(&self.pool(), session).await
        })
        .await
    }

    async fn create_session_within(
        &self,
        session: &SessionRecord,
        max_live: u32,
        reason: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            sessions::insert_within(&self.pool(), session, max_live, reason, now).await
        })
        .await
    }

    async fn move_session(&self, session_id: &str, gateway_id: &str) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            sessions::move_to(&self.pool(), session_id, gateway_id).await
        })
        .await
    }

    async fn session_by_ticket_hash(&self, ticket_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        self.bounded(async move { sessions::by_ticket_hash(&self.pool(), ticket_hash).await })
            .await
    }

    async fn session_for_ticket(&self, ticket_hash: &[u8]) -> Result<Option<TicketMatch>, StoreError> {
        self.bounded(async move { sessions::for_ticket(&self.pool(), ticket_hash).await })
            .await
    }

    async fn rotate_ticket(
        &self,
        session_id: &str,
        current: &[u8],
        next: &[u8],
        gateway_id: &str,
        now: i64,
    ) -> Result<Rotation, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            sessions::rotate_ticket(&self.pool(), session_id, current, next, gateway_id, now).await
        })
        .await
    }

    async fn end_session_by(
        &self,
        session_id: &str,
        reason: &str,
        ended_by: Option<&EndedBy>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            sessions::end(&self.pool(), session_id, reason, ended_by, now).await
        })
        .await
    }

    async fn live_sessions_for_user(&self, user_id: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError> {
        self.bounded(async move { sessions::live_for_user(&self.pool(), user_id, now).await })
            .await
    }

    async fn live_sessions(&self, now: i64, limit: u32) -> Result<Vec<SessionRecord>, StoreError> {
        self.bounded(async move { sessions::live(&self.pool(), now, limit).await })
            .await
    }

    async fn end_user_sessions_by(
        &self,
        user_id: &str,
        reason: &str,
        ended_by: Option<&EndedBy>,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            sessions::end_for_user(&self.pool(), user_id, reason, ended_by, now).await
        })
        .await
    }

    async fn session_end_seq(&self) -> Result<u64, StoreError> {
        self.bounded(async move { sessions::end_seq(&self.pool()).await }).await
    }

    async fn sessions_ended_after(&self, after: u64) -> Result<Vec<EndedSession>, StoreError> {
        self.bounded(async move { sessions::ended_after(&self.pool(), after).await })
            .await
    }

    async fn touch_session(&self, session_id: &str, now: i64) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            sessions::touch(&self.pool(), session_id, now).await
        })
        .await
    }
}

#[async_trait::async_trait]
impl TempCodeStore for Backend {
    async fn insert_temp_code(&self, code: &TempCodeRecord) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            temp_codes::insert(&self.pool(), code).await
        })
        .await
    }

    async fn consume_temp_code(&self, user_id: &str, code_hash: &[u8], now: i64) -> Result<bool, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            temp_codes::consume(&self.pool(), user_id, code_hash, now).await
        })
        .await
    }
}

#[async_trait::async_trait]
impl crate::RegistrationStore for Backend {
    async fn issue_registration_code(&self, code: &crate::registration::RegistrationCode) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            registration::issue(&self.pool(), code).await
        })
        .await
    }

    async fn check_registration_code(
        &self,
        user_id: &str,
        code_hash: &[u8],
        now: i64,
    ) -> Result<crate::registration::CodeCheck, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            registration::check(&self.pool(), user_id, code_hash, now).await
        })
        .await
    }

    async fn fail_registration_code(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<crate::registration::CodeCheck, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            registration::fail(&self.pool(), user_id, now).await
        })
        .await
    }

    async fn registration_codes(
        &self,
        user_id: &str,
        limit: u32,
        now: i64,
    ) -> Result<Vec<crate::registration::RegistrationCodeView>, StoreError> {
        self.bounded(async move { registration::codes_of(&self.pool(), user_id, limit, now).await })
            .await
    }

    async fn start_enrolment(&self, enrolment: &crate::registration::Enrolment) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            registration::start(&self.pool(), enrolment).await
        })
        .await
    }

    async fn enrolment(&self, id: &str) -> Result<Option<crate::registration::Enrolment>, StoreError> {
        self.bounded(async move { registration::by_id(&self.pool(), id).await })
            .await
    }

    async fn purge_enrolments(&self, before: i64) -> Result<u64, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            registration::purge(&self.pool(), before).await
        })
        .await
    }

    async fn fail_enrolment(&self, id: &str, now: i64) -> Result<Option<u32>, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            registration::fail_enrolment(&self.pool(), id, now).await
        })
        .await
    }

    async fn confirm_enrolment(
        &self,
        id: &str,
        user: &UserRecord,
        confirmed: &crate::registration::Confirmed,
        now: i64,
    ) -> Result<crate::registration::Confirmation, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            registration::confirm(&self.pool(), id, user, confirmed, now).await
        })
        .await
    }
}

#[async_trait::async_trait]
impl crate::ApprovalStore for Backend {
    async fn request_reset(&self, request: &crate::ResetRequest) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            approvals::insert(&self.pool(), request).await
        })
        .await
    }

    async fn reset_request(&self, id: &str) -> Result<Option<crate::ResetRequest>, StoreError> {
        self.bounded(async move { approvals::by_id(&self.pool(), id).await })
            .await
    }

    async fn reset_requests(&self, open_at: Option<i64>, limit: u32) -> Result<Vec<crate::ResetRequest>, StoreError> {
        self.bounded(async move { approvals::list(&self.pool(), open_at, limit).await })
            .await
    }

    async fn approve_reset(
        &self,
        id: &str,
        approver: &str,
        now: i64,
        collect_by: i64,
    ) -> approvals::Decided<crate::ResetRequest> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            approvals::approve(&self.pool(), id, approver, now, collect_by).await
        })
        .await
    }

    async fn deny_reset(&self, id: &str, by: &str, reason: &str, now: i64) -> approvals::Decided<crate::ResetRequest> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            approvals::deny(&self.pool(), id, by, reason, now).await
        })
        .await
    }

    async fn collect_reset(
        &self,
        id: &str,
        requester: &str,
        grant: &crate::approvals::ResetGrant,
        now: i64,
    ) -> approvals::Decided<crate::approvals::CollectedReset> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            approvals::collect(&self.pool(), id, requester, grant, now).await
        })
        .await
    }
}

#[async_trait::async_trait]
impl OperatorStore for Backend {
    async fn insert_operator(&self, operator: &OperatorRecord) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            operators::insert(&self.pool(), operator).await
        })
        .await
    }

    async fn operator_by_key_hash(&self, key_hash: &[u8]) -> Result<Option<OperatorRecord>, StoreError> {
        self.bounded(async move { operators::by_key_hash(&self.pool(), key_hash).await })
            .await
    }

    async fn list_operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        self.bounded(async move { operators::list(&self.pool()).await }).await
    }

    async fn revoke_operator(&self, name: &str, now: i64) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            operators::revoke(&self.pool(), name, now).await
        })
        .await
    }
}

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
impl crate::WebSessionStore for Backend {
    async fn start_web_session(&self, session: &crate::web_sessions::WebSession) -> Result<(), StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            web_sessions::start(&self.pool(), session).await
        })
        .await
    }

    async fn web_session(
        &self,
        id_hash: &[u8],
        now: i64,
        idle_secs: i64,
    ) -> Result<Option<crate::web_sessions::WebSession>, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            web_sessions::find(&self.pool(), id_hash, now, idle_secs).await
        })
        .await
    }

    async fn end_web_session(&self, id_hash: &[u8], now: i64) -> Result<bool, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            web_sessions::end(&self.pool(), id_hash, now).await
        })
        .await
    }

    async fn end_web_sessions_for_user(&self, user_id: &str, now: i64) -> Result<u64, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            web_sessions::end_for_user(&self.pool(), user_id, now).await
        })
        .await
    }

    async fn purge_web_sessions(&self, before: i64) -> Result<u64, StoreError> {
        self.bounded(async move {
            let _writer = self.write_gate().await;
            web_sessions::purge(&self.pool(), before).await
        })
        .await
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

/// Starts a write transaction ([`dialect::BEGIN_WRITE`]). Callers hold the backend's write
/// gate; dropping the transaction without [`commit`] rolls everything back.
async fn begin_write(pool: &Pool) -> Result<Transaction<'static, Db>, StoreError> {
    pool.begin_with(dialect::BEGIN_WRITE)
        .await
        .map_err(StoreError::from_sqlx)
}

/// Commits a transaction from [`begin_write`]; the change is durable when this returns.
async fn commit(tx: Transaction<'static, Db>) -> Result<(), StoreError> {
    tx.commit().await.map_err(StoreError::from_sqlx)
}

/// A number from a row that must fit `T`; otherwise the row is corrupt.
fn decode_int<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} out of range")))
}

/// A caller's number that must fit a BIGINT column.
fn encode_u64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Conflict(format!("{what} out of range")))
}
