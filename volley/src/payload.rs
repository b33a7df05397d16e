//! Payloads: encoding with postcard into pooled buffers (or on the stack),
//! and decoding with the remote's check.

use volley_proto::Status;

use crate::checks::Checks;
use crate::remote::Payload;

/// A handler's answer: the status and the encoded result or rejection message.
pub(crate) type Answer = (Status, Vec<u8>);

/// Encodes a payload into a buffer from this thread's pool (see [`recycle`]).
///
/// postcard rather than bitcode: on the small messages a game sends, through
/// serde (the only path that takes any `serde` type), postcard measured 4–9×
/// faster, with no allocation to decode, where bitcode's serde path allocated
/// five times per encode and decode; and it was as small or smaller on the
/// wire (volley-bench's `payload/*` benchmarks).
pub(crate) fn encode<T: Payload>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_extend(value, take_buffer()).map_err(|e| e.to_string())
}

/// Largest payload [`with_encoded`] encodes on the stack: 64 bytes.
const STACK_PAYLOAD: usize = 64;

/// Encodes `value`, hands the bytes to `use_it`, and recycles the buffer.
/// A small payload (most of a game's calls and events) is encoded on the
/// stack and needs no buffer at all.
pub(crate) fn with_encoded<T: Payload, R>(value: &T, use_it: impl FnOnce(&[u8]) -> R) -> Result<R, String> {
    let mut small = [0u8; STACK_PAYLOAD];
    match postcard::to_slice(value, &mut small) {
        Ok(bytes) => return Ok(use_it(bytes)),
        // Too big for the stack: into a pooled buffer.
        Err(postcard::Error::SerializeBufferFull) => {}
        Err(e) => return Err(e.to_string()),
    }
    let buf = encode(value)?;
    let result = use_it(&buf);
    recycle(buf);
    Ok(result)
}

/// Payload buffers kept per thread for reuse, and the largest one kept: an
/// encoded payload is copied into the session's output at once, so its
/// buffer can serve the next message and steady traffic allocates none.
const POOLED_BUFFERS: usize = 16;
const POOLED_CAPACITY: usize = 16 * 1024;

thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn take_buffer() -> Vec<u8> {
    POOL.with(|pool| pool.borrow_mut().pop()).unwrap_or_default()
}

/// Gives an encoded payload's buffer back to this thread's pool.
pub(crate) fn recycle(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > POOLED_CAPACITY {
        return;
    }
    buf.clear();
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOLED_BUFFERS {
            pool.push(buf);
        }
    });
}

pub(crate) fn decode<T: Payload>(bytes: &[u8], checks: &Checks<T>) -> Result<T, String> {
    let (value, rest): (T, _) = postcard::take_from_bytes(bytes).map_err(|e| format!("does not decode: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("does not decode: {} bytes left over", rest.len()));
    }
    checks
        .run(&value)
        .map(|()| value)
        .map_err(|e| format!("fails validation: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_encode_the_same_on_the_stack_and_in_a_buffer() {
        for len in [0, 1, STACK_PAYLOAD - 2, STACK_PAYLOAD - 1, STACK_PAYLOAD, 1000] {
            let value = vec![7u8; len];
            let encoded = with_encoded(&value, <[u8]>::to_vec).unwrap();
            assert_eq!(encoded, postcard::to_allocvec(&value).unwrap(), "length {len}");
            assert_eq!(decode::<Vec<u8>>(&encoded, &Checks::none()).unwrap(), value);
        }
    }
}
