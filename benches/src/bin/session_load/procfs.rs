//! What `session-load` reads from `/proc`: a process's resident memory and CPU time, and the
//! machine's busy time.

use std::time::Instant;

/// A `/proc` reading of the gateway, this process and the machine.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    pub at: Instant,
    gateway: u64,
    own: u64,
    machine_busy: u64,
}

impl CpuMark {
    pub fn now(gateway_pid: u32) -> anyhow::Result<Self> {
        Ok(Self {
            at: Instant::now(),
            gateway: process_ticks(gateway_pid)?,
            own: process_ticks(std::process::id())?,
            machine_busy: machine_busy_ticks()?,
        })
    }

    /// Cores used since `earlier`: (gateway, this process, whole machine).
    pub fn cores_since(&self, earlier: &Self, clk_tck: f64) -> (f64, f64, f64) {
        let secs = (self.at - earlier.at).as_secs_f64().max(1e-9);
        let cores = |now: u64, then: u64| now.saturating_sub(then) as f64 / clk_tck / secs;
        (
            cores(self.gateway, earlier.gateway),
            cores(self.own, earlier.own),
            cores(self.machine_busy, earlier.machine_busy),
        )
    }
}

/// utime + stime of process `pid`, in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn process_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let close = stat
        .rfind(')')
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat has no ')'"))?;
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat is short"))?
            .parse()?)
    };
    // After the command name: field 3 (state) is index 0, so utime (14) is 11, stime (15) 12.
    Ok(field(11)? + field(12)?)
}

/// Ticks all CPUs spent on anything but idle and iowait (`/proc/stat`).
fn machine_busy_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().unwrap_or_default();
    // user nice system idle iowait irq softirq steal (guest time is already in user and nice).
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    anyhow::ensure!(ticks.len() >= 5, "unexpected /proc/stat: {line}");
    Ok(ticks.iter().sum::<u64>() - ticks[3] - ticks[4])
}

/// Clock ticks per second, as `getconf CLK_TCK` says.
pub fn clk_tck() -> anyhow::Result<f64> {
    let out = std::process::Command::new("getconf").arg("CLK_TCK").output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("getconf CLK_TCK said {text:?}: {e}"))
}

/// A `kB` line of `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {key} in /proc/{pid}/status"))
}
