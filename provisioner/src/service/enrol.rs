//! Bulk enrolment: a batch of people is looked up in the directory concurrently, then each
//! gets a token issued as undelivered; the CLI confirms delivery once the person's QR code is
//! safely written, so a run stopped at any point can be rerun without losing or doubling a
//! token. Every row's result names why a person got no token: already enrolled (with the
//! earlier token's issue and delivery), disabled in the directory, unknown, …; a group's
//! listing names every member left out and why.

use super::tokens::Minted;
use super::{Provisioner, ServiceError};
pub use crate::api::MAX_BATCH;
use crate::api::{EnrolBatch, EnrolResult, ExistingToken, GroupMembers, LeftOutMember};
use futures::StreamExt;
use rampart_directory::DirectoryUser;
use rampart_store::{IssueMode, TokenQuery};

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
                async move { this.enrol_person(&name).await }
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
                Ok((person, false)) => results.push(Some(EnrolResult {
                    status: "disabled".into(),
                    reason: Some("disabled in the directory: no token issued".into()),
                    email: person.email.clone(),
                    ..failed(person.username, String::new())
                })),
                Ok((person, true)) => {
                    if self.resets_need_approval() && self.token_would_replace(&person.stable_id).await? {
                        let reason = "had a token before; with dual control a new one waits for a second \
                                      operator's approval: rampart token issue USER";
                        results.push(Some(failed(person.username, reason.into())));
                        continue;
                    }
                    let user = self.user_record(&person, now).await?;
                    prepared.push((
                        index,
                        person.email.clone(),
                        self.prepare(user, actor, mode, false, now)?,
                    ));
                    results.push(None);
                }
            }
        }
        let requests: Vec<_> = prepared.iter().map(|(_, _, p)| p.issue.clone()).collect();
        let outcomes = self.store.issue_tokens(&requests, now).await?;
        for ((index, email, prepared), outcome) in prepared.into_iter().zip(outcomes) {
            let username = prepared.issue.user.username.clone();
            let user_id = prepared.issue.user.id.clone();
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
                    existing: None,
                    email,
                },
                Ok(Minted::Skipped { existing }) => {
                    let detail = self.existing_token(&user_id, &existing).await?;
                    EnrolResult {
                        username,
                        status: "skipped".into(),
                        reason: Some(already_enrolled(&existing, detail.as_ref())),
                        issued: None,
                        existing_token: Some(existing),
                        existing: detail,
                        email,
                    }
                }
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
        let roster = self.directory.group_roster(group).await.map_err(|e| match e {
            rampart_directory::DirectoryError::UnknownGroup(name) => {
                ServiceError::NotFound(format!("no group named {name:?} in the directory"))
            }
            other => other.into(),
        })?;
        let mut usernames: Vec<String> = roster.members.into_iter().map(|m| m.username).collect();
        usernames.sort();
        usernames.dedup();
        let left_out = roster
            .left_out
            .into_iter()
            .map(|out| LeftOutMember {
                name: out.name,
                reason_code: out.reason.as_str().to_owned(),
                reason: out.reason.explain().to_owned(),
            })
            .collect();
        Ok(GroupMembers {
            group: group.to_owned(),
            usernames,
            left_out,
        })
    }

    /// Looks `typed` up for enrolment: the person and whether the account is enabled, or not
    /// found.
    async fn enrol_person(&self, typed: &str) -> Result<(DirectoryUser, bool), ServiceError> {
        let username = super::normalize(typed)?;
        self.directory
            .lookup_any(&username)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no person named {username:?} in the directory")))
    }

    /// The token a skipped person already holds, as the store knows it.
    async fn existing_token(&self, user_id: &str, token_id: &str) -> Result<Option<ExistingToken>, ServiceError> {
        let query = TokenQuery {
            user_id: Some(user_id.to_owned()),
            ..TokenQuery::default()
        };
        let views = self.store.list_tokens(&query).await?;
        Ok(views
            .into_iter()
            .find(|v| v.token.id == token_id)
            .map(|v| ExistingToken {
                token_id: v.token.id,
                state: v.token.state.as_str().to_owned(),
                issued_at: v.token.created_at,
                issued_by: v.issued_by,
                delivered_at: v.delivered_at,
            }))
    }
}

/// "already enrolled: token T issued … by …, delivered …", for people.
fn already_enrolled(token_id: &str, existing: Option<&ExistingToken>) -> String {
    let Some(existing) = existing else {
        return format!("already enrolled (token {token_id})");
    };
    let issued = rampart_core::text::utc_minute(existing.issued_at);
    if existing.issued_by == "self-service" {
        return format!(
            "already enrolled: token {token_id} ({}), enrolled by the person {issued} with a registration code; \
             --reissue replaces it",
            existing.state
        );
    }
    let delivered = existing.delivered_at.map_or_else(
        || "not delivered yet".to_owned(),
        |at| format!("its QR code was handed out {}", rampart_core::text::utc_minute(at)),
    );
    format!(
        "already enrolled: token {token_id} ({}) issued {issued} by {}, {delivered}; --reissue replaces it",
        existing.state, existing.issued_by
    )
}

fn failed(username: String, reason: String) -> EnrolResult {
    EnrolResult {
        username,
        status: "error".into(),
        reason: Some(reason),
        issued: None,
        existing_token: None,
        existing: None,
        email: None,
    }
}
