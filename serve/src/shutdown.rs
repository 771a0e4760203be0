//! Shutdown signals: SIGINT or SIGTERM end a service (or `rampart dev`) cleanly.

/// Completes on SIGINT or SIGTERM (on other systems, on Ctrl-C). When SIGTERM cannot be
/// watched, SIGINT alone ends the wait.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
