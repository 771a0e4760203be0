//! Pool hooks: an operator's command (`sh -c`) run for a VM with a time limit, its output kept
//! (the last 4 KiB) so the service desk sees why a machine is not ready.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Most output kept from one hook run.
const OUTPUT_TAIL: usize = 4096;

/// How a hook run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRun {
    /// None when it succeeded; else why not, in words.
    pub failure: Option<String>,
    /// The tail of its standard output and error.
    pub output: String,
}

/// Runs `command` with the VM's facts in its environment, for at most `timeout`.
pub async fn run(command: &str, kind: &str, env: &[(&str, &str)], timeout: Duration) -> HookRun {
    let mut child = match tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            return HookRun {
                failure: Some(format!("{kind} hook could not start: {e}")),
                output: String::new(),
            };
        }
    };
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let collect = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut out).await;
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut err).await;
        }
        out.extend_from_slice(&err);
        out
    };
    let finished = tokio::time::timeout(timeout, async {
        let output = collect.await;
        (child.wait().await, output)
    })
    .await;
    match finished {
        Err(_) => {
            let _ = child.kill().await;
            HookRun {
                failure: Some(format!("{kind} hook timed out after {} s", timeout.as_secs_f64())),
                output: String::new(),
            }
        }
        Ok((status, output)) => {
            let output = tail(&output);
            let failure = match status {
                Ok(status) if status.success() => None,
                Ok(status) => Some(match status.code() {
                    Some(code) => format!("{kind} hook failed with exit code {code}"),
                    None => format!("{kind} hook was killed by a signal"),
                }),
                Err(e) => Some(format!("{kind} hook could not be waited for: {e}")),
            };
            HookRun { failure, output }
        }
    }
}

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(OUTPUT_TAIL);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn success_failure_and_timeout_are_told_apart() {
        let ok = run(
            "echo ready for $RAMPART_VM",
            "provision",
            &[("RAMPART_VM", "vm1")],
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(ok.failure, None);
        assert_eq!(ok.output.trim(), "ready for vm1");
        let failed = run("echo no disk >&2; exit 3", "provision", &[], Duration::from_secs(5)).await;
        assert_eq!(
            failed.failure.as_deref(),
            Some("provision hook failed with exit code 3")
        );
        assert!(failed.output.contains("no disk"));
        let slow = run("sleep 5", "reset", &[], Duration::from_millis(300)).await;
        assert_eq!(slow.failure.as_deref(), Some("reset hook timed out after 0.3 s"));
    }
}
