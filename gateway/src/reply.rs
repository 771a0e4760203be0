//! Answers that end a stream: a refusal frame with its code, then the stream's end.

use rampart_core::io::write_frame;
use rampart_core::protocol::{ErrorCode, ServerMessage};

/// Answers a stream with a refusal and ends it.
pub(crate) async fn refuse(send: &mut quinn::SendStream, code: ErrorCode) {
    let _ = write_frame(send, &ServerMessage::refused(code)).await;
    let _ = send.finish();
}
