//! The adapter: what decides whether a [`Server`](super::Server)'s groups
//! span this process or many. A game never calls it; it builds its server
//! with one ([`Server::with_adapter`](super::Server::with_adapter)) and uses
//! the same `to_room`, `invoke`, `join`, `room_members` either way.
//!
//! The server always serves its own players itself: their connections, its
//! rooms, its directory. The adapter adds the players of other processes:
//! [`Local`], the default, knows no other process; a cluster adapter
//! (`volley-net-cluster`'s `NatsAdapter`) passes the same operations to the
//! other nodes through a broker and, when they ask, hands their operations
//! to this server through the [`Relay`] it is given.
//!
//! Payloads cross the adapter encoded (postcard, as on the wire), once,
//! by the server that sends them: the adapter never needs the game's types.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

pub use super::relay::Relay;
use crate::error::{EventError, FunctionError};
use crate::middleware::BoxFuture;
use crate::peer::PlayerId;

/// Where a server's group operations reach beyond its own players. See the
/// [module documentation](self).
///
/// Every method but [`attach`](Self::attach) is about the players of *other*
/// processes: the server has already done its own part, or does it after.
/// Methods that return at once (`fire`, `invoke`) must not wait for the
/// network: they queue, or return a stream that does the waiting.
pub trait Adapter: Send + Sync + 'static {
    /// Called once, when the server is built: `relay` is how other
    /// processes' operations reach this server's players. Called within a
    /// Tokio runtime; the adapter may spawn its tasks here.
    fn attach(&self, relay: Relay);

    /// The id this server's first player gets, less one: processes that
    /// share players' ids (nodes of a cluster) take a range each. Default 0.
    fn player_id_base(&self) -> u64 {
        0
    }

    /// Whether the player `id` would be connected to this server (a cluster
    /// tells by the id's range). Default: every id.
    fn is_local(&self, id: PlayerId) -> bool {
        let _ = id;
        true
    }

    /// Passes an event the server fired at `target` to the other processes,
    /// before the server delivers it to its own players. An error here
    /// (over the adapter's size limit, the broker unreachable) is returned
    /// to the game and nothing is delivered, here or anywhere.
    fn fire(&self, target: &Target, remote: &'static str, payload: &[u8]) -> Result<Relayed, EventError>;

    /// Calls `remote` on the players of `target` in other processes, within
    /// `timeout`; see [`Remote`] for what the stream must yield.
    fn invoke(&self, target: &Target, remote: &'static str, payload: &[u8], timeout: Duration) -> RemoteAnswers;

    /// The players of `target` in other processes.
    fn members(&self, target: &Target) -> BoxFuture<Census>;

    /// Puts the player `id` of another process in `room`: `Ok(true)` if it
    /// joined now, `Ok(false)` if it was a member already. Returns once a
    /// fire at the room from any process reaches it.
    fn join(&self, id: PlayerId, room: &str) -> BoxFuture<Result<bool, PlayerError>>;

    /// Takes the player `id` of another process out of `room`: `Ok(true)` if
    /// it was a member.
    fn leave(&self, id: PlayerId, room: &str) -> BoxFuture<Result<bool, PlayerError>>;

    /// Disconnects the player `id` of another process, telling it `reason`.
    fn kick(&self, id: PlayerId, reason: &str) -> BoxFuture<Result<(), PlayerError>>;

    /// The player of another process the authenticator gave `identity`, if
    /// any (the one that joined last if several).
    fn find_identity(&self, identity: &str) -> BoxFuture<Result<Option<PlayerId>, PlayerError>>;

    /// Told when this server's membership of `room` changed (a player of
    /// this server joined or left it); the server's own rooms are already up
    /// to date. Must not wait.
    fn room_changed(&self, room: &str) {
        let _ = room;
    }

    /// Returns once a fire at `room` from any process reaches this server's
    /// members (a cluster: once the broker knows this node follows the
    /// room). Called after a player of this server joined `room`.
    fn room_ready(&self, room: &str) -> BoxFuture<()> {
        let _ = room;
        Box::pin(std::future::ready(()))
    }
}

/// Who an operation is for: a group, less some players.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// The group.
    pub group: Group,
    /// Players left out.
    pub except: Vec<PlayerId>,
}

impl Target {
    /// `group` less `except`.
    pub fn new(group: Group, except: Vec<PlayerId>) -> Self {
        Self { group, except }
    }
}

/// A group of players, named so that any process can tell its own members.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Group {
    /// Every player.
    All,
    /// The members of any of these rooms, each once.
    Rooms(Vec<String>),
    /// These players (of other processes, when handed to an adapter).
    Ids(Vec<PlayerId>),
}

/// What [`Adapter::fire`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Relayed {
    /// Other processes the event went to (each delivers to its own players).
    pub nodes: usize,
    /// Players of other processes known not to get it, with why.
    pub skipped: Vec<(PlayerId, EventError)>,
}

impl Relayed {
    /// Gone to `nodes` other processes, nobody skipped.
    pub fn to_nodes(nodes: usize) -> Self {
        Self {
            nodes,
            skipped: Vec::new(),
        }
    }
}

/// What the stream of [`Adapter::invoke`] yields.
///
/// Each player of another process asked appears exactly once, with its
/// answer still encoded, or its error: `Timeout` at the deadline,
/// `Disconnected` if its process went away. A process that never said whom
/// it asked appears once as [`Silent`](Self::Silent). The stream ends when
/// nothing more is owed; dropping it cancels the calls still pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// One player's answer.
    Answer(PlayerId, Result<Bytes, FunctionError>),
    /// A process that did not say whom it asked: its players are unknown.
    Silent(u32),
}

/// The answers of other processes to a group call: see [`Remote`].
pub type RemoteAnswers = Pin<Box<dyn Stream<Item = Remote> + Send>>;

/// Players found across processes, and the processes that did not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Census {
    /// The players, by id, ascending.
    pub players: Vec<PlayerId>,
    /// Processes (cluster nodes, by number) that did not answer in time, or
    /// could not be asked: their players are missing from `players`.
    pub silent_nodes: Vec<u32>,
}

impl Census {
    /// These players, every process heard.
    pub fn of(mut players: Vec<PlayerId>) -> Self {
        players.sort_unstable();
        Self {
            players,
            silent_nodes: Vec::new(),
        }
    }

    /// How many players were found.
    pub fn len(&self) -> usize {
        self.players.len()
    }

    /// Whether none were found.
    pub fn is_empty(&self) -> bool {
        self.players.is_empty()
    }

    /// Whether every process answered.
    pub fn is_complete(&self) -> bool {
        self.silent_nodes.is_empty()
    }

    /// `other`'s players and silent processes added to these.
    pub fn merge(mut self, other: Census) -> Self {
        self.players.extend(other.players);
        self.players.sort_unstable();
        self.players.dedup();
        self.silent_nodes.extend(other.silent_nodes);
        self
    }
}

/// Why an operation on one player by id did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PlayerError {
    /// No player with this id is connected (anywhere the server can reach).
    #[error("no such player is connected")]
    NotConnected,
    /// The player is connected to another process, which cannot be reached
    /// now (a cluster's broker is down; it reconnects by itself).
    #[error("the player's server cannot be reached now")]
    Unreachable,
}

/// The default adapter: this process only. Groups are this server's
/// players; there is nobody else to reach.
#[derive(Debug, Clone, Copy, Default)]
pub struct Local;

impl Adapter for Local {
    fn attach(&self, _: Relay) {}

    fn fire(&self, _: &Target, _: &'static str, _: &[u8]) -> Result<Relayed, EventError> {
        Ok(Relayed::default())
    }

    fn invoke(&self, _: &Target, _: &'static str, _: &[u8], _: Duration) -> RemoteAnswers {
        Box::pin(futures_util::stream::empty())
    }

    fn members(&self, _: &Target) -> BoxFuture<Census> {
        Box::pin(std::future::ready(Census::default()))
    }

    fn join(&self, _: PlayerId, _: &str) -> BoxFuture<Result<bool, PlayerError>> {
        Box::pin(std::future::ready(Err(PlayerError::NotConnected)))
    }

    fn leave(&self, _: PlayerId, _: &str) -> BoxFuture<Result<bool, PlayerError>> {
        Box::pin(std::future::ready(Err(PlayerError::NotConnected)))
    }

    fn kick(&self, _: PlayerId, _: &str) -> BoxFuture<Result<(), PlayerError>> {
        Box::pin(std::future::ready(Err(PlayerError::NotConnected)))
    }

    fn find_identity(&self, _: &str) -> BoxFuture<Result<Option<PlayerId>, PlayerError>> {
        Box::pin(std::future::ready(Ok(None)))
    }
}

/// An adapter as the server keeps it.
pub(super) type SharedAdapter = std::sync::Arc<dyn Adapter>;

impl fmt::Debug for dyn Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Adapter")
    }
}
