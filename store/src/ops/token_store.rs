//! [`TokenStore`](crate::TokenStore) on the backend: tokens, their steps, issuing and events.

use super::{Backend, history, issue, token_admin, token_views, tokens};
use crate::{
    IssueOutcome, StepOutcome, StoreError, TokenEvent, TokenIssue, TokenQuery, TokenRecord, TokenState, TokenStore,
    TokenView,
};

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
