//! `rampart-connect status`: who is logged in, until when, and the resources they may reach,
//! as the gateway says now; when no gateway can be asked, what was saved at login, with exit 4.

use crate::error::exit;
use crate::resume::resume_on_any;
use crate::show::{local_time, print_resource_lines, print_resources};
use crate::{ClientError, Home};
use rampart_core::protocol::SessionGrant;
use rampart_core::text::printable;

/// Resumes the saved session to ask the gateway, and shows the answer; the exit code.
pub async fn run(home: &Home) -> Result<u8, ClientError> {
    let saved = home.load_session()?.ok_or(ClientError::NotLoggedIn)?;
    let mut credential = saved.credential()?;
    let checked: Result<(String, SessionGrant), ClientError> = async {
        let resumed = resume_on_any(home, &saved, &mut credential).await?;
        resumed.client.close().await;
        Ok((resumed.gateway, resumed.grant))
    }
    .await;
    match checked {
        Ok((gateway, grant)) => {
            println!(
                "Logged in as {} until {} (through {gateway}).",
                printable(&grant.user),
                local_time(grant.expires_at)
            );
            print_resources(&grant.resources);
            Ok(exit::OK)
        }
        Err(e) if e.is_connection_failure() => {
            println!(
                "Logged in as {} until {} (not checked: {e}).",
                printable(&saved.user),
                local_time(saved.expires_at)
            );
            // One heading: what the gateway granted at login, since it could not be asked now.
            if saved.resources.is_empty() {
                println!("At login no resources were open to you.");
            } else {
                println!("At login you could reach:");
                print_resource_lines(&saved.resources);
            }
            Ok(exit::UNREACHABLE)
        }
        Err(e) => Err(e),
    }
}
