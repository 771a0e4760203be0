//! Small TCP probes for side-by-side path measurements: a 1-byte echo service, 1-byte
//! ping-pong round trips over one connection, and new connections per second (open, write one
//! byte, read it back, close).

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Binds `listen` and echoes every byte back on every connection, for the rest of the
/// process; returns the bound address.
pub async fn echo_server(listen: &str) -> anyhow::Result<String> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let (mut r, mut w) = tcp.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Ok(addr)
}

/// One byte sent and read back; an error when the path closed or sent another byte.
async fn round_trip(tcp: &mut TcpStream) -> anyhow::Result<()> {
    tcp.write_all(&[7]).await?;
    let mut back = [0u8; 1];
    tcp.read_exact(&mut back).await?;
    anyhow::ensure!(back == [7], "the echo sent back another byte");
    Ok(())
}

/// `rounds` 1-byte round trips over one connection to `addr` (after `rounds / 10` unrecorded
/// warm-up rounds); each round trip's time, sorted.
pub async fn ping_pong(addr: &str, rounds: usize) -> anyhow::Result<Vec<Duration>> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    for _ in 0..rounds / 10 {
        round_trip(&mut tcp).await?;
    }
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let began = Instant::now();
        round_trip(&mut tcp).await?;
        times.push(began.elapsed());
    }
    times.sort();
    Ok(times)
}

/// New connections to `addr` per second for `duration`, one after another: connect, write one
/// byte, read it back, close.
pub async fn connection_rate(addr: &str, duration: Duration) -> anyhow::Result<f64> {
    let began = Instant::now();
    let mut done = 0u64;
    while began.elapsed() < duration {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        round_trip(&mut tcp).await?;
        drop(tcp);
        done += 1;
    }
    Ok(done as f64 / began.elapsed().as_secs_f64())
}
