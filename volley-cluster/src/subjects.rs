//! The broker subjects of one cluster, all under `volley.<cluster>.`:
//! `node.<n>` (messages for one node), `presence` (heartbeats), `all`
//! (events for every player) and `room.<hex of the name>` (events for a
//! room; a node subscribes while it has members there). Room names are the
//! game's and may hold any character, so they travel hex-encoded; a name
//! over [`MAX_HEX_ROOM`] bytes travels as a hash of it instead, so every
//! subject stays far below the broker's limits (nats-server takes a
//! protocol line of 4 KiB, subject included). Two names that share a hash
//! share a subject, which costs only traffic: a message names its rooms and
//! each node delivers to their members alone.

use volley::PlayerId;

use crate::error::ClusterError;

/// Which node a player is connected to: the high half of its id (each node
/// counts its players up from `node << 32`).
pub(crate) fn node_of(player: PlayerId) -> u32 {
    (player.0 >> 32) as u32
}

/// Longest room name whose subject is its hex encoding: 64 bytes.
pub(crate) const MAX_HEX_ROOM: usize = 64;

/// Longest cluster name: 64 characters.
const MAX_CLUSTER_NAME: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct Subjects {
    prefix: String,
}

impl Subjects {
    /// A cluster's subjects; its name must be one subject token.
    pub(crate) fn new(cluster: &str) -> Result<Self, ClusterError> {
        let valid = !cluster.is_empty()
            && cluster.len() <= MAX_CLUSTER_NAME
            && cluster
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ClusterError::InvalidName(cluster.to_string()));
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
        use std::fmt::Write as _;
        let mut subject = format!("{}.room.", self.prefix);
        if room.len() > MAX_HEX_ROOM {
            let hash = volley::proto::stable_hash(room.as_bytes());
            let _ = write!(subject, "h{hash:016x}");
            return subject;
        }
        for byte in room.bytes() {
            let _ = write!(subject, "{byte:02x}");
        }
        if room.is_empty() {
            subject.push('_');
        }
        subject
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_subjects_stay_short_whatever_the_name() {
        let subjects = Subjects::new(&"c".repeat(MAX_CLUSTER_NAME)).unwrap();
        assert!(Subjects::new(&"c".repeat(MAX_CLUSTER_NAME + 1)).is_err());
        let short = subjects.room("lobby");
        assert!(short.ends_with(".room.6c6f626279"), "{short}");
        let longest = subjects.room(&"é".repeat(MAX_HEX_ROOM / 2));
        let long = "x".repeat(100_000);
        let hashed = subjects.room(&long);
        assert!(longest.len() <= 256 && hashed.len() <= 256, "{longest} {hashed}");
        assert_ne!(hashed, subjects.room(&"x".repeat(99_999)));
        assert_ne!(hashed, subjects.room(&format!("{long}y")));
        assert_eq!(hashed, subjects.room(&long));
    }
}
