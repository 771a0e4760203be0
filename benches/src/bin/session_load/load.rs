//! The RDP-like load `session-load rdp` puts on every flow: small echoed messages at a steady
//! pace, and timed "interactive" messages whose echo time is recorded.

use crate::procfs::CpuMark;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::MissedTickBehavior;

/// Pace of every flow's writes.
const TICK: Duration = Duration::from_millis(20);
/// Every this many ticks a flow sends a timed interactive message (5 a second).
const TIMED_EVERY: u64 = 10;
/// Longest stall of a flow's writer made up for afterwards.
const CATCH_UP: Duration = Duration::from_millis(100);
/// Unmeasured load before the measured window.
const WARM_UP: Duration = Duration::from_secs(1);
/// Message kinds (the first byte of each message; then a big-endian u16 payload length).
const BULK: u8 = 0;
const TIMED: u8 = 1;
const END: u8 = 2;
/// Sizes of the bulk messages, header included.
const SMALLEST: usize = 200;
const LARGEST: usize = 1200;

/// The load every flow carries, and the switches that start and stop its measurement.
#[derive(Debug)]
pub struct Load {
    /// Bulk bytes per second, each way.
    pub bytes_per_sec: f64,
    /// While set, bytes and echo times count.
    pub recording: AtomicBool,
    /// Once set, writers send the end message and stop.
    pub stop: AtomicBool,
}

impl Load {
    /// `mbit` megabits per second each way, not yet recording.
    pub fn new(mbit: f64) -> Arc<Self> {
        Arc::new(Self {
            bytes_per_sec: mbit * 1e6 / 8.0,
            recording: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        })
    }
}

/// What one flow carried while recording.
#[derive(Debug, Default)]
struct FlowResult {
    sent: u64,
    received: u64,
    echoes: Vec<Duration>,
}

/// A small xorshift generator: message sizes and start phases need no more.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n.max(1)
    }
}

/// Reads messages until the end message; records each timed message's echo time.
async fn read_flow<R: AsyncRead + Unpin>(
    r: R,
    mut timed: tokio::sync::mpsc::UnboundedReceiver<Instant>,
    load: Arc<Load>,
) -> Result<(u64, Vec<Duration>), String> {
    let mut r = BufReader::with_capacity(32 * 1024, r);
    let mut payload = [0u8; LARGEST];
    let (mut received, mut echoes) = (0u64, Vec::new());
    loop {
        let mut header = [0u8; 3];
        r.read_exact(&mut header).await.map_err(|e| format!("read: {e}"))?;
        let len = usize::from(u16::from_be_bytes([header[1], header[2]]));
        if len > LARGEST {
            return Err(format!("the echo sent a {len}-byte payload"));
        }
        r.read_exact(&mut payload[..len])
            .await
            .map_err(|e| format!("read: {e}"))?;
        let recording = load.recording.load(Ordering::Relaxed);
        if recording {
            received += 3 + len as u64;
        }
        match header[0] {
            BULK => {}
            TIMED => {
                let sent = timed.recv().await.ok_or("a timed echo nobody sent")?;
                if recording {
                    echoes.push(sent.elapsed());
                }
            }
            END => return Ok((received, echoes)),
            other => return Err(format!("the echo sent message kind {other}")),
        }
    }
}

/// Carries the load on one flow until told to stop; `Err` names what broke.
async fn flow<R, W>(r: R, mut w: W, index: usize, load: Arc<Load>) -> Result<FlowResult, String>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (timed_tx, timed_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut reader = tokio::spawn(read_flow(r, timed_rx, load.clone()));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    // Flows start spread over one tick, so their writes do not all fall on the same instant.
    tokio::time::sleep(Duration::from_micros(rng.below(TICK.as_micros() as u64))).await;
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut credit, mut sent, mut ticks, mut last) = (0.0f64, 0u64, 0u64, Instant::now());
    let mut buf = Vec::with_capacity(16 * 1024);
    let written = loop {
        interval.tick().await;
        buf.clear();
        if load.stop.load(Ordering::Relaxed) {
            buf.extend_from_slice(&[END, 0, 0]);
            let ended = async {
                w.write_all(&buf).await?;
                w.flush().await
            };
            break ended.await.map_err(|e| format!("write: {e}"));
        }
        let timed = ticks % TIMED_EVERY == 0;
        ticks += 1;
        if timed {
            buf.extend_from_slice(&[TIMED, 0, 0]);
        }
        // Credit by the time since the last write, so a late tick sends more and the rate
        // holds; after a stall of more than CATCH_UP the missed bytes are given up.
        let now = Instant::now();
        credit += load.bytes_per_sec * (now - last).min(CATCH_UP).as_secs_f64();
        last = now;
        while credit > 0.0 {
            let size = SMALLEST + rng.below((LARGEST - SMALLEST + 1) as u64) as usize;
            buf.push(BULK);
            buf.extend_from_slice(&((size - 3) as u16).to_be_bytes());
            buf.resize(buf.len() + size - 3, 0x5a);
            credit -= size as f64;
        }
        if timed {
            let _ = timed_tx.send(Instant::now());
        }
        if let Err(e) = w.write_all(&buf).await {
            break Err(format!("write: {e}"));
        }
        if load.recording.load(Ordering::Relaxed) {
            sent += buf.len() as u64;
        }
    };
    if let Err(e) = written {
        reader.abort();
        return Err(e);
    }
    let read = match tokio::time::timeout(Duration::from_secs(30), &mut reader).await {
        Ok(joined) => joined.map_err(|e| format!("reader: {e}"))?,
        Err(_) => {
            reader.abort();
            Err("the end message was not echoed within 30 s".to_owned())
        }
    };
    let _ = w.shutdown().await;
    let (received, echoes) = read?;
    Ok(FlowResult { sent, received, echoes })
}

/// What a load run measured.
#[derive(Debug)]
pub struct LoadRun {
    /// Flows whose end message came back.
    pub carried: usize,
    /// Megabits per second written towards the echo service, all flows together.
    pub mbit_up: f64,
    /// Megabits per second echoed back, all flows together.
    pub mbit_down: f64,
    /// Echo times of the timed messages, sorted.
    pub echoes: Vec<Duration>,
    /// Flows that carried less than 90% of the intended rate back.
    pub slow: usize,
    /// Flows that broke, by what broke.
    pub failures: BTreeMap<String, usize>,
    /// (gateway, this process, machine) cores over the window.
    pub cores: (f64, f64, f64),
}

/// Runs the load on every flow for `secs` after the warm-up, reading the gateway's CPU use
/// over the measured window.
pub async fn run_load<R, W>(
    flows: Vec<(R, W)>,
    load: Arc<Load>,
    secs: u64,
    pid: u32,
    clk_tck: f64,
) -> anyhow::Result<LoadRun>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let tasks: Vec<_> = flows
        .into_iter()
        .enumerate()
        .map(|(i, (r, w))| tokio::spawn(flow(r, w, i, load.clone())))
        .collect();
    tokio::time::sleep(WARM_UP).await;
    let start = CpuMark::now(pid)?;
    load.recording.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    load.recording.store(false, Ordering::Relaxed);
    let end = CpuMark::now(pid)?;
    load.stop.store(true, Ordering::Relaxed);
    let window = (end.at - start.at).as_secs_f64();
    let (mut sent, mut received, mut carried, mut slow) = (0u64, 0u64, 0usize, 0usize);
    let (mut echoes, mut failures) = (Vec::new(), BTreeMap::new());
    for task in tasks {
        match task.await {
            Ok(Ok(r)) => {
                carried += 1;
                sent += r.sent;
                received += r.received;
                if (r.received as f64) < 0.9 * load.bytes_per_sec * window {
                    slow += 1;
                }
                echoes.extend(r.echoes);
            }
            Ok(Err(kind)) => *failures.entry(kind).or_default() += 1,
            Err(e) => *failures.entry(format!("task: {e}")).or_default() += 1,
        }
    }
    echoes.sort();
    Ok(LoadRun {
        carried,
        mbit_up: sent as f64 * 8.0 / 1e6 / window,
        mbit_down: received as f64 * 8.0 / 1e6 / window,
        echoes,
        slow,
        failures,
        cores: end.cores_since(&start, clk_tck),
    })
}
