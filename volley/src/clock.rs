//! The clock every connection is driven by.

use std::time::Instant;

/// The clock every session of this process is driven by: tokio's, so tests
/// with paused time control volley's timeouts too.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
