//! The broker subjects of one cluster, all under `volley.<cluster>.`:
//! `node.<n>` (messages for one node), `presence` (heartbeats), `all`
//! (events for every player) and `room.<hex of the name>` (events for a
//! room; a node subscribes while it has members there). Room names are the
//! game's and may hold any character, so they travel hex-encoded.

use volley::PlayerId;

use crate::error::ClusterError;

/// Which node a player is connected to: the high half of its id (each node
/// counts its players up from `node << 32`).
pub(crate) fn node_of(player: PlayerId) -> u32 {
    (player.0 >> 32) as u32
}

#[derive(Debug, Clone)]
pub(crate) struct Subjects {
    prefix: String,
}

impl Subjects {
    /// A cluster's subjects; its name must be one subject token.
    pub(crate) fn new(cluster: &str) -> Result<Self, ClusterError> {
        let valid = !cluster.is_empty()
            && cluster
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ClusterError::Broker(format!(
                "cluster name {cluster:?}: use letters, digits, '-' and '_'"
            )));
        }
        Ok(Self {
            prefix: format!("volley.{cluster}"),
        })
    }

    pub(crate) fn node(&self, node: u32) -> String {
        format!("{}.node.{node}", self.prefix)
    }

    pub(crate) fn presence(&self) -> String {
        format!("{}.presence", self.prefix)
    }

    pub(crate) fn all(&self) -> String {
        format!("{}.all", self.prefix)
    }

    pub(crate) fn room(&self, room: &str) -> String {
        let mut subject = format!("{}.room.", self.prefix);
        for byte in room.bytes() {
            subject.push_str(&format!("{byte:02x}"));
        }
        if room.is_empty() {
            subject.push('_');
        }
        subject
    }
}
