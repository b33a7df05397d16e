//! When round-trip times are read into the ECS, on either side.

use std::time::Duration;

use tokio::time::Instant;

/// How often round-trip times are read (players' [`Rtt`](crate::Rtt), a client's
/// [`ServerRtt`](crate::ServerRtt)): volley measures them once per
/// keep-alive (10 s by default), and reading one takes its connection's
/// lock, which every frame for every player would not be worth.
const RTT_REFRESH: Duration = Duration::from_secs(1);

/// Whether round-trip times are to be read this frame (`anyway`, or
/// [`RTT_REFRESH`] since `last`); notes the time if so.
pub(crate) fn rtt_due(last: &mut Option<Instant>, anyway: bool) -> bool {
    // Tokio's clock: a stepped app's (paused) one, else the system's.
    let now = Instant::now();
    if !anyway && last.is_some_and(|at| now - at < RTT_REFRESH) {
        return false;
    }
    *last = Some(now);
    true
}
