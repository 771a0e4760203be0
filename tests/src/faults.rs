//! Faults injected into real peers: a process frozen with SIGSTOP (thawed when the guard
//! drops, even when the test fails), a TCP proxy that passes, refuses or swallows a service's
//! connections on command, and a process's resident memory from `/proc`.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A process stopped with SIGSTOP until this guard drops (SIGCONT), as a hung server is.
#[derive(Debug)]
pub struct Frozen {
    pid: u32,
}

impl Frozen {
    /// Stops `pid` now.
    pub fn freeze(pid: u32) -> Self {
        assert!(signal(pid, "-STOP"), "kill -STOP {pid}");
        Self { pid }
    }
}

impl Drop for Frozen {
    /// Thaws the process; one that was stopped for good meanwhile is left alone.
    fn drop(&mut self) {
        signal(self.pid, "-CONT");
    }
}

/// Sends `which` to `pid`; whether the process was there to get it.
fn signal(pid: u32, which: &str) -> bool {
    Command::new("kill")
        .args([which, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Resident memory of `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for {pid}"))
}

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Carries bytes both ways.
    Pass,
    /// Closes every connection, open or new, at once: the service is unreachable.
    Refuse,
    /// Keeps connections open but carries nothing: the service hangs.
    Swallow,
}

/// A TCP proxy on 127.0.0.1 in front of `upstream`, served by the calling test's runtime.
#[derive(Debug)]
pub struct FaultProxy {
    /// `127.0.0.1:PORT` to point clients at.
    pub addr: String,
    link: Arc<watch::Sender<Link>>,
}

impl FaultProxy {
    /// Starts passing connections to `upstream` (`HOST:PORT`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let link = Arc::new(watch::Sender::new(Link::Pass));
        let links = link.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(carry(client, upstream.clone(), links.subscribe()));
            }
        });
        Self { addr, link }
    }

    /// From now on, `link`.
    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

/// One connection: carried while the link passes; dropped when it refuses; held silent while
/// it swallows, then dropped at the next change.
async fn carry(mut client: TcpStream, upstream: String, mut link: watch::Receiver<Link>) {
    let now = *link.borrow_and_update();
    match now {
        Link::Refuse => return,
        Link::Swallow => {
            let _ = link.changed().await;
            return;
        }
        Link::Pass => {}
    }
    let Ok(Ok(mut server)) = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&upstream)).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = async {
            while link.changed().await.is_ok() {
                if *link.borrow_and_update() != Link::Pass {
                    break;
                }
            }
        } => {
            if *link.borrow() == Link::Swallow {
                let _ = link.changed().await;
            }
        }
    }
    let _ = client.shutdown().await;
}
