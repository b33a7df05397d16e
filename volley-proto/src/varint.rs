//! LEB128 variable-length unsigned integers: 7 bits per byte, low bits first.
//!
//! Small numbers dominate volley's wire (frame lengths under 128, call ids under
//! the in-flight limit, remote ids under the number of declared remotes), so one
//! byte is the common case.

/// The longest encoding of a `u64`.
pub(crate) const MAX_LEN: usize = 10;

/// Appends `value` to `out`.
pub(crate) fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// How many bytes [`put`] writes for `value`.
pub(crate) fn len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    // ⌈bits / 7⌉ for 1..=64 bits, by a multiply and a shift.
    (bits * 9 + 64) / 64
}

/// What reading a varint from the front of a buffer gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Varint {
    /// The value and how many bytes it took.
    Done(u64, usize),
    /// The buffer ends inside the varint.
    Incomplete,
    /// More than ten bytes, or a tenth byte that overflows 64 bits.
    Overflow,
}

/// Reads a varint from the front of `buf`.
pub(crate) fn get(buf: &[u8]) -> Varint {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(MAX_LEN) {
        let low = u64::from(byte & 0x7f);
        if i == MAX_LEN - 1 && byte > 1 {
            return Varint::Overflow;
        }
        value |= low << (7 * i);
        if byte & 0x80 == 0 {
            return Varint::Done(value, i + 1);
        }
    }
    if buf.len() >= MAX_LEN {
        Varint::Overflow
    } else {
        Varint::Incomplete
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_values_take_one_byte() {
        let mut out = Vec::new();
        put(&mut out, 127);
        assert_eq!(out, [127]);
        out.clear();
        put(&mut out, 128);
        assert_eq!(out, [0x80, 1]);
    }

    #[test]
    fn len_matches_put_at_every_bit_width() {
        for shift in 0..64 {
            for value in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) | 1] {
                let mut out = Vec::new();
                put(&mut out, value);
                assert_eq!(len(value), out.len(), "{value}");
            }
        }
        let mut out = Vec::new();
        put(&mut out, u64::MAX);
        assert_eq!(len(u64::MAX), out.len());
    }

    #[test]
    fn eleven_continuation_bytes_overflow() {
        assert_eq!(get(&[0xff; 11]), Varint::Overflow);
        assert_eq!(get(&[0xff; 9]), Varint::Incomplete);
        // 2^64 does not fit
        let mut too_big = vec![0x80; 9];
        too_big.push(0x02);
        assert_eq!(get(&too_big), Varint::Overflow);
    }

    proptest! {
        #[test]
        fn round_trips(value: u64) {
            let mut out = Vec::new();
            put(&mut out, value);
            prop_assert_eq!(out.len(), len(value));
            prop_assert_eq!(get(&out), Varint::Done(value, out.len()));
            prop_assert_eq!(get(&out[..out.len() - 1]), Varint::Incomplete);
        }
    }
}
