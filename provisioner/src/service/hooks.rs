//! Pool hooks: an operator's command (`sh -c`) run for a VM in its own process group, with a
//! time limit on the shell and a bounded tail (4 KiB) of its interleaved output kept so the
//! service desk sees why a machine is not ready. Guarantees: the hook sees only `PATH`, `HOME`,
//! `LANG`, `LC_ALL` and the `RAMPART_*` facts it is given (never the provisioner's secrets);
//! output never fills memory or blocks the hook; a time-out kills the whole process group,
//! grandchildren included; a background process left holding the pipes does not turn a finished
//! hook into a time-out.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStderr, ChildStdout};

/// Most output kept from one hook run.
const OUTPUT_TAIL: usize = 4096;
/// How long the pipes may stay open after the shell has exited (or been killed): a background
/// process the hook started may hold them for ever.
const PIPE_GRACE: Duration = Duration::from_secs(2);
/// The only variables a hook inherits from the provisioner's environment.
const INHERITED: [&str; 4] = ["PATH", "HOME", "LANG", "LC_ALL"];

/// How a hook run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRun {
    /// None when it succeeded; else why not, in words.
    pub failure: Option<String>,
    /// The tail of its standard output and error.
    pub output: String,
}

/// Runs `command` with `env` (the VM's `RAMPART_*` facts) for at most `timeout`. `kind` names
/// the hook in failure messages.
pub async fn run(command: &str, kind: &str, env: &[(&str, &str)], timeout: Duration) -> HookRun {
    let mut shell = tokio::process::Command::new("sh");
    shell.arg("-c").arg(command).env_clear();
    for name in INHERITED {
        if let Some(value) = std::env::var_os(name) {
            shell.env(name, value);
        }
    }
    shell
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    shell.process_group(0);
    let mut child = match shell.spawn() {
        Ok(child) => child,
        Err(e) => {
            return HookRun {
                failure: Some(format!("{kind} hook could not start: {e}")),
                output: String::new(),
            };
        }
    };
    // Declared after `child`, so dropped before it: if this future is dropped mid-run the
    // group is killed while its leader is still unreaped (its id cannot have been reused).
    let mut group = ProcessGroup::of(&child);
    let mut tail = Tail::default();
    let finished = {
        let drain = drain(&mut tail, child.stdout.take(), child.stderr.take());
        tokio::pin!(drain);
        let mut drained = false;
        // Output is read while the shell runs, so a hook that writes a lot never blocks on a
        // full pipe; the time limit is on the shell itself.
        let waited = tokio::time::timeout(timeout, async {
            loop {
                tokio::select! {
                    status = child.wait() => break status,
                    () = &mut drain, if !drained => drained = true,
                }
            }
        })
        .await;
        let finished = match waited {
            Ok(status) => {
                // The shell is reaped, so its group id may be reused once the group empties;
                // whatever it left running in the background is the hook's own business.
                group.disarm();
                Finished::Exited(status)
            }
            Err(_) => {
                group.kill();
                reap(&mut child).await;
                Finished::TimedOut
            }
        };
        if !drained {
            // What is still in the pipes; a process that left the group (or was left in the
            // background) may hold them open for ever, so this is bounded too.
            let _ = tokio::time::timeout(PIPE_GRACE, &mut drain).await;
        }
        finished
    };
    let failure = match finished {
        Finished::TimedOut => Some(format!("{kind} hook timed out after {} s", timeout.as_secs_f64())),
        Finished::Exited(Ok(status)) if status.success() => None,
        Finished::Exited(Ok(status)) => Some(match status.code() {
            Some(code) => format!("{kind} hook failed with exit code {code}"),
            None => format!("{kind} hook was killed by a signal"),
        }),
        Finished::Exited(Err(e)) => Some(format!("{kind} hook could not be waited for: {e}")),
    };
    HookRun {
        failure,
        output: tail.into_string(),
    }
}

/// How the shell ended.
enum Finished {
    /// It exited (or could not be waited for).
    Exited(std::io::Result<std::process::ExitStatus>),
    /// It ran past its time limit and its group was killed.
    TimedOut,
}

/// Reads both pipes as data arrives, in the order it arrives, until both are closed.
async fn drain(tail: &mut Tail, mut stdout: Option<ChildStdout>, mut stderr: Option<ChildStderr>) {
    let mut out_buf = [0u8; OUTPUT_TAIL];
    let mut err_buf = [0u8; OUTPUT_TAIL];
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            read = read_some(stdout.as_mut(), &mut out_buf) => match read {
                Some(n) => tail.push(out_buf.get(..n).unwrap_or_default()),
                None => stdout = None,
            },
            read = read_some(stderr.as_mut(), &mut err_buf) => match read {
                Some(n) => tail.push(err_buf.get(..n).unwrap_or_default()),
                None => stderr = None,
            },
        }
    }
}

/// The next bytes of `stream`; None at its end (or on a read error); never, without a stream.
async fn read_some<R: AsyncRead + Unpin>(stream: Option<&mut R>, buf: &mut [u8]) -> Option<usize> {
    match stream {
        Some(stream) => match stream.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

/// Reaps a shell whose group was just killed; kill-on-drop and tokio's orphan reaper finish
/// the job should it somehow still be alive after the grace.
async fn reap(child: &mut Child) {
    let _ = child.start_kill();
    let _ = tokio::time::timeout(PIPE_GRACE, child.wait()).await;
}

/// The last [`OUTPUT_TAIL`] bytes written, whatever the total.
#[derive(Debug, Default)]
struct Tail {
    bytes: Vec<u8>,
    cut: bool,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        let excess = self.bytes.len().saturating_sub(OUTPUT_TAIL);
        if excess > 0 {
            self.bytes.drain(..excess);
            self.cut = true;
        }
    }

    /// The tail as text, without the broken first character a cut may leave.
    fn into_string(self) -> String {
        let mut start = 0;
        if self.cut {
            while start < 3 && self.bytes.get(start).is_some_and(|b| b & 0xC0 == 0x80) {
                start += 1;
            }
        }
        String::from_utf8_lossy(self.bytes.get(start..).unwrap_or_default()).into_owned()
    }
}

/// The hook's process group, killed (SIGKILL to the whole group) on time-out or when the run
/// is dropped, unless disarmed once the shell has been reaped.
#[derive(Debug)]
struct ProcessGroup {
    id: Option<u32>,
}

impl ProcessGroup {
    /// The group `child` leads (it was spawned with `process_group(0)`).
    fn of(child: &Child) -> Self {
        Self { id: child.id() }
    }

    fn disarm(&mut self) {
        self.id = None;
    }

    fn kill(&mut self) {
        if let Some(id) = self.id.take() {
            kill_group(id);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(unix)]
fn kill_group(id: u32) {
    use rustix::process::{Pid, Signal, kill_process_group};
    let Some(pid) = i32::try_from(id).ok().and_then(Pid::from_raw) else {
        return;
    };
    match kill_process_group(pid, Signal::KILL) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => {
            tracing::warn!(target: "rampart::provisioner", pgid = id, error = %e, "cannot kill a hook's process group");
        }
    }
}

/// Without process groups only the shell is killed (kill-on-drop and `start_kill`).
#[cfg(not(unix))]
fn kill_group(_id: u32) {}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;
    use std::time::Instant;

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
        let slow = run("echo started; sleep 5", "reset", &[], Duration::from_millis(300)).await;
        assert_eq!(slow.failure.as_deref(), Some("reset hook timed out after 0.3 s"));
        assert_eq!(slow.output.trim(), "started", "the output is kept on a time-out too");
    }

    #[tokio::test]
    async fn a_flood_on_both_pipes_succeeds_keeping_only_the_last_4_kib() {
        // Reading one pipe to its end before the other would deadlock here: 200 KiB on stderr
        // fills its pipe while nobody reads it.
        let run = run(
            "yes e | head -c 204800 >&2; yes o | head -c 204800; echo the-end",
            "provision",
            &[],
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(run.failure, None, "{}", run.output);
        assert!(run.output.len() <= OUTPUT_TAIL, "{} bytes kept", run.output.len());
        assert!(run.output.ends_with("o\nthe-end\n"), "{:?}", run.output);
    }

    #[tokio::test]
    async fn a_background_process_holding_the_pipes_does_not_make_a_time_out() {
        let started = Instant::now();
        let run = run("sleep 8 & echo done", "reset", &[], Duration::from_secs(20)).await;
        assert_eq!(run.failure, None);
        assert_eq!(run.output.trim(), "done");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_time_out_kills_the_grandchildren_too() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let marker = dir.path().join("survived");
        let command = format!("sh -c 'sleep 2; touch {}' & sleep 30", marker.display());
        let started = Instant::now();
        let run = run(&command, "destroy", &[], Duration::from_millis(500)).await;
        assert_eq!(run.failure.as_deref(), Some("destroy hook timed out after 0.5 s"));
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!marker.exists(), "the grandchild outlived the hook's time-out");
    }

    /// Set in the environment of a second run of this test binary, which holds a fake secret.
    const CHILD_MARK: &str = "RAMPART_TEST_HOOK_ENV_CHILD";
    const FAKE_SECRET: &str = "fake-bind-password-8d1f";

    #[tokio::test]
    async fn the_provisioners_environment_never_reaches_a_hook() {
        if std::env::var_os(CHILD_MARK).is_some() {
            // The second run: this process has the secret and the mark in its environment.
            assert_eq!(std::env::var("LDAP_BIND_PASSWORD").ok().as_deref(), Some(FAKE_SECRET));
            let run = run("env", "provision", &[("RAMPART_VM_ID", "vm1")], Duration::from_secs(5)).await;
            assert_eq!(run.failure, None);
            assert!(!run.output.contains(FAKE_SECRET), "{}", run.output);
            assert!(!run.output.contains("LDAP_BIND_PASSWORD"), "{}", run.output);
            assert!(!run.output.contains(CHILD_MARK), "{}", run.output);
            assert!(run.output.contains("RAMPART_VM_ID=vm1"), "{}", run.output);
            assert!(run.output.contains("PATH="), "{}", run.output);
            return;
        }
        // Setting a variable in this process needs `unsafe` (forbidden here), so the test runs
        // itself again with one set.
        let name = format!(
            "{}::the_provisioners_environment_never_reaches_a_hook",
            module_path!().split_once("::").map_or("", |(_, rest)| rest)
        );
        let exe = std::env::current_exe().expect("the test binary");
        let out = std::process::Command::new(exe)
            .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_MARK, "1")
            .env("LDAP_BIND_PASSWORD", FAKE_SECRET)
            .output()
            .expect("run the test binary again");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
        assert!(said.contains("1 passed"), "the second run ran nothing: {said}");
    }

    #[test]
    fn the_tail_is_bounded_and_starts_on_a_character() {
        let mut tail = Tail::default();
        tail.push("é".repeat(3000).as_bytes());
        tail.push(b"end");
        let text = tail.into_string();
        assert!(text.len() <= OUTPUT_TAIL);
        assert!(text.starts_with('é') && text.ends_with("end"), "{text:?}");
    }
}
