//! Token resets under dual control: what one operator asked for ([`ResetAction`]), the request
//! a second operator approves or denies before it expires ([`ResetRequest`]), why a decision
//! or a collection was refused ([`ApprovalRefusal`]), and what collecting an approved request
//! grants ([`ResetGrant`]).

use std::fmt;

use crate::{IssueOutcome, TempCodeRecord, TokenIssue};

/// A token reset that needs a second operator's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetAction {
    /// A temporary one-time code (the person's token is lost).
    TemporaryCode,
    /// A replacement token (reissue, or the person's token is lost).
    Replacement,
    /// Both a temporary code and a replacement token.
    TemporaryCodeAndReplacement,
    /// Clearing the failure counter of a locked token.
    Unlock,
}

impl ResetAction {
    /// Every action.
    pub const ALL: [Self; 4] = [
        Self::TemporaryCode,
        Self::Replacement,
        Self::TemporaryCodeAndReplacement,
        Self::Unlock,
    ];

    /// The action of a lost report that asks for a temporary code and/or a replacement;
    /// `None` when it asks for neither (marking a token lost only takes access away).
    pub fn for_lost(temporary_code: bool, replacement: bool) -> Option<Self> {
        match (temporary_code, replacement) {
            (true, true) => Some(Self::TemporaryCodeAndReplacement),
            (true, false) => Some(Self::TemporaryCode),
            (false, true) => Some(Self::Replacement),
            (false, false) => None,
        }
    }

    /// Stored name: `temporary_code`, `replacement`, `temporary_code+replacement`, `unlock`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TemporaryCode => "temporary_code",
            Self::Replacement => "replacement",
            Self::TemporaryCodeAndReplacement => "temporary_code+replacement",
            Self::Unlock => "unlock",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == name)
    }

    /// Whether collecting the request makes a temporary code.
    pub fn temporary_code(self) -> bool {
        matches!(self, Self::TemporaryCode | Self::TemporaryCodeAndReplacement)
    }

    /// Whether collecting the request issues a replacement token.
    pub fn replacement(self) -> bool {
        matches!(self, Self::Replacement | Self::TemporaryCodeAndReplacement)
    }

    /// Whether the result holds a secret (a code or a seed). Such a request is carried out
    /// when its requester collects it, so the secret is made and shown once, to that operator
    /// only; an unlock is carried out by the approval itself.
    pub fn yields_secret(self) -> bool {
        self != Self::Unlock
    }

    /// For people: `a temporary code`, `an unlock`…
    pub fn describe(self) -> &'static str {
        match self {
            Self::TemporaryCode => "a temporary code",
            Self::Replacement => "a replacement token",
            Self::TemporaryCodeAndReplacement => "a temporary code and a replacement token",
            Self::Unlock => "an unlock",
        }
    }
}

impl fmt::Display for ResetAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request stands, as stored. Expiry is not stored: see [`ResetRequest::state_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalStatus {
    /// Waiting for a second operator.
    Pending,
    /// Approved; waiting for its requester to collect the result.
    Approved,
    /// Denied (or withdrawn by its requester).
    Denied,
    /// Carried out.
    Done,
}

impl ApprovalStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Done => "done",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Done]
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

/// Where a request stands at a given time: its status, or expired when it was still pending
/// or approved at its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalState {
    /// Waiting for a second operator.
    Pending,
    /// Approved; its requester may collect the result until it expires.
    Approved,
    /// Denied or withdrawn.
    Denied,
    /// Carried out.
    Done,
    /// Not approved (or not collected) in time; it can no longer be used.
    Expired,
}

impl ApprovalState {
    /// Name in API answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Done => "done",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token reset one operator asked for, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    /// Random id, named in `rampart token approve ID`.
    pub id: String,
    /// The person's stable id.
    pub user_id: String,
    /// The person's username (read from the person's record; ignored when storing).
    pub username: String,
    /// What was asked for.
    pub action: ResetAction,
    /// For an unlock, the token to unlock: approving unlocks exactly this token.
    pub token_id: Option<String>,
    /// The requester's reason, e.g. a ticket number.
    pub reason: String,
    /// The operator who asked.
    pub requested_by: String,
    /// Unix seconds of the request.
    pub created_at: i64,
    /// Unix seconds until which it may be approved (pending) or collected (approved).
    pub expires_at: i64,
    /// Where it stands, as stored.
    pub status: ApprovalStatus,
    /// The operator who approved or denied it.
    pub decided_by: Option<String>,
    /// Unix seconds of the approval or denial.
    pub decided_at: Option<i64>,
    /// Why it was denied.
    pub decision_reason: String,
    /// Unix seconds when it was carried out.
    pub completed_at: Option<i64>,
}

impl ResetRequest {
    /// Where the request stands at `now`.
    pub fn state_at(&self, now: i64) -> ApprovalState {
        match self.status {
            ApprovalStatus::Pending | ApprovalStatus::Approved if self.expires_at <= now => ApprovalState::Expired,
            ApprovalStatus::Pending => ApprovalState::Pending,
            ApprovalStatus::Approved => ApprovalState::Approved,
            ApprovalStatus::Denied => ApprovalState::Denied,
            ApprovalStatus::Done => ApprovalState::Done,
        }
    }
}

/// Why the store refused to approve, deny or collect a request. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefusal {
    /// No request has this id.
    #[error("no such reset request")]
    NotFound,
    /// The approver made the request: a second operator must approve it.
    #[error("{requested_by} made this request and cannot approve it: a second operator must")]
    SelfApproval {
        /// The operator who asked (and tried to approve).
        requested_by: String,
    },
    /// Only the operator who asked may collect the result.
    #[error("only {requested_by}, who made this request, can collect its result")]
    NotRequester {
        /// The operator who asked.
        requested_by: String,
    },
    /// It was not approved (or not collected) before it expired.
    #[error("the request expired at {} and can no longer be used; make a new one", rampart_core::text::utc_minute(*expires_at))]
    Expired {
        /// Unix seconds of expiry.
        expires_at: i64,
    },
    /// It was decided already (approved, denied or carried out).
    #[error("the request is already {status}{}", by.as_deref().map(|by| format!(" (by {by})")).unwrap_or_default())]
    Decided {
        /// Where it stands.
        status: ApprovalState,
        /// Who decided.
        by: Option<String>,
    },
    /// It is still waiting for a second operator's approval.
    #[error("the request is still waiting for a second operator's approval")]
    NotApproved,
    /// The token an unlock was asked for is no longer live (revoked, lost or replaced since).
    #[error("token {token_id} is no longer live, so there is nothing to unlock; make a new request if needed")]
    TokenNotLive {
        /// The token.
        token_id: String,
    },
}

/// What collecting an approved request grants, made by the requester's provisioner and
/// stored in the same transaction that marks the request done: the temporary code (its
/// hash) and the replacement token (its sealed seed), as the request's action asks.
#[derive(Debug, Clone, Default)]
pub struct ResetGrant {
    /// The temporary code, for an action that makes one.
    pub temporary_code: Option<TempCodeRecord>,
    /// The replacement token, for an action that issues one (it replaces any live token).
    pub replacement: Option<TokenIssue>,
}

/// A collected request and what it granted.
#[derive(Debug, Clone)]
pub struct CollectedReset {
    /// The request, now done.
    pub request: ResetRequest,
    /// How the replacement was issued, if there was one.
    pub replacement: Option<IssueOutcome>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_lost_maps_to_actions() {
        for action in ResetAction::ALL {
            assert_eq!(ResetAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(ResetAction::parse("reissue"), None);
        assert_eq!(ResetAction::for_lost(false, false), None);
        assert_eq!(
            ResetAction::for_lost(true, true),
            Some(ResetAction::TemporaryCodeAndReplacement)
        );
        assert!(ResetAction::TemporaryCodeAndReplacement.temporary_code());
        assert!(ResetAction::TemporaryCodeAndReplacement.replacement());
        assert!(!ResetAction::Unlock.yields_secret());
    }

    #[test]
    fn open_requests_expire_and_decided_ones_keep_their_status() {
        let mut request = ResetRequest {
            id: "r".into(),
            user_id: "u".into(),
            username: String::new(),
            action: ResetAction::Unlock,
            token_id: None,
            reason: String::new(),
            requested_by: "ann".into(),
            created_at: 100,
            expires_at: 160,
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
            decision_reason: String::new(),
            completed_at: None,
        };
        assert_eq!(request.state_at(159), ApprovalState::Pending);
        assert_eq!(request.state_at(160), ApprovalState::Expired);
        request.status = ApprovalStatus::Approved;
        assert_eq!(request.state_at(160), ApprovalState::Expired);
        request.status = ApprovalStatus::Done;
        assert_eq!(request.state_at(10_000), ApprovalState::Done);
    }
}
