//! The store traits for people and their credentials short of tokens: users, operators,
//! temporary codes, registration codes and enrolments, approvals.

use super::{Backend, approvals, begin_write, commit, operators, registration, temp_codes, users};
use crate::{OperatorRecord, OperatorStore, PeopleStore, StoreError, TempCodeRecord, TempCodeStore, UserRecord, sql};

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
