//! Fuzzes the frame decoder with whole streams' worth of bytes: no panic, a decoded message
//! re-encodes to a frame that decodes to the same message, a frame cut short asks for more
//! bytes, and no error quotes the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_core::codec::{FrameError, HEADER_LEN, MAX_FRAME_LEN, decode, decode_body, encode};
use rampart_core::protocol::{ClientMessage, ServerMessage};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

fuzz_target!(|data: &[u8]| {
    check::<ClientMessage>(data);
    check::<ServerMessage>(data);
    // The body alone, as a reader that already took the header hands it over.
    if let Err(e) = decode_body::<ClientMessage>(data) {
        check_error(&e);
    }
});

fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    match decode::<T>(data) {
        Ok(None) => {
            // More bytes are needed only while the header or the body it declares is incomplete.
            if let Some(header) = data.get(..HEADER_LEN) {
                let declared = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
                assert!(declared <= MAX_FRAME_LEN && data.len() < HEADER_LEN + declared);
            }
        }
        Ok(Some((message, used))) => {
            assert!(used >= HEADER_LEN && used <= data.len() && used - HEADER_LEN <= MAX_FRAME_LEN);
            // Cut short, the same frame is incomplete rather than wrong.
            for cut in [0, HEADER_LEN - 1, HEADER_LEN, used / 2, used - 1] {
                assert!(matches!(decode::<T>(&data[..cut.min(used - 1)]), Ok(None)));
            }
            match encode(&message) {
                Ok(frame) => {
                    let (again, again_used) = decode::<T>(&frame)
                        .expect("a re-encoded frame decodes")
                        .expect("a re-encoded frame is complete");
                    assert_eq!(again, message);
                    assert_eq!(again_used, frame.len());
                }
                // Escapes may lengthen a body that was close to the limit.
                Err(FrameError::TooLarge(_)) => {}
                Err(e) => panic!("a decoded message does not re-encode: {e}"),
            }
        }
        Err(e) => check_error(&e),
    }
}

/// Decoder errors name a category and a position, never the input (it may hold a password).
fn check_error(error: &FrameError) {
    let text = error.to_string();
    assert!(
        text.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | ':' | '-' | '/')),
        "error text may quote the input: {text:?}"
    );
}
