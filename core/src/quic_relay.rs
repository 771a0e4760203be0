//! The tunnel's data path (feature `quic`): bytes relayed both ways between a TCP connection and
//! a QUIC stream pair in the chunks quinn already holds — a TCP read becomes the QUIC send
//! buffer's chunk as it is, and a received QUIC chunk is written to TCP from where it lies — so no
//! byte is copied through a buffer of ours on the way.

use bytes::{Buf, Bytes, BytesMut};
use std::io::IoSlice;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes asked of each TCP read: as much as a loopback segment carries.
const READ_SIZE: usize = 64 * 1024;
/// Received QUIC chunks (about one packet's payload each) gathered into one TCP write, so the
/// relay makes one system call per ~45 KB rather than one per packet.
const GATHER: usize = 32;

/// What each end asks of the other's acknowledgements (the QUIC ACK frequency extension, used
/// when both ends ask for it): an ACK after every 10 packets rather than every 2, or after 5 ms.
/// Each ACK is a packet to build, encrypt, send, receive and process; a tunnel's bulk and its
/// many small interactive packets pay that per packet on both ends.
pub fn ack_frequency() -> quinn::AckFrequencyConfig {
    let mut config = quinn::AckFrequencyConfig::default();
    config.ack_eliciting_threshold(quinn::VarInt::from_u32(9));
    config.max_ack_delay(Some(std::time::Duration::from_millis(5)));
    config
}

/// Bytes relayed each way and whether both directions ended cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayOutcome {
    /// Bytes read from TCP and sent on the QUIC stream.
    pub to_quic: u64,
    /// Bytes received on the QUIC stream and written to TCP.
    pub to_tcp: u64,
    /// True when both directions reached their end of stream; false when either failed.
    pub clean: bool,
}

/// Relays between the halves of a TCP connection and a QUIC stream pair until both directions
/// end; `to_quic` and `to_tcp` observe each chunk's size as it passes. A direction's clean end is
/// passed on (the QUIC stream finished, the TCP write half shut down); the outcome is clean when
/// both directions ended cleanly.
pub async fn relay<TR, TW, F, B>(
    mut tcp_read: TR,
    mut tcp_write: TW,
    quic_recv: &mut quinn::RecvStream,
    quic_send: &mut quinn::SendStream,
    to_quic: F,
    to_tcp: B,
) -> RelayOutcome
where
    TR: AsyncRead + Unpin,
    TW: AsyncWrite + Unpin,
    F: Fn(u64),
    B: Fn(u64),
{
    let mut sent = 0u64;
    let mut received = 0u64;
    let result = {
        let upward = async {
            let mut buf = BytesMut::new();
            loop {
                if buf.capacity() - buf.len() < READ_SIZE / 4 {
                    buf.reserve(READ_SIZE);
                }
                if tcp_read.read_buf(&mut buf).await? == 0 {
                    quic_send.finish().map_err(std::io::Error::other)?;
                    return Ok::<_, std::io::Error>(());
                }
                let chunk = buf.split().freeze();
                let n = chunk.len() as u64;
                quic_send.write_chunk(chunk).await.map_err(std::io::Error::from)?;
                sent += n;
                to_quic(n);
            }
        };
        let downward = async {
            let mut chunks = vec![Bytes::new(); GATHER];
            while let Some(count) = quic_recv.read_chunks(&mut chunks).await.map_err(std::io::Error::from)? {
                let gathered = chunks.get_mut(..count).unwrap_or_default();
                let n = gathered.iter().map(|c| c.len() as u64).sum();
                write_all_gathered(&mut tcp_write, gathered).await?;
                // An emptied chunk still holds its received datagram's buffer: let it go now,
                // not when the slot is next filled (an idle flow would keep up to 32 of them).
                gathered.fill(Bytes::new());
                received += n;
                to_tcp(n);
            }
            tcp_write.shutdown().await
        };
        tokio::try_join!(upward, downward)
    };
    RelayOutcome {
        to_quic: sent,
        to_tcp: received,
        clean: result.is_ok(),
    }
}

/// Writes every chunk in order with as few vectored writes as the writer allows, emptying them.
async fn write_all_gathered<W: AsyncWrite + Unpin>(writer: &mut W, chunks: &mut [Bytes]) -> std::io::Result<()> {
    let mut first = 0;
    loop {
        while chunks.get(first).is_some_and(Bytes::is_empty) {
            first += 1;
        }
        if first >= chunks.len() {
            return Ok(());
        }
        let slices: Vec<IoSlice<'_>> = chunks.iter().skip(first).map(|c| IoSlice::new(c)).collect();
        let mut written = writer.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let Some(chunk) = chunks.get_mut(first) else { break };
            let step = written.min(chunk.len());
            chunk.advance(step);
            written -= step;
            if chunk.is_empty() {
                first += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Takes at most `step` bytes per write, as a socket with a full buffer does.
    struct Trickle {
        step: usize,
        got: Vec<u8>,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.got.extend_from_slice(buf.get(..n).unwrap_or_default());
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn gathered_chunks_are_written_whole_and_in_order_through_partial_writes() {
        for step in [1, 3, 7, 100] {
            let mut writer = Trickle { step, got: Vec::new() };
            let mut chunks = [
                Bytes::from_static(b"abc"),
                Bytes::new(),
                Bytes::from_static(b"defghij"),
                Bytes::from_static(b"k"),
                Bytes::new(),
            ];
            write_all_gathered(&mut writer, &mut chunks).await.unwrap();
            assert_eq!(writer.got, b"abcdefghijk", "step {step}");
            assert!(chunks.iter().all(Bytes::is_empty));
        }
        // Nothing to write is no write at all, not an error.
        let mut writer = Trickle {
            step: 0,
            got: Vec::new(),
        };
        write_all_gathered(&mut writer, &mut [Bytes::new(), Bytes::new()])
            .await
            .unwrap();
        // A writer that takes nothing is an error, not a loop.
        let err = write_all_gathered(&mut writer, &mut [Bytes::from_static(b"x")])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WriteZero);
    }
}
