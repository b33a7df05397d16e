//! Who an event or a call goes to when it goes to many players: everyone,
//! rooms, a list; minus some.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Answers, Player, Players, Server};
use crate::broadcast::Broadcast;
use crate::error::{EventError, FunctionError};
use crate::locks::read;
use crate::peer::PlayerId;
use crate::remote::{ClientEvent, ClientFn, Payload};
use volley_proto::RemoteId;

/// A group of players to fire at or to invoke, from [`Server::to_all`],
/// [`Server::to_room`], [`Server::to_rooms`], [`Server::to_players`] or
/// [`Server::to_ids`], narrowed with [`except`](Self::except). Who is in it is
/// decided when it is used, not when it is built.
///
/// ```no_run
/// # use volley::*;
/// # const CHAT: ClientEvent<String> = ClientEvent::new("Chat");
/// # const VOTE: ClientFn<String, bool> = ClientFn::new("Vote");
/// # async fn example(server: Server, sender: Player) {
/// // The chat line goes to everyone in the match but its sender.
/// let sent = server.to_room("match:42").except(&sender).fire(CHAT, "gg".into()).unwrap();
/// println!("reached {}, skipped {:?}", sent.sent, sent.skipped);
///
/// // Ask the whole match; print each answer as it comes.
/// let mut answers = server.to_room("match:42").invoke(VOTE, "rematch?".into());
/// while let Some((player, answer)) = answers.next().await {
///     println!("{player}: {answer:?}");
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Recipients {
    server: Server,
    group: Group,
    except: Vec<PlayerId>,
}

#[derive(Clone)]
enum Group {
    All,
    Rooms(Vec<String>),
    Players(Arc<[Player]>),
    Ids(Vec<PlayerId>),
}

impl Recipients {
    pub(super) fn all(server: Server) -> Self {
        Self::new(server, Group::All)
    }

    pub(super) fn rooms(server: Server, rooms: Vec<String>) -> Self {
        Self::new(server, Group::Rooms(rooms))
    }

    pub(super) fn listed(server: Server, players: Vec<Player>) -> Self {
        Self::new(server, Group::Players(players.into()))
    }

    pub(super) fn ids(server: Server, ids: Vec<PlayerId>) -> Self {
        Self::new(server, Group::Ids(ids))
    }

    fn new(server: Server, group: Group) -> Self {
        Self {
            server,
            group,
            except: Vec::new(),
        }
    }

    /// Leaves `players` out (the sender of a chat line, say).
    pub fn except(mut self, players: impl Players) -> Self {
        self.except.extend(players.to_vec().iter().map(Player::id));
        self
    }

    /// Leaves the player `id` out.
    pub fn except_id(mut self, id: PlayerId) -> Self {
        self.except.push(id);
        self
    }

    /// Leaves the players `ids` out.
    pub fn except_ids(mut self, ids: impl IntoIterator<Item = PlayerId>) -> Self {
        self.except.extend(ids);
        self
    }

    /// Who is in the group now: the players connected (a shared list: a
    /// room's or everyone's is not copied), and the ids asked for by
    /// [`Server::to_ids`] that are not connected. `except` is not applied
    /// yet: see [`included`](Self::included).
    fn resolve(&self) -> (Arc<[Player]>, Vec<PlayerId>) {
        let inner = &self.server.inner;
        match &self.group {
            Group::All => (self.server.all_players(), Vec::new()),
            Group::Rooms(rooms) => (inner.rooms.members_of_any(rooms), Vec::new()),
            Group::Players(players) => (players.clone(), Vec::new()),
            Group::Ids(ids) => {
                let directory = read(&inner.players);
                let mut found = Vec::with_capacity(ids.len());
                let mut missing = Vec::new();
                for &id in ids {
                    match directory.get(id) {
                        Some(player) => found.push(player.clone()),
                        None if !self.except.contains(&id) => missing.push(id),
                        None => {}
                    }
                }
                (found.into(), missing)
            }
        }
    }

    /// Whether the player `id` is not left out by [`except`](Self::except).
    fn included(&self, id: PlayerId) -> bool {
        !self.except.contains(&id)
    }

    /// The players in the group now.
    pub fn players(&self) -> Vec<Player> {
        let (players, _) = self.resolve();
        players.iter().filter(|p| self.included(p.id())).cloned().collect()
    }

    /// Fires `remote` at each player in the group. The payload is encoded
    /// once; the result says how many it was queued for and who was skipped,
    /// and why. Fails only if the value cannot be encoded.
    pub fn fire<T: Payload>(&self, remote: ClientEvent<T>, value: T) -> Result<Broadcast, EventError> {
        let (players, missing) = self.resolve();
        let included = players.iter().filter(|p| self.included(p.id()));
        let mut outcome = self.server.fire_many(included, remote, &value)?;
        outcome
            .skipped
            .extend(missing.into_iter().map(|id| (id, EventError::Disconnected)));
        Ok(outcome)
    }

    /// Calls `remote` on every player in the group at once, with the
    /// remote's timeout (or the configured default) as the one deadline for
    /// all; see [`Answers`].
    pub fn invoke<Req: Payload, Resp: Payload>(&self, remote: ClientFn<Req, Resp>, req: Req) -> Answers<Resp> {
        let timeout = remote.timeout.unwrap_or(self.server.inner.config.default_timeout);
        self.invoke_with_timeout(remote, req, timeout)
    }

    /// Calls `remote` on every player in the group at once, with this
    /// deadline for all: see [`Answers`]. The request is encoded once. Must
    /// be called within a Tokio runtime (the deadline is a Tokio timer).
    pub fn invoke_with_timeout<Req: Payload, Resp: Payload>(
        &self,
        remote: ClientFn<Req, Resp>,
        req: Req,
        timeout: Duration,
    ) -> Answers<Resp> {
        let (players, missing) = self.resolve();
        let endpoint = &self.server.inner.endpoint;
        let checks = endpoint.protocol.response_checks(&remote);
        let answers = Answers::typed(self.server.clone(), players.clone(), remote.name, checks, timeout);
        let encoded = endpoint
            .function_id(&remote)
            .and_then(|id| Ok((id, endpoint.encode_request(remote.name, &req)?)));
        self.start_calls(answers, &players, missing, encoded, remote.name, timeout)
    }

    /// Fires an event whose payload another process already encoded (a
    /// relay's path: see [`Player::fire_encoded`]).
    pub fn fire_encoded(&self, remote: &str, payload: &[u8]) -> Result<Broadcast, EventError> {
        let (id, name) = self.server.relayed_event(remote)?;
        let (players, missing) = self.resolve();
        let included = players.iter().filter(|p| self.included(p.id()));
        let mut outcome = self.server.fire_many_encoded(included, id, name, payload);
        outcome
            .skipped
            .extend(missing.into_iter().map(|id| (id, EventError::Disconnected)));
        Ok(outcome)
    }

    /// Calls a function with a request another process already encoded, and
    /// leaves the answers encoded (a relay's path: see
    /// [`Player::invoke_encoded`]).
    pub fn invoke_encoded(&self, remote: &str, payload: &[u8], timeout: Duration) -> Answers<bytes::Bytes> {
        let (players, missing) = self.resolve();
        let relayed = self.server.relayed_function(remote);
        let name = relayed.as_ref().map_or("<unknown>", |(_, name)| name);
        let answers = Answers::encoded(players.clone(), name, timeout);
        let encoded = relayed.map(|(id, _)| (id, payload.to_vec()));
        self.start_calls(answers, &players, missing, encoded, name, timeout)
    }

    /// Sends the encoded request to each included player, into `answers`.
    fn start_calls<Resp>(
        &self,
        mut answers: Answers<Resp>,
        players: &[Player],
        missing: Vec<PlayerId>,
        encoded: Result<(RemoteId, Vec<u8>), FunctionError>,
        name: &'static str,
        timeout: Duration,
    ) -> Answers<Resp> {
        for id in missing {
            answers.push_ready(id, Err(FunctionError::Disconnected));
        }
        let included = players.iter().enumerate().filter(|(_, p)| self.included(p.id()));
        let (id, payload) = match encoded {
            Ok(encoded) => encoded,
            Err(error) => {
                for (_, player) in included {
                    answers.push_ready(player.id(), Err(error.clone()));
                }
                return answers;
            }
        };
        let endpoint = &self.server.inner.endpoint;
        for (index, player) in included {
            let conn = player.inner.conn.clone();
            match endpoint.send_call(conn, player, id, name, &payload, timeout) {
                Ok(call) => answers.push_call(index, call),
                Err(error) => answers.push_ready(player.id(), Err(error)),
            }
        }
        crate::payload::recycle(payload);
        answers
    }
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = match &self.group {
            Group::All => "all".to_string(),
            Group::Rooms(rooms) => format!("rooms {rooms:?}"),
            Group::Players(players) => format!("{} players", players.len()),
            Group::Ids(ids) => format!("{} ids", ids.len()),
        };
        f.debug_struct("Recipients")
            .field("group", &group)
            .field("except", &self.except)
            .finish()
    }
}
