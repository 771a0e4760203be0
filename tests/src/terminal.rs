//! A real terminal for tests of prompts and countdowns: a tmux server of the test's own running
//! a command, typed into and read back as a person would.

use crate::{now, require_tool};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A terminal the test types into: a tmux server of its own running a bash script.
#[derive(Debug)]
pub struct Terminal {
    socket: String,
}

impl Terminal {
    /// Runs `command` in bash at a new terminal, then prints `EXIT=<status>` and stays open.
    /// The shell survives Ctrl-C, so the status of a command that handled it is still shown.
    pub fn start(dir: &Path, command: &str) -> Self {
        require_tool("tmux", "tmux");
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let script = dir.join(format!("terminal-{n}.sh"));
        std::fs::write(
            &script,
            format!(
                "trap 'true' INT\nunset RAMPART_PASSWORD RAMPART_GATEWAY RAMPART_CA RAMPART_CONNECT_CA\n{command}\n\
                 echo EXIT=$?\nsleep 120\n"
            ),
        )
        .unwrap();
        let socket = format!("rampart-login-{}-{n}-{}", std::process::id(), now());
        let status = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-x", "250", "-y", "50", "bash"])
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        Self { socket }
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-J", "-S", "-100"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn wait_for(&self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(Instant::now() < deadline, "{text:?} never appeared:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn type_line(&self, text: &str) {
        let typed = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-l", text])
            .status()
            .unwrap();
        let enter = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "Enter"])
            .status()
            .unwrap();
        assert!(typed.success() && enter.success());
    }

    pub fn ctrl_c(&self) {
        let sent = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "C-c"])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}
