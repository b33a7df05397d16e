//! Rooms and groups, as the game uses them: who is in which room, and the
//! groups (`to_room`, `to_all`, ...) that events and calls go to.

use super::adapter::{Census, PlayerError};
use super::*;

impl Server {
    /// Puts the player `id` in `room`, creating the room if it has no
    /// members yet; room names are the game's own (`"match:42"`). `Ok(true)`
    /// if it joined now, `Ok(false)` if it was a member already; runs the
    /// [`on_room_joined`](Self::on_room_joined) hooks (on the player's own
    /// server). On a cluster the player may be on any node; this returns
    /// once a fire at the room from any node reaches it.
    ///
    /// # Errors
    ///
    /// [`PlayerError::NotConnected`] if no player `id` is connected;
    /// [`PlayerError::Unreachable`] if it is on a node the cluster cannot
    /// reach now.
    pub async fn join(&self, id: PlayerId, room: &str) -> Result<bool, PlayerError> {
        let adapter = &self.inner.adapter;
        if !adapter.is_local(id) {
            return adapter.join(id, room).await;
        }
        let player = self.player(id).ok_or(PlayerError::NotConnected)?;
        let joined = player.join(room);
        adapter.room_ready(room).await;
        Ok(joined)
    }

    /// Takes the player `id` out of `room`: `Ok(true)` if it was a member.
    /// A room with no members left is gone. Runs the
    /// [`on_room_left`](Self::on_room_left) hooks. Errors as [`join`](Self::join).
    pub async fn leave(&self, id: PlayerId, room: &str) -> Result<bool, PlayerError> {
        let adapter = &self.inner.adapter;
        if !adapter.is_local(id) {
            return adapter.leave(id, room).await;
        }
        Ok(self.player(id).ok_or(PlayerError::NotConnected)?.leave(room))
    }

    /// Disconnects the player `id` wherever it is connected, telling it
    /// `reason` (see [`Player::kick`]). Errors as [`join`](Self::join).
    pub async fn kick(&self, id: PlayerId, reason: &str) -> Result<(), PlayerError> {
        let adapter = &self.inner.adapter;
        if !adapter.is_local(id) {
            return adapter.kick(id, reason).await;
        }
        self.player(id).ok_or(PlayerError::NotConnected)?.kick(reason);
        Ok(())
    }

    /// The player the authenticator gave this identity, wherever it is
    /// connected ([`player_by_identity`](Self::player_by_identity) looks on
    /// this server only, and gives the handle). This server's is preferred;
    /// among several elsewhere, the adapter's choice.
    pub async fn find_identity(&self, identity: &str) -> Result<Option<PlayerId>, PlayerError> {
        if let Some(player) = self.player_by_identity(identity) {
            return Ok(Some(player.id()));
        }
        self.inner.adapter.find_identity(identity).await
    }

    /// The members of `room`, on every node of a cluster (this server's
    /// with their handles: [`local_room_members`](Self::local_room_members)).
    pub async fn room_members(&self, room: &str) -> Census {
        self.to_room(room).members().await
    }

    /// How many players are in `room`, on every node of a cluster (nodes
    /// that do not answer in time count none: see
    /// [`room_members`](Self::room_members)).
    pub async fn room_size(&self, room: &str) -> usize {
        self.room_members(room).await.len()
    }

    /// The members of `room` connected to this server, in the order they
    /// joined it; empty for a room nobody here is in.
    pub fn local_room_members(&self, room: &str) -> Vec<Player> {
        self.inner.rooms.members(room).to_vec()
    }

    /// The rooms that have members on this server, sorted by name.
    pub fn rooms(&self) -> Vec<String> {
        self.inner.rooms.names()
    }

    /// The rooms the player `id` of this server is in (empty if it is not
    /// connected here).
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

    /// Moves up to `at_most` of this server's members of `from` into `to` in
    /// one step, the
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

    /// Every connected player (of every node, on a cluster), to fire at or
    /// invoke: see [`Recipients`]. Its [`members`](Recipients::members)
    /// count every player.
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

    /// The players with these ids (on any node, on a cluster); an id not
    /// connected is reported as disconnected. See [`Recipients`].
    pub fn to_ids(&self, ids: impl IntoIterator<Item = PlayerId>) -> Recipients {
        Recipients::ids(self.clone(), ids.into_iter().collect())
    }
}
