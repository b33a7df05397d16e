//! Who an event or a call goes to when it goes to many players: everyone,
//! rooms, a list; minus some.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::adapter::{Census, Group as TargetGroup, Relayed, Target};
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
/// decided when it is used, not when it is built. On a server built with a
/// cluster adapter ([`Server::with_adapter`]), a group spans every node: the
/// same code reaches one process or many.
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
    /// Only this server's players, never the adapter: what the adapter's
    /// [`Relay`](super::relay::Relay) asks for other processes.
    here_only: bool,
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

    /// This server's players of `target`, for the adapter's relay.
    pub(super) fn here(server: Server, target: &Target) -> Self {
        let group = match &target.group {
            TargetGroup::Rooms(rooms) => Group::Rooms(rooms.clone()),
            TargetGroup::Ids(ids) => Group::Ids(ids.clone()),
            // `All`, and any group a later volley adds.
            _ => Group::All,
        };
        Self {
            here_only: true,
            except: target.except.clone(),
            ..Self::new(server, group)
        }
    }

    fn new(server: Server, group: Group) -> Self {
        Self {
            server,
            group,
            except: Vec::new(),
            here_only: false,
        }
    }

    /// Leaves `players` out (the sender of a chat line, say).
    pub fn except(mut self, players: impl Players) -> Self {
        self.except.extend(players.to_vec().iter().map(Player::id));
        self
    }

    /// Leaves the player `id` out (of any process, on a cluster).
    pub fn except_id(mut self, id: PlayerId) -> Self {
        self.except.push(id);
        self
    }

    /// Leaves the players `ids` out.
    pub fn except_ids(mut self, ids: impl IntoIterator<Item = PlayerId>) -> Self {
        self.except.extend(ids);
        self
    }

    /// Whether the player `id` would be connected to this server.
    fn is_local(&self, id: PlayerId) -> bool {
        self.here_only || self.server.inner.adapter.is_local(id)
    }

    /// Who is in the group on this server now: the players connected (a
    /// shared list: a room's or everyone's is not copied), and the ids asked
    /// for by [`Server::to_ids`] that would be here but are not connected.
    /// `except` is not applied yet: see [`included`](Self::included).
    pub(super) fn resolve(&self) -> (Arc<[Player]>, Vec<PlayerId>) {
        let inner = &self.server.inner;
        match &self.group {
            Group::All => (self.server.all_players(), Vec::new()),
            Group::Rooms(rooms) => (inner.rooms.members_of_any(rooms), Vec::new()),
            Group::Players(players) => (players.clone(), Vec::new()),
            Group::Ids(ids) => {
                let directory = read(&inner.players);
                let mut found = Vec::with_capacity(ids.len());
                let mut missing = Vec::new();
                for &id in ids.iter().filter(|id| self.is_local(**id)) {
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

    /// The part of the group the adapter reaches (other processes), if any.
    fn elsewhere(&self) -> Option<Target> {
        if self.here_only {
            return None;
        }
        let group = match &self.group {
            Group::All => TargetGroup::All,
            Group::Rooms(rooms) => TargetGroup::Rooms(rooms.clone()),
            Group::Players(_) => return None,
            Group::Ids(ids) => {
                let adapter = &self.server.inner.adapter;
                let remote: Vec<PlayerId> = ids
                    .iter()
                    .copied()
                    .filter(|id| !adapter.is_local(*id) && !self.except.contains(id))
                    .collect();
                if remote.is_empty() {
                    return None;
                }
                TargetGroup::Ids(remote)
            }
        };
        Some(Target::new(group, self.except.clone()))
    }

    /// Whether the player `id` is not left out by [`except`](Self::except).
    fn included(&self, id: PlayerId) -> bool {
        !self.except.contains(&id)
    }

    /// The players of this server in the group now (for every process, see
    /// [`members`](Self::members)).
    pub fn players(&self) -> Vec<Player> {
        let (players, _) = self.resolve();
        players.iter().filter(|p| self.included(p.id())).cloned().collect()
    }

    /// The ids of every player in the group now, in every process the
    /// server's adapter reaches (on one server, those of
    /// [`players`](Self::players)), with the processes that did not say.
    pub async fn members(&self) -> Census {
        let here = Census::of(self.players().iter().map(Player::id).collect());
        match self.elsewhere() {
            Some(target) => here.merge(self.server.inner.adapter.members(&target).await),
            None => here,
        }
    }

    /// Fires `remote` at each player in the group. The payload is encoded
    /// once; the result says how many of this server's players it was
    /// queued for, how many other processes it went to (on a cluster), and
    /// who was skipped, and why. Fails, delivering to nobody, if the value
    /// cannot be encoded, or if the adapter cannot pass it on
    /// ([`EventError::Unreachable`], [`EventError::TooLarge`]).
    pub fn fire<T: Payload>(&self, remote: ClientEvent<T>, value: T) -> Result<Broadcast, EventError> {
        let endpoint = &self.server.inner.endpoint;
        let (id, payload) = endpoint.encode_event(&remote, &value)?;
        let relayed = match self.elsewhere() {
            Some(target) => self.server.inner.adapter.fire(&target, remote.name, &payload),
            None => Ok(Relayed::default()),
        };
        let relayed = match relayed {
            Ok(relayed) => relayed,
            Err(error) => {
                crate::payload::recycle(payload);
                return Err(error);
            }
        };
        let mut outcome = self.fire_here(id, remote.name, &payload);
        crate::payload::recycle(payload);
        outcome.skipped.extend(relayed.skipped);
        outcome.other_nodes = relayed.nodes;
        Ok(outcome)
    }

    /// Queues an encoded event for this server's players in the group; the
    /// ids asked for that are not connected here are skipped `Disconnected`.
    pub(super) fn fire_here(&self, id: RemoteId, name: &'static str, payload: &[u8]) -> Broadcast {
        let (players, missing) = self.resolve();
        let included = players.iter().filter(|p| self.included(p.id()));
        let mut outcome = self.server.fire_many_encoded(included, id, name, payload);
        outcome
            .skipped
            .extend(missing.into_iter().map(|id| (id, EventError::Disconnected)));
        outcome
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
        let checks = endpoint.protocol.response_checks(remote.name, remote.check_response);
        let mut answers = Answers::typed(self.server.clone(), players.clone(), remote.name, checks, timeout);
        let encoded = endpoint
            .function_id(&remote)
            .and_then(|id| Ok((id, endpoint.encode_request(remote.name, &req)?)));
        if let (Some(target), Ok((_, payload))) = (self.elsewhere(), &encoded) {
            let adapter = &self.server.inner.adapter;
            answers.push_remote(adapter.invoke(&target, remote.name, payload, timeout));
        }
        self.start_calls(answers, &players, missing, encoded, remote.name, timeout)
    }

    /// Sends the encoded request to each included player, into `answers`.
    pub(super) fn start_calls<Resp>(
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
                if let Some(TargetGroup::Ids(ids)) = self.elsewhere().map(|t| t.group) {
                    for id in ids {
                        answers.push_ready(id, Err(error.clone()));
                    }
                }
                return answers;
            }
        };
        let endpoint = &self.server.inner.endpoint;
        for (index, player) in included {
            let conn = player.inner.conn.clone();
            match endpoint.send_call(conn, player, id, name, &payload, timeout, None) {
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
