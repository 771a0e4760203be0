//! The token report: counts by state, people who never finished setting up, locked tokens,
//! and per-group figures — the service desk's view of a ramp-up.

use super::{Provisioner, ServiceError};
use crate::api::TokenReport;
use rampart_store::{TokenQuery, TokenState};
use std::collections::BTreeMap;

/// Default threshold for "pending for too long".
pub const DEFAULT_PENDING_DAYS: u32 = 7;

impl Provisioner {
    /// Builds the report; `pending_days` defaults to [`DEFAULT_PENDING_DAYS`].
    pub async fn report(&self, pending_days: Option<u32>) -> Result<TokenReport, ServiceError> {
        let pending_days = pending_days.unwrap_or(DEFAULT_PENDING_DAYS);
        let now = self.now();
        let views = self.store.list_tokens(&TokenQuery::default()).await?;
        let cutoff = now.saturating_sub(i64::from(pending_days).saturating_mul(86_400));
        let mut by_state: BTreeMap<String, u64> = TokenState::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        let mut per_group: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let mut pending_older = Vec::new();
        let mut locked = Vec::new();
        let mut live = 0;
        for view in &views {
            let info = self.token_info(view);
            *by_state.entry(info.state.clone()).or_default() += 1;
            if !view.token.state.is_live() {
                continue;
            }
            live += 1;
            for group in &view.groups {
                *per_group
                    .entry(group.clone())
                    .or_default()
                    .entry(info.state.clone())
                    .or_default() += 1;
            }
            if view.token.state == TokenState::Pending && view.token.created_at <= cutoff {
                pending_older.push(info.clone());
            }
            if info.locked {
                locked.push(info);
            }
        }
        Ok(TokenReport {
            generated_at: now,
            by_state,
            people_with_live_token: live,
            pending_days,
            pending_older,
            locked,
            per_group,
        })
    }
}
