//! Resuming the saved session from any number of `rampart-connect` processes sharing one home
//! (a `forward`, a `socks` and a `status` at once): each resume spends the ticket and the
//! gateway hands out the next, and a spent ticket presented again ends the session. So under
//! the home's lock a process takes the latest ticket from the session file, resumes, and writes
//! the successor back before any other process may read it. A command that needs the session
//! once (`status`, `logout`, `doctor --rehearse`) resumes it on the first of its gateways that
//! answers ([`resume_on_any`]).

use crate::gateway::connect_any;
use crate::{ClientError, GatewayClient, Home, ResumeCredential, SavedSession};
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

/// The saved session resumed on a fresh connection.
#[derive(Debug)]
pub struct Resumed {
    /// The gateway it is resumed on.
    pub gateway: String,
    /// The connection, attached to the session.
    pub client: GatewayClient,
    /// The gateway's answer: who, until when, which resources.
    pub grant: SessionGrant,
}

/// Connects to the first of the saved session's gateways that answers (its own first, then the
/// person's order; one pass, [`connect_any`]) and resumes the session there with
/// [`resume_saved`]. The connection is closed again if the resume fails.
pub async fn resume_on_any(
    home: &Home,
    saved: &SavedSession,
    credential: &mut ResumeCredential,
) -> Result<Resumed, ClientError> {
    let (gateway, client) = connect_any(&saved.gateways_in_order(), &saved.ca_pem).await?;
    match resume_saved(home, &client, &gateway, credential).await {
        Ok(grant) => Ok(Resumed { gateway, client, grant }),
        Err(e) => {
            client.close().await;
            Err(e)
        }
    }
}
