//! Rooms and groups, as the game uses them: who is in which room, and the
//! groups (`to_room`, `to_all`, ...) that events and calls go to.

use super::*;

impl Server {
    /// Puts the player `id` in `room`, creating the room if it has no
    /// members yet; room names are the game's own (`"match:42"`). Returns
    /// whether it joined now: `false` if it was in the room already or is not
    /// connected. Runs the [`on_room_joined`](Self::on_room_joined) hooks.
    pub fn join(&self, id: PlayerId, room: &str) -> bool {
        self.player(id).is_some_and(|player| player.join(room))
    }

    /// Takes the player `id` out of `room`; whether it was in it. A room
    /// with no members left is gone. Runs the
    /// [`on_room_left`](Self::on_room_left) hooks.
    pub fn leave(&self, id: PlayerId, room: &str) -> bool {
        self.player(id).is_some_and(|player| player.leave(room))
    }

    /// The members of `room`, in the order they joined the server; empty
    /// for a room nobody is in.
    pub fn room_members(&self, room: &str) -> Vec<Player> {
        self.inner.rooms.members(room).to_vec()
    }

    /// How many players are in `room`.
    pub fn room_size(&self, room: &str) -> usize {
        self.inner.rooms.member_count(room)
    }

    /// The rooms that have members, sorted by name.
    pub fn rooms(&self) -> Vec<String> {
        self.inner.rooms.names()
    }

    /// The rooms the player `id` is in (empty if it is not connected).
    pub fn rooms_of(&self, id: PlayerId) -> Vec<String> {
        self.player(id).map(|player| player.rooms()).unwrap_or_default()
    }

    /// Calls `hook` each time a player joins a room.
    pub fn on_room_joined(&self, hook: impl Fn(&Player, &str) + Send + Sync + 'static) {
        write(&self.inner.room_joined).push(Arc::new(hook));
    }

    /// Calls `hook` each time a player leaves a room, including every room
    /// of a player leaving the server (before
    /// [`on_player_removed`](Self::on_player_removed)).
    pub fn on_room_left(&self, hook: impl Fn(&Player, &str) + Send + Sync + 'static) {
        write(&self.inner.room_left).push(Arc::new(hook));
    }

    /// Moves up to `at_most` members of `from` into `to` in one step, the
    /// first to have joined the server first (matchmaking: take two players
    /// from the queue into a match). Two tasks moving from the same room at
    /// once never take the same player; no lock of the game's own is needed.
    /// A member of both leaves `from` and stays in `to`. Returns the players
    /// moved; runs the [`on_room_left`](Self::on_room_left) and
    /// [`on_room_joined`](Self::on_room_joined) hooks for each.
    pub fn move_members(&self, from: &str, to: &str, at_most: usize) -> Vec<Player> {
        let inner = &self.inner;
        let moved = inner.rooms.move_members(from, to, at_most);
        for (player, joined) in &moved {
            inner.room_changed(&inner.room_left, player, from);
            if *joined {
                inner.room_changed(&inner.room_joined, player, to);
            }
        }
        moved.into_iter().map(|(player, _)| player).collect()
    }

    // ---- many players at once ----

    /// Every connected player, to fire at or invoke: see [`Recipients`].
    pub fn to_all(&self) -> Recipients {
        Recipients::all(self.clone())
    }

    /// The members of `room`: see [`Recipients`].
    pub fn to_room(&self, room: &str) -> Recipients {
        Recipients::rooms(self.clone(), vec![room.to_string()])
    }

    /// The members of any of `rooms`, each once: see [`Recipients`].
    pub fn to_rooms<R: AsRef<str>>(&self, rooms: impl IntoIterator<Item = R>) -> Recipients {
        Recipients::rooms(
            self.clone(),
            rooms.into_iter().map(|r| r.as_ref().to_string()).collect(),
        )
    }

    /// These players: see [`Recipients`].
    pub fn to_players(&self, players: impl Players) -> Recipients {
        Recipients::listed(self.clone(), players.to_vec())
    }

    /// The players with these ids; an id not connected is reported as
    /// disconnected. See [`Recipients`].
    pub fn to_ids(&self, ids: impl IntoIterator<Item = PlayerId>) -> Recipients {
        Recipients::ids(self.clone(), ids.into_iter().collect())
    }
}
