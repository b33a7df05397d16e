//! [`FrameBytes`]: a received payload, copied when small, shared when large.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// The bytes a received frame carries (a payload or a hello's token): held
/// inline up to [`FrameBytes::INLINE`] bytes, otherwise a [`Bytes`] view of
/// the read buffer.
///
/// Most frames of a game are small. Sharing the read buffer costs two atomic
/// operations on its reference count per frame (the view made, then dropped),
/// often on another core than the one reading; copying a few bytes costs
/// less. A large payload is shared, not copied.
///
/// Equal when the bytes are equal, however they are held.
#[derive(Clone)]
pub struct FrameBytes(Held);

#[derive(Clone)]
enum Held {
    Inline { len: u8, bytes: [u8; FrameBytes::INLINE] },
    Shared(Bytes),
}

impl FrameBytes {
    /// The most bytes held inline: 38, which keeps a `FrameBytes` as small
    /// as a tagged `Bytes` (40 bytes).
    pub const INLINE: usize = 38;

    /// Copies `bytes` if they fit inline, otherwise into a new [`Bytes`].
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        match Self::inline(bytes) {
            Some(inline) => inline,
            None => Self(Held::Shared(Bytes::copy_from_slice(bytes))),
        }
    }

    /// `bytes` held inline, or `None` if they are longer than
    /// [`INLINE`](Self::INLINE).
    pub fn inline(bytes: &[u8]) -> Option<Self> {
        let len = u8::try_from(bytes.len())
            .ok()
            .filter(|&len| usize::from(len) <= Self::INLINE)?;
        let mut held = [0; Self::INLINE];
        held[..bytes.len()].copy_from_slice(bytes);
        Some(Self(Held::Inline { len, bytes: held }))
    }

    /// Whether the bytes are held inline rather than shared.
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Held::Inline { .. })
    }

    /// The bytes as a [`Bytes`]: the shared view itself, or a copy of the
    /// inline bytes.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Held::Inline { len, bytes } => Bytes::copy_from_slice(&bytes[..usize::from(len)]),
            Held::Shared(bytes) => bytes,
        }
    }
}

impl Deref for FrameBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Held::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Held::Shared(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for FrameBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Default for FrameBytes {
    fn default() -> Self {
        Self(Held::Inline {
            len: 0,
            bytes: [0; Self::INLINE],
        })
    }
}

/// Shares `bytes` as they are, whatever their length.
impl From<Bytes> for FrameBytes {
    fn from(bytes: Bytes) -> Self {
        Self(Held::Shared(bytes))
    }
}

/// Copies `bytes` ([`copy_from_slice`](Self::copy_from_slice)).
impl From<&[u8]> for FrameBytes {
    fn from(bytes: &[u8]) -> Self {
        Self::copy_from_slice(bytes)
    }
}

impl From<Vec<u8>> for FrameBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(Bytes::from(bytes))
    }
}

impl PartialEq for FrameBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for FrameBytes {}

impl PartialEq<[u8]> for FrameBytes {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialEq<Bytes> for FrameBytes {
    fn eq(&self, other: &Bytes) -> bool {
        **self == **other
    }
}

impl std::hash::Hash for FrameBytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

/// Printed as a byte string: `b"..."`, escaped as `[u8]::escape_ascii` does.
impl fmt::Debug for FrameBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bytes_are_held_inline_large_ones_shared_and_equal_either_way() {
        assert_eq!(std::mem::size_of::<FrameBytes>(), 40);
        let small = [7u8; FrameBytes::INLINE];
        let inline = FrameBytes::copy_from_slice(&small);
        assert!(inline.is_inline());
        assert_eq!(&*inline, &small[..]);
        let large = [7u8; FrameBytes::INLINE + 1];
        let copied = FrameBytes::copy_from_slice(&large);
        assert!(!copied.is_inline());
        assert_eq!(&*copied, &large[..]);
        assert!(FrameBytes::inline(&large).is_none());
        // Held differently, equal by their bytes.
        let shared = FrameBytes::from(Bytes::copy_from_slice(&small));
        assert!(!shared.is_inline());
        assert_eq!(shared, inline);
        assert_eq!(inline.clone().into_bytes(), Bytes::copy_from_slice(&small));
        assert_eq!(&*FrameBytes::default(), b"");
        assert_eq!(format!("{:?}", FrameBytes::from(&b"a\n"[..])), r#"b"a\n""#);
    }
}
