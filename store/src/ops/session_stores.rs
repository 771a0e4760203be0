//! The session store traits on the backend: tunnel sessions and their tickets, web console
//! sign-ins.

use super::{Backend, sessions, web_sessions};
use crate::{EndedBy, EndedSession, Rotation, SessionRecord, SessionStore, StoreError, TicketMatch};

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
