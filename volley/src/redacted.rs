//! Secrets in `Debug` output: their length only.

use std::fmt;

/// Shows a secret of this many bytes as `<N bytes, redacted>`.
pub(crate) struct Redacted(pub(crate) usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes, redacted>", self.0)
    }
}
