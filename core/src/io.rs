//! Async helpers over any tokio `AsyncRead`/`AsyncWrite` (feature `io`): read exactly one
//! frame, leaving whatever follows on the stream untouched; write one frame; relay bytes both
//! ways between two streams, counting them.

use crate::codec::{self, FrameError, HEADER_LEN};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads one frame. `Ok(None)` when the stream ended cleanly before any byte of a frame.
pub async fn read_frame<T, R>(reader: &mut R) -> Result<Option<T>, FrameError>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        let n = reader
            .read(&mut header[filled..])
            .await
            .map_err(|e| FrameError::Io(e.to_string()))?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let len = codec::body_len(header)?;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e.to_string()),
    })?;
    let message = codec::decode_body(&body);
    zeroize::Zeroize::zeroize(&mut body);
    message.map(Some)
}

/// Writes one frame.
pub async fn write_frame<T, W>(writer: &mut W, message: &T) -> Result<(), FrameError>
where
    T: Serialize,
    W: AsyncWrite + Unpin,
{
    let mut frame = codec::encode(message)?;
    let written = writer.write_all(&frame).await;
    zeroize::Zeroize::zeroize(&mut frame);
    written.map_err(|e| FrameError::Io(e.to_string()))
}

/// Copy buffer per direction of a relay.
const RELAY_BUFFER: usize = 64 * 1024;

/// Bytes relayed each way and whether both directions ended cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayOutcome {
    /// Bytes read from the left side and written to the right.
    pub left_to_right: u64,
    /// Bytes read from the right side and written to the left.
    pub right_to_left: u64,
    /// True when both sides reached end of stream; false when either failed.
    pub clean: bool,
}

/// Copies `left → right` and `right → left` until both directions end, or either fails (then
/// the other is dropped). Each end of stream is passed on as a write shutdown (TCP FIN or QUIC
/// stream finish), so half-closed connections behave as they would directly.
pub async fn relay<LR, LW, RR, RW>(left_read: LR, left_write: LW, right_read: RR, right_write: RW) -> RelayOutcome
where
    LR: AsyncRead + Unpin,
    LW: AsyncWrite + Unpin,
    RR: AsyncRead + Unpin,
    RW: AsyncWrite + Unpin,
{
    relay_observed(left_read, left_write, right_read, right_write, |_| {}, |_| {}).await
}

/// [`relay`], calling `on_forward(n)` / `on_backward(n)` as each chunk of `n` bytes has been
/// written on, so live counters (per session, per gateway) move while a long flow runs.
pub async fn relay_observed<LR, LW, RR, RW, F, B>(
    mut left_read: LR,
    mut left_write: LW,
    mut right_read: RR,
    mut right_write: RW,
    on_forward: F,
    on_backward: B,
) -> RelayOutcome
where
    LR: AsyncRead + Unpin,
    LW: AsyncWrite + Unpin,
    RR: AsyncRead + Unpin,
    RW: AsyncWrite + Unpin,
    F: Fn(u64),
    B: Fn(u64),
{
    let mut left_to_right = 0u64;
    let mut right_to_left = 0u64;
    let result = {
        let forward = async {
            copy_counted(&mut left_read, &mut right_write, &mut left_to_right, &on_forward).await?;
            right_write.shutdown().await
        };
        let backward = async {
            copy_counted(&mut right_read, &mut left_write, &mut right_to_left, &on_backward).await?;
            left_write.shutdown().await
        };
        tokio::try_join!(forward, backward)
    };
    RelayOutcome {
        left_to_right,
        right_to_left,
        clean: result.is_ok(),
    }
}

/// `tokio::io::copy` that keeps its byte count even when it fails.
async fn copy_counted<R, W, F>(reader: &mut R, writer: &mut W, count: &mut u64, observe: &F) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    F: Fn(u64),
{
    let mut buf = vec![0u8; RELAY_BUFFER];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return writer.flush().await;
        }
        writer.write_all(&buf[..n]).await?;
        *count += n as u64;
        observe(n as u64);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::protocol::ClientMessage;

    #[tokio::test]
    async fn reads_one_frame_and_leaves_the_rest() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(
            &mut a,
            &ClientMessage::Open {
                resource: "echo".into(),
            },
        )
        .await
        .unwrap();
        a.write_all(b"payload").await.unwrap();
        drop(a);
        let msg: ClientMessage = read_frame(&mut b).await.unwrap().unwrap();
        assert_eq!(
            msg,
            ClientMessage::Open {
                resource: "echo".into()
            }
        );
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"payload");
    }

    #[tokio::test]
    async fn clean_end_and_truncation() {
        let (a, mut b) = tokio::io::duplex(64);
        drop(a);
        assert!(read_frame::<ClientMessage, _>(&mut b).await.unwrap().is_none());
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 10, b'{']).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame::<ClientMessage, _>(&mut b).await,
            Err(FrameError::Truncated)
        ));
    }

    #[tokio::test]
    async fn relay_copies_both_ways_and_passes_half_close() {
        let (client, gw_left) = tokio::io::duplex(4096);
        let (gw_right, target) = tokio::io::duplex(4096);
        let (lr, lw) = tokio::io::split(gw_left);
        let (rr, rw) = tokio::io::split(gw_right);
        let relay = tokio::spawn(relay(lr, lw, rr, rw));
        let echo = tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(target);
            tokio::io::copy(&mut r, &mut w).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let (mut cr, mut cw) = tokio::io::split(client);
        let data = vec![7u8; 200_000];
        let writer = tokio::spawn(async move {
            cw.write_all(&data).await.unwrap();
            cw.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        cr.read_to_end(&mut back).await.unwrap();
        writer.await.unwrap();
        echo.await.unwrap();
        let outcome = relay.await.unwrap();
        assert_eq!(back.len(), 200_000);
        assert_eq!(
            outcome,
            RelayOutcome {
                left_to_right: 200_000,
                right_to_left: 200_000,
                clean: true
            }
        );
    }
}
