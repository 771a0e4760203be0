//! Frame codec: a 4-byte big-endian length followed by a JSON body of at most
//! [`MAX_FRAME_LEN`] bytes.
//!
//! Decoding never panics: oversize lengths are rejected before any body is buffered, and
//! malformed bodies are errors. The length prefix lets a reader take exactly one frame off a
//! stream and leave the raw bytes that follow `Open` untouched.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest frame body accepted or produced, in bytes.
pub const MAX_FRAME_LEN: usize = 16 * 1024;
/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The declared or actual body length exceeds [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
    /// The body is not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The peer closed the stream in the middle of a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The stream failed while reading or writing.
    #[error("stream error: {0}")]
    Io(String),
}

/// Encodes one message as a frame.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(message).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(body.len()))?;
    let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Reads the body length from a frame header, rejecting oversize frames.
pub fn body_len(header: [u8; HEADER_LEN]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Parses a frame body into a message.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(body.len()));
    }
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(redacted_reason(&e)))
}

/// Decodes the first frame in `buf`. `Ok(None)` means more bytes are needed; otherwise the
/// message and the number of bytes it used.
pub fn decode<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, FrameError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let mut fixed = [0u8; HEADER_LEN];
    fixed.copy_from_slice(header);
    let len = body_len(fixed)?;
    let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    Ok(Some((decode_body(body)?, HEADER_LEN + len)))
}

/// serde_json errors can quote the offending input, which may be a password: keep only the
/// category and position.
fn redacted_reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "i/o error",
        Category::Syntax => "invalid JSON",
        Category::Data => "unexpected message shape",
        Category::Eof => "incomplete JSON",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::protocol::{ClientMessage, ServerMessage};
    use crate::secret::Sensitive;
    use proptest::prelude::*;

    #[test]
    fn round_trip_login() {
        let msg = ClientMessage::Login {
            username: "alice".into(),
            password: Sensitive::new("pw".into()),
            otp: Sensitive::new("123456".into()),
            client_key: Some("key".into()),
        };
        let frame = encode(&msg).unwrap();
        let (back, used) = decode::<ClientMessage>(&frame).unwrap().unwrap();
        assert_eq!(back, msg);
        assert_eq!(used, frame.len());
    }

    #[test]
    fn partial_input_needs_more() {
        let frame = encode(&ClientMessage::Open {
            resource: "echo".into(),
        })
        .unwrap();
        for cut in 0..frame.len() {
            assert!(decode::<ClientMessage>(&frame[..cut]).unwrap().is_none());
        }
    }

    #[test]
    fn trailing_bytes_are_left_alone() {
        let mut buf = encode(&ClientMessage::Open {
            resource: "echo".into(),
        })
        .unwrap();
        let len = buf.len();
        buf.extend_from_slice(b"raw tcp bytes");
        let (_, used) = decode::<ClientMessage>(&buf).unwrap().unwrap();
        assert_eq!(used, len);
    }

    #[test]
    fn oversize_header_is_rejected_before_the_body() {
        let header = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
        assert!(matches!(decode::<ClientMessage>(&header), Err(FrameError::TooLarge(_))));
        let huge = ClientMessage::Open {
            resource: "x".repeat(MAX_FRAME_LEN),
        };
        assert!(matches!(encode(&huge), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn unknown_type_and_bad_json_are_errors() {
        for body in [&br#"{"type":"nope"}"#[..], b"{", b"\xff\xfe", b"[]", b"null"] {
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(body);
            assert!(matches!(decode::<ClientMessage>(&frame), Err(FrameError::Malformed(_))));
        }
    }

    #[test]
    fn errors_do_not_quote_input() {
        let body = br#"{"type":"login","username":"a","password":"hunter2-secret","otp":5}"#;
        let err = decode_body::<ClientMessage>(body).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<ClientMessage>(&bytes);
            let _ = decode::<ServerMessage>(&bytes);
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(&body);
            let _ = decode::<ClientMessage>(&frame);
        }

        #[test]
        fn open_round_trips(resource in ".{0,200}") {
            let msg = ClientMessage::Open { resource };
            let frame = encode(&msg).unwrap();
            let (back, used) = decode::<ClientMessage>(&frame).unwrap().unwrap();
            prop_assert_eq!(back, msg);
            prop_assert_eq!(used, frame.len());
        }
    }
}
