//! What an adapter hands to this server: operations other processes asked of
//! its players, with payloads they already encoded. The payload format is
//! postcard, as everywhere in volley (`PROTOCOL.md`); a remote is named by
//! its declared name, and must be a client-bound event or function of this
//! server's protocol.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use volley_proto::{Direction, RemoteId, RemoteKind};

use super::adapter::{PlayerError, Target};
use super::{Answers, Player, Recipients, Server, ServerInner};
use crate::broadcast::Broadcast;
use crate::error::{EventError, FunctionError};

/// This server, as its [`Adapter`](super::adapter::Adapter) reaches it: only
/// its own players, never the adapter again. Holds the server weakly (the
/// server holds its adapter): once the server is dropped, every operation
/// finds nobody.
#[derive(Clone)]
pub struct Relay {
    server: Weak<ServerInner>,
}

impl Relay {
    pub(super) fn new(server: &Server) -> Self {
        Self {
            server: Arc::downgrade(&server.inner),
        }
    }

    fn server(&self) -> Option<Server> {
        self.server.upgrade().map(|inner| Server { inner })
    }

    /// Whether the server still exists.
    pub fn is_alive(&self) -> bool {
        self.server.strong_count() > 0
    }

    /// The hash of the server's protocol ([`Protocol::hash`](crate::Protocol::hash)):
    /// processes that relay to each other must agree on it.
    pub fn protocol_hash(&self) -> u64 {
        self.server().map_or(0, |server| server.protocol().hash())
    }

    /// How many players are connected to this server.
    pub fn player_count(&self) -> usize {
        self.server().map_or(0, |server| server.player_count())
    }

    /// How many of this server's players are in `room`.
    pub fn room_size(&self, room: &str) -> usize {
        self.server().map_or(0, |server| server.inner.rooms.member_count(room))
    }

    /// Fires the client-bound event `remote` (its declared name), encoded
    /// elsewhere, at this server's players of `target`, through outgoing
    /// middleware; each client checks it as any event.
    pub fn fire(&self, target: &Target, remote: &str, payload: &[u8]) -> Result<Broadcast, EventError> {
        let server = self.server().ok_or(EventError::Disconnected)?;
        let (id, name) = server.relayed_event(remote)?;
        Ok(Recipients::here(server, target).fire_here(id, name, payload))
    }

    /// Calls the client-bound function `remote` (its declared name) on this
    /// server's players of `target`, with a request encoded elsewhere; the
    /// answers stay encoded, for the asker to decode. Dropping them cancels
    /// the calls at each player.
    pub fn invoke(&self, target: &Target, remote: &str, payload: &[u8], timeout: Duration) -> Answers<Bytes> {
        let Some(server) = self.server() else {
            return Answers::encoded(Arc::from([]), "<gone>", timeout);
        };
        let here = Recipients::here(server.clone(), target);
        let relayed = server.relayed_function(remote);
        let name = relayed.as_ref().map_or("<unknown>", |(_, name)| name);
        let (players, missing) = here.resolve();
        let answers = Answers::encoded(players.clone(), name, timeout);
        let encoded = relayed.map(|(id, _)| (id, payload.to_vec()));
        here.start_calls(answers, &players, missing, encoded, name, timeout)
    }

    /// This server's players of `target`.
    pub fn members(&self, target: &Target) -> Vec<crate::PlayerId> {
        let Some(server) = self.server() else {
            return Vec::new();
        };
        Recipients::here(server, target)
            .players()
            .iter()
            .map(Player::id)
            .collect()
    }

    /// Puts this server's player `id` in `room`: whether it joined now.
    pub fn join(&self, id: crate::PlayerId, room: &str) -> Result<bool, PlayerError> {
        Ok(self.player(id)?.join(room))
    }

    /// Takes this server's player `id` out of `room`: whether it was in it.
    pub fn leave(&self, id: crate::PlayerId, room: &str) -> Result<bool, PlayerError> {
        Ok(self.player(id)?.leave(room))
    }

    /// Disconnects this server's player `id`, telling it `reason`.
    pub fn kick(&self, id: crate::PlayerId, reason: &str) -> Result<(), PlayerError> {
        self.player(id)?.kick(reason);
        Ok(())
    }

    /// This server's player with this identity, the last to join if several.
    pub fn find_identity(&self, identity: &str) -> Option<crate::PlayerId> {
        self.server()?.player_by_identity(identity).map(|p| p.id())
    }

    fn player(&self, id: crate::PlayerId) -> Result<Player, PlayerError> {
        self.server()
            .and_then(|server| server.player(id))
            .ok_or(PlayerError::NotConnected)
    }
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay").field("alive", &self.is_alive()).finish()
    }
}

impl Server {
    /// The wire id and declared name of the client-bound event `remote`.
    fn relayed_event(&self, remote: &str) -> Result<(RemoteId, &'static str), EventError> {
        self.relayed(remote, false).map_err(EventError::Encode)
    }

    /// The wire id and declared name of the client-bound function `remote`.
    fn relayed_function(&self, remote: &str) -> Result<(RemoteId, &'static str), FunctionError> {
        self.relayed(remote, true).map_err(|reason| {
            tracing::warn!(remote, %reason, "relayed call refused");
            FunctionError::Unprocessed
        })
    }

    fn relayed(&self, remote: &str, function: bool) -> Result<(RemoteId, &'static str), String> {
        let table = self.inner.endpoint.protocol.table();
        let spec = table.id(remote).and_then(|id| Some((id, table.spec(id)?)));
        let Some((id, spec)) = spec else {
            return Err(format!("remote {remote:?} is not declared in this server's protocol"));
        };
        let is_function = spec.kind == RemoteKind::Function;
        if spec.direction != Direction::ToClient || is_function != function {
            let wanted = if function { "function" } else { "event" };
            return Err(format!("remote {remote:?} is not a client-bound {wanted}"));
        }
        Ok((id, spec.name))
    }

    /// Queues an encoded event for each player, through outgoing middleware.
    pub(super) fn fire_many_encoded<'p>(
        &self,
        players: impl IntoIterator<Item = &'p Player>,
        id: RemoteId,
        name: &'static str,
        payload: &[u8],
    ) -> Broadcast {
        let mut outcome = Broadcast::default();
        for player in players {
            match self.fire_one_encoded(player, id, name, payload) {
                Ok(()) => outcome.sent += 1,
                Err(error) => outcome.skipped.push((player.id(), error)),
            }
        }
        outcome
    }

    /// Queues an encoded event for one player, through outgoing middleware.
    pub(super) fn fire_one_encoded(
        &self,
        player: &Player,
        id: RemoteId,
        name: &'static str,
        payload: &[u8],
    ) -> Result<(), EventError> {
        match self.inner.endpoint.chains.admit_outgoing(player, name, payload.len()) {
            Ok(()) => player.inner.conn.send_event(id, payload),
            Err(_) => Err(EventError::Refused),
        }
    }
}
