//! Rooms: named groups of players on this server (a match, a lobby, a team).
//!
//! A room exists while it has members: joining creates it, the last leave
//! removes it, so an empty room costs nothing and needs no registration. Each
//! player also lists its own rooms, so that leaving the server leaves them all
//! without a search. Both sides change under the rooms' lock, which makes a
//! join racing with the player's departure either land before it (and be
//! undone by it) or find the player gone.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rustc_hash::FxHashMap;

use super::Player;
use crate::locks::{lock, read, write};
use crate::peer::PlayerId;

/// Every room of a server with members.
#[derive(Default)]
pub(super) struct Rooms {
    by_name: RwLock<FxHashMap<Arc<str>, Room>>,
}

/// One room's members.
#[derive(Default)]
struct Room {
    members: BTreeMap<PlayerId, Player>,
    /// The members as one shared list, made on first use after a change: a
    /// broadcast clones one `Arc`, not every member, and holds no lock while
    /// it sends (outgoing middleware, which is user code, may join rooms).
    snapshot: OnceLock<Arc<[Player]>>,
}

impl Room {
    fn insert(&mut self, player: &Player) {
        self.snapshot = OnceLock::new();
        self.members.insert(player.id(), player.clone());
    }

    fn snapshot(&self) -> Arc<[Player]> {
        self.snapshot
            .get_or_init(|| self.members.values().cloned().collect())
            .clone()
    }
}

/// The rooms one player is in, kept with the player.
#[derive(Default)]
pub(super) struct PlayerRooms(Mutex<Membership>);

#[derive(Default)]
struct Membership {
    names: Vec<Arc<str>>,
    /// The player left the server: it joins nothing more.
    left: bool,
}

impl PlayerRooms {
    pub(super) fn names(&self) -> Vec<String> {
        lock(&self.0).names.iter().map(|name| name.to_string()).collect()
    }

    pub(super) fn contains(&self, room: &str) -> bool {
        lock(&self.0).names.iter().any(|name| &**name == room)
    }
}

impl Rooms {
    /// Puts `player` in `room`; whether it joined now (not when it was in it
    /// already, or has left the server).
    pub(super) fn join(&self, player: &Player, room: &str) -> bool {
        let mut rooms = write(&self.by_name);
        let mut membership = lock(&player.inner.rooms.0);
        if membership.left || membership.names.iter().any(|name| &**name == room) {
            return false;
        }
        let name = shared_name(&rooms, room);
        membership.names.push(name.clone());
        rooms.entry(name).or_default().insert(player);
        true
    }

    /// Takes `player` out of `room`; whether it was in it.
    pub(super) fn leave(&self, player: &Player, room: &str) -> bool {
        let mut rooms = write(&self.by_name);
        let mut membership = lock(&player.inner.rooms.0);
        let Some(at) = membership.names.iter().position(|name| &**name == room) else {
            return false;
        };
        membership.names.swap_remove(at);
        remove_member(&mut rooms, room, player.id());
        true
    }

    /// Moves up to `at_most` members of `from` (the first to have joined
    /// the server) to `to`, in one step under the lock: two callers moving
    /// from one room never take the same player. A member of both leaves
    /// `from` and stays in `to`. Returns the players moved, and for each
    /// whether it joined `to` now.
    pub(super) fn move_members(&self, from: &str, to: &str, at_most: usize) -> Vec<(Player, bool)> {
        let mut rooms = write(&self.by_name);
        let Some(source) = rooms.get(from).filter(|_| from != to) else {
            return Vec::new();
        };
        let taken: Vec<Player> = source.members.values().take(at_most).cloned().collect();
        let to_name = shared_name(&rooms, to);
        let mut moved = Vec::with_capacity(taken.len());
        for player in taken {
            let mut membership = lock(&player.inner.rooms.0);
            if let Some(at) = membership.names.iter().position(|name| &**name == from) {
                membership.names.swap_remove(at);
            }
            remove_member(&mut rooms, from, player.id());
            let joined = !membership.names.iter().any(|name| &**name == to);
            if joined {
                membership.names.push(to_name.clone());
                rooms.entry(to_name.clone()).or_default().insert(&player);
            }
            drop(membership);
            moved.push((player, joined));
        }
        moved
    }

    /// Takes a departing player out of every room; returns them.
    pub(super) fn leave_all(&self, player: &Player) -> Vec<Arc<str>> {
        let mut rooms = write(&self.by_name);
        let mut membership = lock(&player.inner.rooms.0);
        membership.left = true;
        let names = std::mem::take(&mut membership.names);
        for name in &names {
            remove_member(&mut rooms, name, player.id());
        }
        names
    }

    /// The members of `room`, in the order they joined the server.
    pub(super) fn members(&self, room: &str) -> Arc<[Player]> {
        read(&self.by_name)
            .get(room)
            .map_or_else(|| Arc::new([]), Room::snapshot)
    }

    /// The members of any of `rooms`, each once, in the order they joined the
    /// server.
    pub(super) fn members_of_any(&self, rooms: &[String]) -> Arc<[Player]> {
        if let [room] = rooms {
            return self.members(room);
        }
        let by_name = read(&self.by_name);
        let mut union: BTreeMap<PlayerId, &Player> = BTreeMap::new();
        for room in rooms.iter().filter_map(|r| by_name.get(r.as_str())) {
            union.extend(room.members.iter().map(|(id, p)| (*id, p)));
        }
        union.into_values().cloned().collect()
    }

    pub(super) fn member_count(&self, room: &str) -> usize {
        read(&self.by_name).get(room).map_or(0, |r| r.members.len())
    }

    /// The rooms that have members, by name.
    pub(super) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = read(&self.by_name).keys().map(|name| name.to_string()).collect();
        names.sort_unstable();
        names
    }
}

/// The room's name as the table holds it (one allocation per room, shared
/// by every member's list), or a new one for a room not made yet.
fn shared_name(rooms: &FxHashMap<Arc<str>, Room>, room: &str) -> Arc<str> {
    match rooms.get_key_value(room) {
        Some((name, _)) => name.clone(),
        None => room.into(),
    }
}

/// Takes `id` out of `room`, and the room away once it is empty.
fn remove_member(rooms: &mut FxHashMap<Arc<str>, Room>, room: &str, id: PlayerId) {
    if let Some(members) = rooms.get_mut(room) {
        members.snapshot = OnceLock::new();
        members.members.remove(&id);
        if members.members.is_empty() {
            rooms.remove(room);
        }
    }
}
