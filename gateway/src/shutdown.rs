//! Shutdown signals: SIGINT or SIGTERM end a gateway (or `rampart dev`) cleanly; the one
//! signal future of `rampart_serve`, under the gateway's name for its callers.

pub use rampart_serve::shutdown::signal;
