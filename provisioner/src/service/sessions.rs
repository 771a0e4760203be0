//! What the desk's console reads about one person beyond their tokens (directory standing,
//! registration codes), and gateway sessions as the console shows and ends them: read from
//! the store every gateway shares, ended there with who ended them, so the gateway holding a
//! session closes its tunnels at its next check of the feed of session ends.

use super::{Provisioner, ServiceError};
use rampart_store::registration::RegistrationCodeView;
use rampart_store::{EndedBy, SessionRecord};

/// A person's standing in the directory, as the desk sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Enabled, in these groups.
    Enabled {
        /// Group names.
        groups: Vec<String>,
    },
    /// The account exists but is disabled: no login succeeds.
    Disabled,
    /// No such person in the directory.
    Missing,
}

/// The most live sessions one page lists.
pub const SESSION_PAGE: u32 = 1000;

impl Provisioner {
    /// Whether `username` is in the directory and enabled.
    pub async fn standing(&self, username: &str) -> Result<Standing, ServiceError> {
        let username = super::normalize(username)?;
        Ok(match self.directory.lookup_any(&username).await? {
            Some((person, true)) => Standing::Enabled { groups: person.groups },
            Some((_, false)) => Standing::Disabled,
            None => Standing::Missing,
        })
    }

    /// A person's newest registration codes as they stand now (never the codes themselves).
    pub async fn registration_codes_of(&self, user_id: &str) -> Result<Vec<RegistrationCodeView>, ServiceError> {
        Ok(self.store.registration_codes(user_id, 10, self.now()).await?)
    }

    /// Live sessions on every gateway, oldest first.
    pub async fn live_sessions(&self) -> Result<Vec<SessionRecord>, ServiceError> {
        Ok(self.store.live_sessions(self.now(), SESSION_PAGE).await?)
    }

    /// One person's live sessions, oldest first.
    pub async fn live_sessions_of(&self, user_id: &str) -> Result<Vec<SessionRecord>, ServiceError> {
        Ok(self.store.live_sessions_for_user(user_id, self.now()).await?)
    }

    /// Ends a live session as `ended_by`: an operator's kill, or the person's own logout. The
    /// gateway holding it records the end on its audit trail, naming the ender.
    pub async fn end_session(&self, session_id: &str, ended_by: &EndedBy) -> Result<(), ServiceError> {
        let reason = match ended_by {
            EndedBy::Person(_) => "logout",
            _ => "admin_kill",
        };
        self.store
            .end_session_by(session_id, reason, Some(ended_by), self.now())
            .await?;
        tracing::info!(target: "rampart::console", session = session_id, ended_by = %ended_by, "session ended");
        Ok(())
    }
}
