//! Async frame helpers over any tokio `AsyncRead`/`AsyncWrite` (feature `io`): read exactly one
//! frame, leaving whatever follows on the stream untouched; write one frame. (The tunnel's
//! relay is `quic_relay`.)

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
}
