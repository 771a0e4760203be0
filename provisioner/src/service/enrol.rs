//! Bulk enrolment: a batch of people is looked up in the directory concurrently, then each
//! gets a token issued as undelivered; the CLI confirms delivery once the person's QR code is
//! safely written, so a run stopped at any point can be rerun without losing or doubling a
//! token.

use super::tokens::Minted;
use super::{Provisioner, ServiceError};
use crate::api::{EnrolBatch, EnrolResult, GroupMembers};
use futures::StreamExt;
use rampart_store::IssueMode;

/// Most rows accepted in one batch.
pub const MAX_BATCH: usize = 500;
/// Directory lookups in flight at once.
const LOOKUPS_IN_FLIGHT: usize = 16;

impl Provisioner {
    /// Issues undelivered tokens to every row's person. People whose delivered token exists
    /// are skipped unless `reissue`; a token left undelivered by an interrupted run is
    /// replaced. Every row gets a result; one bad row never stops the others. Refused as a
    /// whole while the clock is off from the database's, and a `reissue` batch while dual
    /// control holds token resets back; with dual control a row for a person whose earlier
    /// token ended is an error (that token needs an approved `rampart token issue`).
    pub async fn enrol_batch(&self, actor: &str, batch: &EnrolBatch) -> Result<Vec<EnrolResult>, ServiceError> {
        if batch.rows.len() > MAX_BATCH {
            return Err(ServiceError::Invalid(format!(
                "a batch holds at most {MAX_BATCH} rows ({} sent)",
                batch.rows.len()
            )));
        }
        if batch.reissue && self.resets_need_approval() {
            return Err(ServiceError::NotPermitted(
                "with dual control on token resets, a bulk reissue would replace people's tokens without a second \
                 operator's approval; reissue people one by one (`rampart token issue USER --reissue`), each approved"
                    .into(),
            ));
        }
        self.require_clock("enrol people (issue tokens)")?;
        let names: Vec<String> = batch.rows.iter().map(|row| row.username.clone()).collect();
        let lookups: Vec<_> = futures::stream::iter(names)
            .map(|name| {
                let this = self.clone();
                async move { this.directory_person(&name).await }
            })
            .buffered(LOOKUPS_IN_FLIGHT)
            .collect()
            .await;
        let mode = if batch.reissue {
            IssueMode::Replace
        } else {
            IssueMode::ReplaceUndelivered
        };
        let now = self.now();
        self.fresh_keys().await?;
        // Each row ends as a result, or as a token to store (with its row index).
        let mut results: Vec<Option<EnrolResult>> = Vec::with_capacity(batch.rows.len());
        let mut prepared = Vec::new();
        for (index, (row, lookup)) in batch.rows.iter().zip(lookups).enumerate() {
            match lookup {
                Err(ServiceError::Unavailable(msg)) => return Err(ServiceError::Unavailable(msg)),
                Err(err) => {
                    let shown = super::normalize(&row.username).unwrap_or_else(|_| row.username.clone());
                    results.push(Some(failed(shown, err.to_string())));
                }
                Ok(person) => {
                    if self.resets_need_approval() && self.token_would_replace(&person.stable_id).await? {
                        let reason = "had a token before; with dual control a new one waits for a second \
                                      operator's approval: rampart token issue USER";
                        results.push(Some(failed(person.username, reason.into())));
                        continue;
                    }
                    let user = self.user_record(&person, now).await?;
                    prepared.push((index, self.prepare(user, actor, mode, false, now)?));
                    results.push(None);
                }
            }
        }
        let requests: Vec<_> = prepared.iter().map(|(_, p)| p.issue.clone()).collect();
        let outcomes = self.store.issue_tokens(&requests, now).await?;
        for ((index, prepared), outcome) in prepared.into_iter().zip(outcomes) {
            let username = prepared.issue.user.username.clone();
            let result = match outcome
                .map_err(ServiceError::from)
                .and_then(|o| prepared.finish(o, None, &self.audit))
            {
                Ok(Minted::Issued(token)) => EnrolResult {
                    username,
                    status: "issued".into(),
                    reason: None,
                    issued: Some(*token),
                    existing_token: None,
                },
                Ok(Minted::Skipped { existing }) => EnrolResult {
                    username,
                    status: "skipped".into(),
                    reason: Some("already enrolled".into()),
                    issued: None,
                    existing_token: Some(existing),
                },
                Err(ServiceError::Unavailable(msg)) => return Err(ServiceError::Unavailable(msg)),
                Err(err) => failed(username, err.to_string()),
            };
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(result);
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Marks tokens delivered after their QR codes were written.
    pub async fn confirm_delivery(&self, actor: &str, token_ids: &[String]) -> Result<u64, ServiceError> {
        if token_ids.len() > MAX_BATCH * 4 {
            return Err(ServiceError::Invalid(format!(
                "confirm at most {} tokens at once",
                MAX_BATCH * 4
            )));
        }
        Ok(self.store.confirm_delivery(token_ids, actor, self.now()).await?)
    }

    /// Usernames of the enabled members of a directory group.
    pub async fn group_members(&self, group: &str) -> Result<GroupMembers, ServiceError> {
        let group = group.trim();
        if group.is_empty() {
            return Err(ServiceError::Invalid("group name is empty".into()));
        }
        let members = self.directory.group_members(group).await.map_err(|e| match e {
            rampart_directory::DirectoryError::UnknownGroup(name) => {
                ServiceError::NotFound(format!("no group named {name:?} in the directory"))
            }
            other => other.into(),
        })?;
        let mut usernames: Vec<String> = members.into_iter().map(|m| m.username).collect();
        usernames.sort();
        usernames.dedup();
        Ok(GroupMembers {
            group: group.to_owned(),
            usernames,
        })
    }
}

fn failed(username: String, reason: String) -> EnrolResult {
    EnrolResult {
        username,
        status: "error".into(),
        reason: Some(reason),
        issued: None,
        existing_token: None,
    }
}
