//! A connected client as the server sees it, and the player lists that
//! `fire_to` and `fire_except` take.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use volley_proto::{CloseReason, GoodbyeCode};

use super::data::PlayerData;
use super::resume::ResumeTokens;
use super::rooms::PlayerRooms;
use super::{Server, ServerInner};
use crate::conn::Conn;
use crate::endpoint::Invocation;
use crate::error::{EventError, FunctionError};
use crate::locks::lock;
use crate::peer::{Peer, PeerState, PlayerId};
use crate::remote::{ClientEvent, ClientFn, Payload};

/// A connected client, as the server sees it. Cheap to clone; equal when it
/// is the same connection.
#[derive(Clone)]
pub struct Player {
    pub(super) inner: Arc<PlayerInner>,
}

pub(super) struct PlayerInner {
    pub(super) id: PlayerId,
    /// Where its connection comes from: a resume moves it.
    pub(super) addr: Mutex<Option<SocketAddr>>,
    /// Set by the authenticator before the player joins.
    pub(super) identity: OnceLock<String>,
    pub(super) conn: Arc<Conn>,
    /// The server it is connected to. A cycle while the player is listed
    /// (the list holds the player), broken when it leaves.
    pub(super) server: Arc<ServerInner>,
    /// Why its connection ended, once it has, and who waits for that.
    pub(super) closed: OnceLock<CloseReason>,
    pub(super) closed_wakers: tokio::sync::Notify,
    /// What middleware keeps about this connection.
    pub(super) middleware_state: PeerState,
    /// The rooms it is in.
    pub(super) rooms: PlayerRooms,
    /// The game's data about it.
    pub(super) data: PlayerData,
    /// The tokens its client may resume it with, if it is resumable.
    pub(super) resume_tokens: Mutex<ResumeTokens>,
}

impl Peer for Player {
    fn state(&self) -> Option<&PeerState> {
        Some(&self.inner.middleware_state)
    }
}

impl Player {
    /// Its number.
    pub fn id(&self) -> PlayerId {
        self.inner.id
    }

    /// Who the authenticator said this player is; `None` without an
    /// authenticator.
    pub fn identity(&self) -> Option<&str> {
        self.inner.identity.get().map(String::as_str)
    }

    /// Where its connection comes from, if the transport knows (after a
    /// resume, the new connection's address).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        *lock(&self.inner.addr)
    }

    /// Whether the connection is still open.
    pub fn is_connected(&self) -> bool {
        self.inner.conn.is_open()
    }

    /// Whether its connection was lost and it waits (within the resume grace
    /// period) for its client to come back; see
    /// [`Server::on_player_away`](crate::Server::on_player_away).
    pub fn is_away(&self) -> bool {
        self.inner.conn.lock("is_away").session.is_away()
    }

    /// Stops reading what this player sends, for a consumer that cannot keep
    /// up (backpressure): its events, calls and keep-alive answers wait in
    /// the transport's buffers, and the client's writes stall once those
    /// fill. What was already read is still delivered. Returns `false` if
    /// reading was held already. Held longer than the idle timeout (30 s by
    /// default), the connection closes as idle.
    pub fn pause_reading(&self) -> bool {
        self.inner.conn.hold_reads(true)
    }

    /// Reads again after [`pause_reading`](Self::pause_reading); returns
    /// `false` if reading was not held.
    pub fn resume_reading(&self) -> bool {
        self.inner.conn.hold_reads(false)
    }

    /// The smoothed round-trip time to this player, measured from the pings
    /// volley sends when the player joins and every keep-alive interval
    /// (10 s) after; `None` until the first pong, a round trip after joining.
    pub fn rtt(&self) -> Option<Duration> {
        self.inner.conn.rtt()
    }

    /// How much [`rtt`](Self::rtt) varies: the jitter.
    pub fn rtt_jitter(&self) -> Option<Duration> {
        self.inner.conn.rtt_jitter()
    }

    /// This player's connection figures: round-trip time, frames and bytes
    /// each way, calls in flight, calls and events counted, errors by kind.
    pub fn figures(&self) -> crate::figures::ConnectionFigures {
        let mut figures = self.inner.conn.figures();
        figures.player = Some(self.id().0);
        figures.identity = self.identity().map(str::to_string);
        figures
    }

    /// Disconnects the player, telling it `reason`: its client sees
    /// [`CloseReason::Remote`] with [`GoodbyeCode::Kicked`] and this message.
    pub fn kick(&self, reason: &str) {
        self.inner.conn.close(GoodbyeCode::Kicked, reason);
    }

    /// The server this player is connected to: what a handler, which is
    /// given the player, acts with (broadcast, ask another player).
    pub fn server(&self) -> Server {
        Server {
            inner: self.inner.server.clone(),
        }
    }

    /// Fires `remote` at this player: [`Server::fire`].
    pub fn fire<T: Payload>(&self, remote: ClientEvent<T>, value: T) -> Result<(), EventError> {
        self.server().fire(self, remote, value)
    }

    /// Calls `remote` on this player's client with the remote's timeout:
    /// [`Server::invoke`].
    pub fn invoke<Req: Payload, Resp: Payload>(
        &self,
        remote: ClientFn<Req, Resp>,
        req: Req,
    ) -> impl Future<Output = Result<Resp, FunctionError>> + Send + '_ {
        let timeout = remote.timeout.unwrap_or(self.inner.server.config.default_timeout);
        self.invoke_with_timeout(remote, req, timeout)
    }

    /// Calls `remote` on this player's client with this timeout:
    /// [`Server::invoke_with_timeout`].
    pub fn invoke_with_timeout<Req: Payload, Resp: Payload>(
        &self,
        remote: ClientFn<Req, Resp>,
        req: Req,
        timeout: Duration,
    ) -> impl Future<Output = Result<Resp, FunctionError>> + Send + '_ {
        let conn = || Some(self.inner.conn.clone());
        Invocation::new(&self.inner.server.endpoint, self, conn, remote, req, timeout)
    }

    /// Puts this player in `room`; see [`Server::join`].
    pub fn join(&self, room: &str) -> bool {
        let server = &self.inner.server;
        let joined = server.rooms.join(self, room);
        if joined {
            server.room_changed(&server.room_joined, self, room);
        }
        joined
    }

    /// Takes this player out of `room`; see [`Server::leave`].
    pub fn leave(&self, room: &str) -> bool {
        let server = &self.inner.server;
        let left = server.rooms.leave(self, room);
        if left {
            server.room_changed(&server.room_left, self, room);
        }
        left
    }

    /// The rooms this player is in, in no particular order.
    pub fn rooms(&self) -> Vec<String> {
        self.inner.rooms.names()
    }

    /// Whether this player is in `room`.
    pub fn in_room(&self, room: &str) -> bool {
        self.inner.rooms.contains(room)
    }

    /// Attaches `value` to this player, replacing (and returning) the value
    /// of the same type attached before. Every handler and hook given the
    /// player can read it with [`data`](Self::data); it is dropped when the
    /// player leaves (after the `on_player_removed` hooks). One value per
    /// type: wrap plain types in a type of the game's own (`struct Team(u8)`).
    /// For data that changes, attach something with inner mutability (a
    /// `Mutex`, an atomic).
    pub fn set_data<T: Send + Sync + 'static>(&self, value: T) -> Option<Arc<T>> {
        self.inner.data.set(value)
    }

    /// The value of type `T` attached to this player, if any.
    pub fn data<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.inner.data.get()
    }

    /// The value of type `T` attached to this player, attaching `make()`'s
    /// first if there is none.
    pub fn data_or_insert_with<T: Send + Sync + 'static>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        self.inner.data.get_or_insert_with(make)
    }

    /// Takes the value of type `T` off this player.
    pub fn remove_data<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.inner.data.remove()
    }

    /// Waits until this player's connection ends, and says why (at once if
    /// it already has).
    pub async fn closed(&self) -> CloseReason {
        loop {
            // Registered before looking, so an end in between still wakes us.
            let ended = self.inner.closed_wakers.notified();
            if let Some(reason) = self.inner.closed.get() {
                return reason.clone();
            }
            ended.await;
        }
    }
}

impl PartialEq for Player {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id
    }
}
impl Eq for Player {}
impl std::hash::Hash for Player {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.id.hash(state);
    }
}

impl fmt::Debug for Player {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Player")
            .field("id", &self.inner.id.0)
            .field("identity", &self.identity())
            .field("addr", &self.remote_addr())
            .finish()
    }
}

/// One player or several: what [`Server::fire_to`] and [`Server::fire_except`]
/// take.
pub trait Players {
    /// Whether `player` is among them.
    fn contains(&self, player: &Player) -> bool;
    /// Each of them.
    fn to_vec(&self) -> Vec<Player>;
}

impl Players for &Player {
    fn contains(&self, player: &Player) -> bool {
        *self == player
    }
    fn to_vec(&self) -> Vec<Player> {
        vec![(*self).clone()]
    }
}

impl Players for &[Player] {
    fn contains(&self, player: &Player) -> bool {
        <[Player]>::contains(self, player)
    }
    fn to_vec(&self) -> Vec<Player> {
        <[Player]>::to_vec(self)
    }
}

impl Players for &Vec<Player> {
    fn contains(&self, player: &Player) -> bool {
        self.as_slice().contains(player)
    }
    fn to_vec(&self) -> Vec<Player> {
        self.as_slice().to_vec()
    }
}

impl<const N: usize> Players for &[Player; N] {
    fn contains(&self, player: &Player) -> bool {
        self.as_slice().contains(player)
    }
    fn to_vec(&self) -> Vec<Player> {
        self.as_slice().to_vec()
    }
}

impl Players for Vec<Player> {
    fn contains(&self, player: &Player) -> bool {
        self.as_slice().contains(player)
    }
    fn to_vec(&self) -> Vec<Player> {
        self.clone()
    }
}

impl Players for &[&Player] {
    fn contains(&self, player: &Player) -> bool {
        <[&Player]>::contains(self, &player)
    }
    fn to_vec(&self) -> Vec<Player> {
        self.iter().map(|p| (*p).clone()).collect()
    }
}

impl Players for &Vec<&Player> {
    fn contains(&self, player: &Player) -> bool {
        Players::contains(&self.as_slice(), player)
    }
    fn to_vec(&self) -> Vec<Player> {
        Players::to_vec(&self.as_slice())
    }
}

impl<const N: usize> Players for &[&Player; N] {
    fn contains(&self, player: &Player) -> bool {
        Players::contains(&self.as_slice(), player)
    }
    fn to_vec(&self) -> Vec<Player> {
        Players::to_vec(&self.as_slice())
    }
}
