//! Resuming the saved session from any number of `rampart-connect` processes sharing one home
//! (a `forward`, a `socks` and a `status` at once): each resume spends the ticket and the
//! gateway hands out the next, and a spent ticket presented again ends the session. So under
//! the home's lock a process takes the latest ticket from the session file, resumes, and writes
//! the successor back before any other process may read it.

use crate::{ClientError, GatewayClient, Home, ResumeCredential};
use rampart_core::protocol::SessionGrant;

/// Resumes `credential`'s session on `client` (connected to `gateway`), with the newest ticket
/// of the saved session if the home still holds this session, and saves the next one there.
/// `credential` is updated either way, so a process whose home now holds another session (a
/// new login) keeps resuming its own from memory.
pub async fn resume_saved(
    home: &Home,
    client: &GatewayClient,
    gateway: &str,
    credential: &mut ResumeCredential,
) -> Result<SessionGrant, ClientError> {
    let _lock = home.lock_session().await?;
    // Another process may have resumed since this one last read the file: its ticket counts.
    if let Some(saved) = home.load_session()?
        && saved.session_id == credential.session_id
    {
        credential.ticket = saved.ticket;
    }
    let grant = client.resume(credential).await?;
    if let Err(e) = home.record_resume(credential, gateway, &grant.resources) {
        // This process keeps the ticket in memory; others sharing the home will find the file
        // behind and their next resume will end the session.
        tracing::warn!(error = %e, "cannot save the session's new ticket");
        eprintln!(
            "warning: cannot save the session's new ticket ({e}); other rampart-connect commands will need a new login"
        );
    }
    Ok(grant)
}
