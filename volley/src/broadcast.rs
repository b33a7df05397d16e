//! What firing an event at many players did.

use crate::error::EventError;
use crate::peer::PlayerId;

/// The outcome of an event fired at many players (`fire_to`, `fire_all`,
/// `fire_except`): how many it was queued for, and who was skipped and why
/// (disconnected, refused by outgoing middleware, dropped as an unreliable
/// event on a backed-up connection, too large).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Broadcast {
    /// Players the event was queued for.
    pub sent: usize,
    /// Players it was not queued for, with why.
    pub skipped: Vec<(PlayerId, EventError)>,
    /// On a cluster: the other nodes it was passed to, each of which
    /// queues it for its own players (what they skip, they log). 0 on one
    /// server.
    pub other_nodes: usize,
}

impl Broadcast {
    /// Whether every player it was fired at (here, and those of other
    /// nodes known to be gone) got it.
    pub fn reached_all(&self) -> bool {
        self.skipped.is_empty()
    }
}
