//! Who is connected: players by id, in the order they joined, and by the
//! identity their authenticator gave them.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;

use super::Player;
use crate::peer::PlayerId;

/// The players of a server, behind its lock.
#[derive(Default)]
pub(super) struct Directory {
    by_id: BTreeMap<PlayerId, Player>,
    /// Ids by identity, oldest first: one account may be connected twice.
    by_identity: FxHashMap<Box<str>, Vec<PlayerId>>,
    /// Every player, as one shared list: made on first use after a change,
    /// so that broadcasts to everyone clone one `Arc`, not every player.
    snapshot: OnceLock<Arc<[Player]>>,
}

impl Directory {
    pub(super) fn insert(&mut self, player: &Player) {
        self.snapshot = OnceLock::new();
        self.by_id.insert(player.id(), player.clone());
        if let Some(identity) = player.identity() {
            self.by_identity.entry(identity.into()).or_default().push(player.id());
        }
    }

    pub(super) fn remove(&mut self, player: &Player) {
        self.snapshot = OnceLock::new();
        self.by_id.remove(&player.id());
        if let Some(identity) = player.identity() {
            if let Some(ids) = self.by_identity.get_mut(identity) {
                ids.retain(|id| *id != player.id());
                if ids.is_empty() {
                    self.by_identity.remove(identity);
                }
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn get(&self, id: PlayerId) -> Option<&Player> {
        self.by_id.get(&id)
    }

    /// Every player, in the order they joined (ids grow).
    pub(super) fn all(&self) -> impl Iterator<Item = &Player> {
        self.by_id.values()
    }

    /// Every player, in the order they joined, as one shared list.
    pub(super) fn snapshot(&self) -> Arc<[Player]> {
        self.snapshot
            .get_or_init(|| self.by_id.values().cloned().collect())
            .clone()
    }

    /// The player most recently joined with this identity.
    pub(super) fn by_identity(&self, identity: &str) -> Option<&Player> {
        let id = self.by_identity.get(identity)?.last()?;
        self.by_id.get(id)
    }
}
