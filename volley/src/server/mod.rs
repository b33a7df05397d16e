//! The server: accepts clients, runs the handlers of server-bound remotes,
//! calls and fires client-bound ones.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::net::ToSocketAddrs;
use tokio::task::AbortHandle;
use tracing::Instrument;
use volley_proto::{CloseReason, GoodbyeCode, RefuseCode, Session};

use crate::broadcast::Broadcast;
use crate::clock::now;
use crate::conn::Conn;
use crate::driver::{Driver, Side};
use crate::endpoint::{BadInput, Endpoint};
use crate::error::{EventError, FunctionError};
use crate::guard::catch_user;
use crate::locks::{lock, read, write};
use crate::middleware::BoxFuture;
use crate::peer::{PeerState, PlayerId};
use crate::redacted::Redacted;
use crate::remote::{ClientEvent, ClientFn, Payload, Protocol, ServerEvent, ServerFn, ToServer};
use crate::transport::{memory, tcp, Transport};

pub mod adapter;
mod answers;
mod call_set;
mod config;
mod data;
mod directory;
#[cfg(feature = "inspector")]
mod inspector;
mod listen;
#[cfg(feature = "metrics")]
mod metrics;
mod player;
mod reach;
mod recipients;
mod relay;
mod resume;
mod room_api;
mod rooms;
mod side;
mod tallies;

pub use answers::Answers;
pub use config::{ServerConfig, DEFAULT_RESUME_GRACE};
use directory::Directory;
#[cfg(feature = "inspector")]
pub use inspector::{InspectorSnapshot, TrafficPoint};
use player::PlayerInner;
pub use player::{Player, Players};
pub use recipients::Recipients;
use relay::Relay;
use rooms::Rooms;
use side::ServerSide;
pub use tallies::Incident;
use tallies::Tallies;

type PlayerHook = Arc<dyn Fn(&Player) + Send + Sync>;
type RoomHook = Arc<dyn Fn(&Player, &str) + Send + Sync>;
type Authenticator = Arc<dyn Fn(Hello) -> BoxFuture<Result<String, String>> + Send + Sync>;

/// What a client presented when it connected, for the authenticator.
///
/// Its `Debug` output shows the token's length, never the token.
#[derive(Clone)]
#[non_exhaustive]
pub struct Hello {
    /// The client's [`ClientConfig::token`](crate::ClientConfig::token).
    pub token: Bytes,
    /// Where it connects from, if the transport knows.
    pub addr: Option<SocketAddr>,
}
impl fmt::Debug for Hello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hello")
            .field("token", &Redacted(self.token.len()))
            .field("addr", &self.addr)
            .finish()
    }
}

type LeaveHook = Arc<dyn Fn(&Player, &CloseReason) + Send + Sync>;

/// The server end. Cheap to clone: every clone is the same server.
///
/// Register handlers and listeners, then accept clients with
/// [`listen_tcp`](Self::listen_tcp), [`serve`](Self::serve) or
/// [`connect_memory`](Self::connect_memory).
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

struct ServerInner {
    endpoint: Endpoint<Player>,
    config: ServerConfig,
    /// `config.session`, shared by every player's session.
    session_config: Arc<volley_proto::SessionConfig>,
    /// Who else its groups reach: nobody ([`adapter::Local`]) or a cluster.
    adapter: adapter::SharedAdapter,
    players: RwLock<Directory>,
    rooms: Rooms,
    room_joined: RwLock<Vec<RoomHook>>,
    room_left: RwLock<Vec<RoomHook>>,
    next_id: AtomicU64,
    added: RwLock<Vec<PlayerHook>>,
    removed: RwLock<Vec<LeaveHook>>,
    /// Hooks for a player whose connection was lost (kept for a resume),
    /// and for one that resumed.
    away: RwLock<Vec<PlayerHook>>,
    back: RwLock<Vec<PlayerHook>>,
    /// Resumable players by their current resume token.
    resumable: Mutex<HashMap<volley_proto::ResumeToken, Player>>,
    authenticator: RwLock<Option<Authenticator>>,
    /// Accept loops, stopped by [`Server::shutdown`].
    listeners: Mutex<Vec<AbortHandle>>,
    shutting_down: AtomicBool,
    /// Connections accepted and not yet joined, against `max_handshakes`.
    handshakes: Arc<tokio::sync::Semaphore>,
    /// Players joined whose departure has not finished (their leave and
    /// removal hooks included): [`Server::shutdown`] waits for none.
    present: tokio::sync::watch::Sender<usize>,
    /// Connections whose task has not ended (its goodbye flushed and the
    /// peer's close read, or its linger over): [`Server::shutdown`] waits
    /// for none, a while.
    open: tokio::sync::watch::Sender<usize>,
    /// Told when a draining connection has answered all its peer's calls,
    /// for [`Server::shutdown`].
    drained: tokio::sync::Notify,
    /// Refusals and departures, counted by reason, and the latest of them
    /// and of bad input (rare: a lock is fine).
    tallies: Arc<Mutex<Tallies>>,
    /// When the server was made.
    started: std::time::Instant,
}

impl ServerInner {
    /// Counts a connection refused before joining.
    fn refused(&self, why: &str) {
        let mut tallies = lock(&self.tallies);
        *tallies.refused.entry(why.to_string()).or_default() += 1;
        tallies.incident(self.started, "refused", None, why.to_string());
    }

    /// Tells the adapter, and runs the room hooks in `hooks` for `player`
    /// and `room`.
    fn room_changed(&self, hooks: &RwLock<Vec<RoomHook>>, player: &Player, room: &str) {
        self.adapter.room_changed(room);
        let hooks = read(hooks).clone();
        for hook in hooks {
            catch_user("room hook", None, || hook(player, room));
        }
    }

    /// Connections accepted and not yet joined.
    fn handshakes_in_progress(&self) -> usize {
        self.config.max_handshakes - self.handshakes.available_permits()
    }

    /// Whether a client may join now, and why not.
    fn admission(&self) -> Result<(), &'static str> {
        if self.shutting_down.load(Ordering::SeqCst) {
            Err("server is shutting down")
        } else if read(&self.players).len() >= self.config.max_players {
            Err("server is full")
        } else {
            Ok(())
        }
    }
}

/// One of the `max_handshakes` places, held from accept until the player
/// joins or the connection ends.
type HandshakeSlot = tokio::sync::OwnedSemaphorePermit;

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("players", &self.player_count())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Server {
    /// A server for `protocol`'s remotes, on its own: its groups are its own
    /// players. It accepts nobody until told where.
    ///
    /// # Panics
    ///
    /// If `config` cannot work ([`ServerConfig::validate`]): a mistake to fix
    /// in code, refused here rather than on a connection later.
    #[track_caller]
    pub fn new(protocol: Protocol, config: ServerConfig) -> Self {
        Self::with_adapter(protocol, config, adapter::Local)
    }

    /// A server whose groups reach as far as `adapter` does: a cluster
    /// adapter (`volley-net-cluster`'s `NatsAdapter`) makes `to_room`,
    /// `to_all`, `to_ids`, `invoke` to a group, `room_members`, `join`,
    /// `leave` and `kick` span every node, with the same code a single
    /// server runs. Must be called within a Tokio runtime when the adapter
    /// runs tasks (a cluster's does).
    ///
    /// ```no_run
    /// # use volley::*;
    /// # fn example(protocol: Protocol, adapter: impl volley::adapter::Adapter) {
    /// let server = Server::with_adapter(protocol, ServerConfig::default(), adapter);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// As [`new`](Self::new).
    #[track_caller]
    pub fn with_adapter(protocol: Protocol, config: ServerConfig, adapter: impl adapter::Adapter) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid ServerConfig: {e}");
        }
        let first_id = adapter.player_id_base().saturating_add(1);
        let tallies = Arc::new(Mutex::new(Tallies::default()));
        let handshakes = Arc::new(tokio::sync::Semaphore::new(config.max_handshakes));
        let server = Self {
            inner: Arc::new(ServerInner {
                endpoint: Endpoint::new(protocol, volley_proto::Direction::ToServer),
                session_config: Arc::new(config.session.clone()),
                config,
                adapter: Arc::new(adapter),
                players: RwLock::new(Directory::default()),
                rooms: Rooms::default(),
                room_joined: RwLock::new(Vec::new()),
                room_left: RwLock::new(Vec::new()),
                next_id: AtomicU64::new(first_id),
                added: RwLock::new(Vec::new()),
                removed: RwLock::new(Vec::new()),
                away: RwLock::new(Vec::new()),
                back: RwLock::new(Vec::new()),
                resumable: Mutex::new(HashMap::new()),
                authenticator: RwLock::new(None),
                listeners: Mutex::new(Vec::new()),
                shutting_down: AtomicBool::new(false),
                handshakes,
                present: tokio::sync::watch::Sender::new(0),
                open: tokio::sync::watch::Sender::new(0),
                drained: tokio::sync::Notify::new(),
                tallies: tallies.clone(),
                started: std::time::Instant::now(),
            }),
        };
        // Bad input is kept among the recent incidents.
        let started = server.inner.started;
        let keep = |kind: &'static str| {
            let tallies = tallies.clone();
            move |player: &Player, bad: &BadInput| {
                let detail = format!("{}: {}", bad.remote, bad.reason);
                lock(&tallies).incident(started, kind, Some(player.id()), detail);
            }
        };
        server.inner.endpoint.on_bad_request(keep("bad_request"));
        server.inner.endpoint.on_bad_response(keep("bad_response"));
        server.inner.adapter.attach(Relay::new(&server));
        server
    }

    /// Its settings.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The remotes it was built with.
    pub fn protocol(&self) -> &Protocol {
        &self.inner.endpoint.protocol
    }

    /// Shuts the server down gracefully: stops accepting, refuses new
    /// handshakes and new requests (answered [`FunctionError::Unprocessed`]),
    /// lets the handlers already running finish for up to `grace`, then says
    /// goodbye to every player ([`GoodbyeCode::ShuttingDown`], which clients
    /// see as [`CloseReason::Remote`]). Calls still pending when the goodbye
    /// goes, either way, end [`FunctionError::Disconnected`] at their
    /// callers; handlers still running are cancelled. Returns once
    /// every player is gone and every leave hook and
    /// [`on_player_removed`](Self::on_player_removed) hook has returned, and
    /// their connections have closed (each goodbye delivered and the peer's
    /// close seen, or at most twice [`CLOSE_LINGER`](crate::CLOSE_LINGER)
    /// later): a game that saves its players there can end the process
    /// after, and its players read why they were let go. Players let go
    /// another way just before (a [`Player::kick`] each) are waited for too.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        for accepting in lock(&self.inner.listeners).drain(..) {
            accepting.abort();
        }
        let players = self.players();
        tracing::info!(players = players.len(), ?grace, "shutting down");
        for player in &players {
            player.inner.conn.drain();
        }
        let busy = || players.iter().any(|p| p.inner.conn.incoming_calls() > 0);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            // Listening before looking: an answer between the two is heard.
            let drained = self.inner.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if !busy() {
                break;
            }
            tokio::select! {
                () = drained => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        for player in &players {
            player
                .inner
                .conn
                .close(GoodbyeCode::ShuttingDown, "server shutting down");
        }
        // The sender lives as long as the server: an error is not reached.
        let _ = self.inner.present.subscribe().wait_for(|present| *present == 0).await;
        // Ending the process at once would drop the transports with the
        // goodbyes still in flight (QUIC discards unacknowledged stream data
        // when the connection goes). A joined connection's task ends within
        // two lingers of its goodbye (flushing it, then reading the peer's
        // close); one still in its handshake is not waited for past that.
        let mut open = self.inner.open.subscribe();
        let _ = tokio::time::timeout(2 * crate::CLOSE_LINGER, open.wait_for(|open| *open == 0)).await;
    }

    // ---- players ----

    /// The players connected to this server now, in the order they joined
    /// (on a cluster, every node's: `to_all().members()`).
    pub fn players(&self) -> Vec<Player> {
        read(&self.inner.players).all().cloned().collect()
    }

    /// Every connected player as one shared list (cheap: see `Directory`).
    fn all_players(&self) -> Arc<[Player]> {
        read(&self.inner.players).snapshot()
    }

    /// How many players are connected to this server (on a cluster, to
    /// every node: `to_all().members().await.len()`).
    pub fn player_count(&self) -> usize {
        read(&self.inner.players).len()
    }

    /// The player with this id, if connected to this server (one of any
    /// node is reached by id: [`to_ids`](Self::to_ids),
    /// [`invoke_id`](Self::invoke_id), [`fire_id`](Self::fire_id)).
    pub fn player(&self, id: PlayerId) -> Option<Player> {
        read(&self.inner.players).get(id).cloned()
    }

    /// The player the authenticator gave this identity ([`Player::identity`]);
    /// if it is connected more than once, the one that joined last.
    pub fn player_by_identity(&self, identity: &str) -> Option<Player> {
        read(&self.inner.players).by_identity(identity).cloned()
    }

    /// Everything counted: players, handshakes in progress, refusals and
    /// departures by reason, every remote's calls, events, bytes, outcomes
    /// and latency, and each player's connection figures. Plain data
    /// (`serde`), cheap to take once a second; the per-player part grows
    /// with the players.
    pub fn figures(&self) -> crate::figures::ServerFigures {
        let tallies = lock(&self.inner.tallies);
        let (refused, disconnects) = (tallies.refused.clone(), tallies.disconnects.clone());
        drop(tallies);
        let players = self.all_players();
        crate::figures::ServerFigures {
            players: players.len(),
            handshakes: self.inner.handshakes_in_progress(),
            refused,
            disconnects,
            remotes: self.inner.endpoint.figures.snapshot(),
            connections: players.iter().map(Player::figures).collect(),
        }
    }

    /// Calls `hook` for each player that finishes the handshake.
    pub fn on_player_added(&self, hook: impl Fn(&Player) + Send + Sync + 'static) {
        write(&self.inner.added).push(Arc::new(hook));
    }

    /// Calls `hook` for each player whose connection was lost and who is
    /// kept for its client to resume (see
    /// [`ServerConfig::with_resume_grace`]): it stays in `players()`, its
    /// rooms, data and calls, and [`Player::is_away`] says so. Either
    /// [`on_player_back`](Self::on_player_back) or
    /// [`on_player_removed`](Self::on_player_removed) follows.
    pub fn on_player_away(&self, hook: impl Fn(&Player) + Send + Sync + 'static) {
        write(&self.inner.away).push(Arc::new(hook));
    }

    /// Calls `hook` for each player whose client resumed it on a new
    /// connection: nothing was lost, calls in flight included.
    pub fn on_player_back(&self, hook: impl Fn(&Player) + Send + Sync + 'static) {
        write(&self.inner.back).push(Arc::new(hook));
    }

    /// Calls `hook` for each player that leaves, with the reason.
    pub fn on_player_removed(&self, hook: impl Fn(&Player, &CloseReason) + Send + Sync + 'static) {
        write(&self.inner.removed).push(Arc::new(hook));
    }

    /// Decides who may join: `authenticator` gets each client's [`Hello`]
    /// and returns the identity the [`Player`] carries
    /// ([`Player::identity`]) or the reason to refuse it, which the client
    /// receives as [`ConnectError::Refused`](crate::ConnectError::Refused) with
    /// [`RefuseCode::Unauthorized`]. It runs as its own task, within the
    /// handshake deadline (5 s by default). Without one, every client with
    /// matching declarations joins.
    pub fn set_authenticator<F, Fut>(&self, authenticator: F)
    where
        F: Fn(Hello) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        *write(&self.inner.authenticator) = Some(Arc::new(move |hello| Box::pin(authenticator(hello))));
    }

    crate::registration::registration_methods! {
        end: "server",
        peer: Player,
        ctx: Player,
        handles: ToServer,
        function: ServerFn,
        event: ServerEvent,
    }

    /// What a handler is given: the calling player, as the connection has it.
    fn peer_of(&self) -> impl Fn(Player) -> Player + Send + Sync + 'static {
        |player| player
    }
}
