//! Records for the provisioner's side of the store: operators and their API keys, the token
//! change history, bulk issue requests and their outcomes, temporary one-time codes, and the
//! operator-facing view of a token.

use std::fmt;

use crate::{TokenRecord, TokenState, UserRecord};

pub use rampart_core::access::OperatorRole;

/// A person or script allowed to call the provisioner. Only a hash of the API key is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    /// Random id.
    pub id: String,
    /// Unique name, e.g. `alice-helpdesk` or `enrol-script`.
    pub name: String,
    /// What the key may do.
    pub role: OperatorRole,
    /// SHA-256 of the API key. Omitted from `Debug`.
    pub key_hash: Vec<u8>,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Name of the operator who created this one (`init` for the first admin).
    pub created_by: String,
    /// Unix seconds when the key was withdrawn; a revoked key authenticates nothing.
    pub revoked_at: Option<i64>,
}

impl fmt::Debug for OperatorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .field("created_by", &self.created_by)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// One change to a person's tokens: who did what, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEvent {
    /// Increasing sequence number assigned by the store (0 when writing).
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Operator name, `gateway`, or `system`.
    pub actor: String,
    /// What happened: `issued`, `delivered`, `activated`, `locked`, `unlocked`, `resynced`,
    /// `revoked`, `lost`, `expired`, `replaced`, `resealed`, `temp_code_issued`,
    /// `temp_code_used`.
    pub action: String,
    /// Stable id of the person.
    pub user_id: String,
    /// The token concerned, if any.
    pub token_id: Option<String>,
    /// Free text: a reason or detail. Never a seed or code.
    pub detail: String,
}

/// How [`Store::issue_token`](crate::Store::issue_token) treats a person who already has a
/// live token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueMode {
    /// Refuse with [`IssueOutcome::Skipped`] whenever a live token exists.
    New,
    /// Replace a live token only if it was never delivered (a bulk run that stopped between
    /// issuing and writing the person's QR code); skip a delivered one.
    ReplaceUndelivered,
    /// Always replace the live token (reissue): the old one is revoked in the same transaction.
    Replace,
}

/// A request to issue one token: the person as the directory knows them (upserted), the new
/// token, and who asks.
#[derive(Debug, Clone)]
pub struct TokenIssue {
    /// The person; written (with groups) in the same transaction.
    pub user: UserRecord,
    /// The new token (state pending).
    pub token: TokenRecord,
    /// Whether the seed has already been handed over (single issue: yes; bulk: after the QR
    /// file is written, by [`Store::confirm_delivery`](crate::Store::confirm_delivery)).
    pub delivered: bool,
    /// What to do about an existing live token.
    pub mode: IssueMode,
    /// Operator name, recorded in the history.
    pub actor: String,
}

/// What [`Store::issue_token`](crate::Store::issue_token) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueOutcome {
    /// The token was stored; `replaced` names the live token it revoked, if any.
    Issued {
        /// Token revoked in favour of the new one.
        replaced: Option<String>,
    },
    /// Nothing was written: the person already has this live token.
    Skipped {
        /// The existing live token.
        existing: String,
    },
}

/// A temporary one-time code for a person who lost their token. Only a hash of the code is
/// kept; the hash is bound to the person's id.
#[derive(Clone, PartialEq, Eq)]
pub struct TempCodeRecord {
    /// Random id.
    pub id: String,
    /// Stable id of the person it is for.
    pub user_id: String,
    /// Hash of the code bound to the user id. Omitted from `Debug`.
    pub code_hash: Vec<u8>,
    /// Unix seconds of issue.
    pub created_at: i64,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// Operator who issued it.
    pub created_by: String,
}

impl fmt::Debug for TempCodeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TempCodeRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("created_by", &self.created_by)
            .finish_non_exhaustive()
    }
}

/// A token as operators see it: its record (the sealed seed is there but never leaves the
/// store's callers), its owner and whether its seed was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenView {
    /// The token.
    pub token: TokenRecord,
    /// Owner's username.
    pub username: String,
    /// Owner's display name.
    pub display_name: String,
    /// Owner's groups.
    pub groups: Vec<String>,
    /// Unix seconds when its seed was handed over; `None` while a bulk run has not yet written
    /// the person's QR code.
    pub delivered_at: Option<i64>,
    /// Who issued it.
    pub issued_by: String,
}

/// Which tokens [`Store::list_tokens`](crate::Store::list_tokens) returns. Empty fields match
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenQuery {
    /// Only this person's tokens (stable id).
    pub user_id: Option<String>,
    /// Only tokens in this state.
    pub state: Option<TokenState>,
    /// Only tokens whose owner is in this group.
    pub group: Option<String>,
    /// Live tokens only (pending or active).
    pub live_only: bool,
}
