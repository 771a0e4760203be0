//! The connection profile an employee downloads from their own console page: the
//! organisation's profile (`[console] profile_file`, made once with `rampart profile create`)
//! with their username filled in.

use super::{Provisioner, ServiceError};
use rampart_core::profile::Profile;

impl Provisioner {
    /// The organisation's profile made out to `username`; `None` when the console is given no
    /// profile file.
    pub async fn profile_for(&self, username: &str) -> Result<Option<Profile>, ServiceError> {
        let Some(path) = &self.console.profile_file else {
            return Ok(None);
        };
        let text = tokio::fs::read_to_string(path).await.map_err(|e| {
            ServiceError::Unavailable(format!("cannot read the connection profile {}: {e}", path.display()))
        })?;
        let mut profile = Profile::parse(&text).map_err(|e| {
            ServiceError::Unavailable(format!("the connection profile {} is not valid: {e}", path.display()))
        })?;
        profile.user = Some(username.to_owned());
        Ok(Some(profile))
    }
}
