//! Any bytes into the frame decoder: a message, "need more", or an error;
//! never a panic, and every decoded message encodes back to the same frame.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use volley_proto::codec::decode_frame;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.clone();
        match decode_frame(&mut buf, 4096) {
            Ok(Some(msg)) => {
                let mut again = Vec::new();
                msg.encode(&mut again);
                let consumed = before.len() - buf.len();
                // Varint lengths have one canonical form only when minimal; the
                // body must match exactly.
                let mut reparsed = BytesMut::from(&again[..]);
                assert_eq!(decode_frame(&mut reparsed, usize::MAX).unwrap(), Some(msg));
                assert!(consumed > 0);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
