//! `rampart dev` in a `rampart` built without the `dev` feature: the command is there, so that
//! it is found and explained, but the services it would run are not linked in.

use crate::client::{CliError, exit};

/// Whatever `rampart dev` was given; none of it is used.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// The options `rampart dev` takes when built with the `dev` feature.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

/// This `rampart` has no dev mode.
#[derive(Debug, thiserror::Error)]
#[error("this rampart was built without dev mode; build it with `cargo build -p rampart-admin-cli --features dev`")]
pub struct DevUnavailable;

impl From<DevUnavailable> for CliError {
    /// A usage error: exit code 2.
    fn from(err: DevUnavailable) -> Self {
        Self {
            message: err.to_string(),
            code: exit::USAGE,
        }
    }
}

/// Refuses, saying how to build a `rampart` that has dev mode.
pub async fn run(_args: DevArgs) -> Result<(), DevUnavailable> {
    Err(DevUnavailable)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[tokio::test]
    async fn says_how_to_build_with_dev_mode_and_exits_2() {
        let err = CliError::from(run(DevArgs { args: Vec::new() }).await.unwrap_err());
        assert_eq!(err.code, 2);
        assert!(err.message.contains("--features dev"), "{}", err.message);
    }
}
