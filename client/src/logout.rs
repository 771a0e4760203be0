//! `rampart-connect logout`: ends the session on the gateway, then forgets it here. The ticket
//! is kept when no gateway could be told, since it is the only way to end the session before it
//! expires — unless the person says `--forget`.

use crate::error::exit;
use crate::resume::resume_on_any;
use crate::show::local_time;
use crate::{ClientError, Home};

/// Ends the saved session (or, with `forget`, at least forgets it here); the exit code.
pub async fn run(home: &Home, forget: bool) -> Result<u8, ClientError> {
    let saved = home.load_session()?.ok_or(ClientError::NotLoggedIn)?;
    let result = async {
        let mut credential = saved.credential()?;
        let resumed = resume_on_any(home, &saved, &mut credential).await?;
        let ended = resumed.client.logout().await;
        resumed.client.close().await;
        ended
    }
    .await;
    match result {
        Ok(()) => {
            home.clear_session()?;
            println!("Logged out.");
        }
        // The gateway says the session is already over: nothing is left to end.
        Err(e) if e.ends_session() => {
            home.clear_session()?;
            println!("Logged out (the session had already ended).");
        }
        Err(e) if forget => {
            home.clear_session()?;
            println!(
                "Forgotten on this computer, but the gateway could not be told ({e}): the session lasts until {}.",
                local_time(saved.expires_at)
            );
        }
        // Keep the ticket: it is the only way to end the session before it expires.
        Err(e) => return Err(e),
    }
    Ok(exit::OK)
}
