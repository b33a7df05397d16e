//! Refusals, departures and the latest incidents, counted for the figures
//! and the inspector.

use super::*;

#[derive(Default)]
pub(super) struct Tallies {
    pub(super) refused: BTreeMap<String, u64>,
    pub(super) disconnects: BTreeMap<String, u64>,
    pub(super) recent: std::collections::VecDeque<Incident>,
    /// The inspector's traffic history.
    #[cfg(feature = "inspector")]
    pub(super) history: std::collections::VecDeque<inspector::TrafficPoint>,
}

/// Incidents kept for the inspector.
const RECENT_INCIDENTS: usize = 50;

impl Tallies {
    pub(super) fn incident(
        &mut self,
        started: std::time::Instant,
        kind: &'static str,
        player: Option<PlayerId>,
        detail: String,
    ) {
        if self.recent.len() == RECENT_INCIDENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(Incident {
            at_ms: started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
            kind: kind.to_string(),
            player: player.map(|p| p.0),
            detail,
        });
    }
}

/// A refusal or a piece of bad input, as the inspector lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Incident {
    /// When, in milliseconds since the server was made.
    pub at_ms: u64,
    /// `refused`, `bad_request` or `bad_response`.
    pub kind: String,
    /// The player, for bad input.
    pub player: Option<u64>,
    /// The reason.
    pub detail: String,
}
