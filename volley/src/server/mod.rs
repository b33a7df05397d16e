//! The server: accepts clients, runs the handlers of server-bound remotes,
//! calls and fires client-bound ones.

use std::collections::BTreeMap;
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

mod answers;
mod config;
mod data;
mod directory;
#[cfg(feature = "inspector")]
mod inspector;
#[cfg(feature = "metrics")]
mod metrics;
mod player;
mod recipients;
mod relay;
mod rooms;

pub use answers::Answers;
pub use config::ServerConfig;
use directory::Directory;
#[cfg(feature = "inspector")]
pub use inspector::{InspectorSnapshot, TrafficPoint};
use player::PlayerInner;
pub use player::{Player, Players};
pub use recipients::Recipients;
use rooms::Rooms;

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
    players: RwLock<Directory>,
    rooms: Rooms,
    room_joined: RwLock<Vec<RoomHook>>,
    room_left: RwLock<Vec<RoomHook>>,
    next_id: AtomicU64,
    added: RwLock<Vec<PlayerHook>>,
    removed: RwLock<Vec<LeaveHook>>,
    authenticator: RwLock<Option<Authenticator>>,
    /// Accept loops, stopped by [`Server::shutdown`].
    listeners: Mutex<Vec<AbortHandle>>,
    shutting_down: AtomicBool,
    /// Connections accepted and not yet joined, against `max_handshakes`.
    handshakes: Arc<tokio::sync::Semaphore>,
    /// Players joined whose departure has not finished (their leave and
    /// removal hooks included): [`Server::shutdown`] waits for none.
    present: tokio::sync::watch::Sender<usize>,
    /// Told when a draining connection has answered all its peer's calls,
    /// for [`Server::shutdown`].
    drained: tokio::sync::Notify,
    /// Refusals and departures, counted by reason, and the latest of them
    /// and of bad input (rare: a lock is fine).
    tallies: Arc<Mutex<Tallies>>,
    /// When the server was made.
    started: std::time::Instant,
}

#[derive(Default)]
struct Tallies {
    refused: BTreeMap<String, u64>,
    disconnects: BTreeMap<String, u64>,
    recent: std::collections::VecDeque<Incident>,
    /// The inspector's traffic history.
    #[cfg(feature = "inspector")]
    history: std::collections::VecDeque<inspector::TrafficPoint>,
}

/// Incidents kept for the inspector.
const RECENT_INCIDENTS: usize = 50;

impl Tallies {
    fn incident(&mut self, started: std::time::Instant, kind: &'static str, player: Option<PlayerId>, detail: String) {
        if self.recent.len() == RECENT_INCIDENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(Incident {
            at_ms: started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
            kind: kind.to_string(),
            player: player.map(|p| p.0),
            detail,
        });
    }
}

/// A refusal or a piece of bad input, as the inspector lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Incident {
    /// When, in milliseconds since the server was made.
    pub at_ms: u64,
    /// `refused`, `bad_request` or `bad_response`.
    pub kind: String,
    /// The player, for bad input.
    pub player: Option<u64>,
    /// The reason.
    pub detail: String,
}

impl ServerInner {
    /// Counts a connection refused before joining.
    fn refused(&self, why: &str) {
        let mut tallies = lock(&self.tallies);
        *tallies.refused.entry(why.to_string()).or_default() += 1;
        tallies.incident(self.started, "refused", None, why.to_string());
    }

    /// Runs the room hooks in `hooks` for `player` and `room`.
    fn room_changed(&self, hooks: &RwLock<Vec<RoomHook>>, player: &Player, room: &str) {
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
    /// A server for `protocol`'s remotes; it accepts nobody until told where.
    ///
    /// # Panics
    ///
    /// If `config` cannot work ([`ServerConfig::validate`]): a mistake to fix
    /// in code, refused here rather than on a connection later.
    #[track_caller]
    pub fn new(protocol: Protocol, config: ServerConfig) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid ServerConfig: {e}");
        }
        let first_id = config.player_id_base.saturating_add(1);
        let tallies = Arc::new(Mutex::new(Tallies::default()));
        let handshakes = Arc::new(tokio::sync::Semaphore::new(config.max_handshakes));
        let server = Self {
            inner: Arc::new(ServerInner {
                endpoint: Endpoint::new(protocol, volley_proto::Direction::ToServer),
                config,
                players: RwLock::new(Directory::default()),
                rooms: Rooms::default(),
                room_joined: RwLock::new(Vec::new()),
                room_left: RwLock::new(Vec::new()),
                next_id: AtomicU64::new(first_id),
                added: RwLock::new(Vec::new()),
                removed: RwLock::new(Vec::new()),
                authenticator: RwLock::new(None),
                listeners: Mutex::new(Vec::new()),
                shutting_down: AtomicBool::new(false),
                handshakes,
                present: tokio::sync::watch::Sender::new(0),
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

    // ---- accepting clients ----

    /// Listens for TCP clients on `addr` in a background task, and returns the
    /// bound address (useful with port 0).
    pub async fn listen_tcp(&self, addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
        let server = self.clone();
        self.accept_tcp(addr, "TCP", move |stream| server.serve(stream)).await
    }

    /// Listens for TLS clients on `addr` (feature `tls`): each connection's
    /// TLS handshake runs in its own task and must finish within the session's
    /// handshake deadline (5 s by default).
    #[cfg(feature = "tls")]
    pub async fn listen_tls(
        &self,
        addr: impl ToSocketAddrs,
        config: Arc<crate::transport::tls::rustls::ServerConfig>,
    ) -> io::Result<SocketAddr> {
        let server = self.clone();
        self.accept_tcp(addr, "TLS", move |stream| {
            server.serve_after("TLS", crate::transport::tls::accept(stream, config.clone()));
        })
        .await
    }

    /// Listens for WebSocket clients on `addr`, at `path` (feature
    /// `websocket`); the upgrade must finish within the session's handshake
    /// deadline (5 s by default), other paths get HTTP 404, and browser pages
    /// from origins not in [`ServerConfig::allowed_origins`] (if set) HTTP 403.
    #[cfg(feature = "websocket")]
    pub async fn listen_ws(&self, addr: impl ToSocketAddrs, path: &str) -> io::Result<SocketAddr> {
        let (server, path) = (self.clone(), Arc::<str>::from(path));
        self.accept_tcp(addr, "WebSocket", move |stream| {
            let (path, inner) = (path.clone(), server.inner.clone());
            server.serve_after("WebSocket", async move {
                let origins = inner.config.allowed_origins.as_deref();
                crate::transport::websocket::accept(stream, &path, origins).await
            });
        })
        .await
    }

    /// Listens for secure WebSocket (`wss://`) clients on `addr`, at `path`
    /// (features `websocket` and `tls`): the TLS handshake and the upgrade
    /// together must finish within the session's handshake deadline.
    #[cfg(all(feature = "websocket", feature = "tls"))]
    pub async fn listen_wss(
        &self,
        addr: impl ToSocketAddrs,
        path: &str,
        config: Arc<crate::transport::tls::rustls::ServerConfig>,
    ) -> io::Result<SocketAddr> {
        let (server, path) = (self.clone(), Arc::<str>::from(path));
        self.accept_tcp(addr, "secure WebSocket", move |stream| {
            let (path, config, inner) = (path.clone(), config.clone(), server.inner.clone());
            server.serve_after("secure WebSocket", async move {
                let tls = crate::transport::tls::accept(stream, config).await?;
                let origins = inner.config.allowed_origins.as_deref();
                crate::transport::websocket::accept(tls, &path, origins).await
            });
        })
        .await
    }

    /// Listens for QUIC clients on `addr` (feature `quic`), with this TLS 1.3
    /// configuration (its ALPN list is replaced by
    /// [`ALPN`](crate::transport::quic::ALPN)). Each connection's handshake
    /// runs in its own task under the session's handshake deadline. Returns
    /// the bound address.
    #[cfg(feature = "quic")]
    pub async fn listen_quic(
        &self,
        addr: impl ToSocketAddrs,
        config: Arc<crate::transport::tls::rustls::ServerConfig>,
    ) -> io::Result<SocketAddr> {
        let addr = tokio::net::lookup_host(addr)
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on"))?;
        let endpoint = crate::transport::quic::server_endpoint(addr, config)?;
        let local = endpoint.local_addr()?;
        let server = self.clone();
        self.keep_listener(tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                server.serve_after("QUIC", crate::transport::quic::accept(incoming));
            }
        }));
        tracing::info!(%local, "listening on QUIC");
        Ok(local)
    }

    /// Binds `addr` and hands each accepted TCP connection (with
    /// `TCP_NODELAY`) to `each` from a background task that
    /// [`shutdown`](Self::shutdown) stops. Returns the bound address.
    pub(crate) async fn accept_tcp(
        &self,
        addr: impl ToSocketAddrs,
        what: &'static str,
        each: impl Fn(tokio::net::TcpStream) + Send + 'static,
    ) -> io::Result<SocketAddr> {
        let listener = tcp::bind(addr).await?;
        let local = listener.local_addr()?;
        self.keep_listener(tokio::spawn(async move {
            loop {
                match tcp::accept(&listener).await {
                    Ok((stream, _)) => each(stream),
                    Err(e) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
        tracing::info!(%local, "listening on {what}");
        Ok(local)
    }

    /// Keeps an accept loop's handle, so [`shutdown`](Self::shutdown) stops it.
    fn keep_listener(&self, accepting: tokio::task::JoinHandle<()>) {
        lock(&self.inner.listeners).push(accepting.abort_handle());
    }

    /// Runs a transport's own handshake (TLS, WebSocket upgrade, QUIC) in its
    /// own task, under the session's handshake deadline, then serves the
    /// connection; a failed or late handshake is logged and dropped.
    #[cfg(any(feature = "tls", feature = "websocket", feature = "quic"))]
    fn serve_after<T: Transport>(
        &self,
        what: &'static str,
        handshake: impl Future<Output = io::Result<T>> + Send + 'static,
    ) {
        let Some(slot) = self.handshake_slot() else {
            return;
        };
        let server = self.clone();
        let deadline = self.inner.config.session.handshake_timeout;
        tokio::spawn(async move {
            match tokio::time::timeout(deadline, handshake).await {
                Ok(Ok(transport)) => server.serve_in(transport, slot),
                Ok(Err(e)) => tracing::info!(error = %e, "{what} handshake failed"),
                Err(_) => tracing::info!("{what} handshake timed out"),
            }
        });
    }

    /// A place among the connections in their handshake, if one is free.
    fn handshake_slot(&self) -> Option<HandshakeSlot> {
        let slot = self.inner.handshakes.clone().try_acquire_owned().ok();
        if slot.is_none() {
            let max = self.inner.config.max_handshakes;
            tracing::warn!(max, "too many handshakes in progress: connection closed");
            self.inner.refused("too many handshakes");
        }
        slot
    }

    /// Runs the server end of a connection over any transport, in its own
    /// task. With [`ServerConfig::max_handshakes`] connections already in
    /// their handshake, the transport is dropped (closed) at once.
    pub fn serve<T: Transport>(&self, transport: T) {
        if let Some(slot) = self.handshake_slot() {
            self.serve_in(transport, slot);
        }
    }

    fn serve_in<T: Transport>(&self, transport: T, slot: HandshakeSlot) {
        let session = Session::server(
            self.inner.config.session.clone(),
            self.inner.endpoint.protocol.table().clone(),
            now(),
        );
        let conn = Conn::new(session, self.inner.endpoint.figures.clone());
        let player = Player {
            inner: Arc::new(PlayerInner {
                id: PlayerId(self.inner.next_id.fetch_add(1, Ordering::Relaxed)),
                addr: transport.peer_addr(),
                identity: OnceLock::new(),
                conn: conn.clone(),
                server: self.inner.clone(),
                closed: OnceLock::new(),
                closed_wakers: tokio::sync::Notify::new(),
                middleware_state: PeerState::default(),
                rooms: Default::default(),
                data: Default::default(),
            }),
        };
        // Every log line of this connection names the player and its address.
        let span = tracing::info_span!("conn", player = %player.id(), addr = ?player.remote_addr());
        let side = ServerSide {
            server: self.inner.clone(),
            player,
            joined: false,
            handshake: Some(slot),
        };
        let budget = self.inner.config.receive_budget;
        tokio::spawn(Driver::new(conn, transport, side, budget).run().instrument(span));
    }

    /// Opens an in-process connection to this server and returns the client's
    /// end, for [`Client::connect`](crate::Client::connect).
    pub fn connect_memory(&self) -> memory::MemoryTransport {
        let (client, server) = memory::pair();
        self.serve(server);
        client
    }

    /// Shuts the server down gracefully: stops accepting, refuses new
    /// handshakes and new requests (answered
    /// [`FunctionError::Unprocessed`](crate::FunctionError::Unprocessed)), lets
    /// the handlers already running finish for up to `grace`, then says
    /// goodbye to every player ([`GoodbyeCode::ShuttingDown`], which clients
    /// see as [`CloseReason::Remote`]). Calls still pending when the goodbye
    /// goes, either way, end [`FunctionError::Disconnected`](crate::FunctionError::Disconnected)
    /// at their callers; handlers still running are cancelled. Returns once
    /// every player is gone and every leave hook and
    /// [`on_player_removed`](Self::on_player_removed) hook has returned: a
    /// game that saves its players there can end the process after.
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
    }

    // ---- players ----

    /// The players connected now, in the order they joined.
    pub fn players(&self) -> Vec<Player> {
        read(&self.inner.players).all().cloned().collect()
    }

    /// Every connected player as one shared list (cheap: see `Directory`).
    fn all_players(&self) -> Arc<[Player]> {
        read(&self.inner.players).snapshot()
    }

    /// How many players are connected.
    pub fn player_count(&self) -> usize {
        read(&self.inner.players).len()
    }

    /// The player with this id, if connected.
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

    /// Calls `hook` for each player that leaves, with the reason.
    pub fn on_player_removed(&self, hook: impl Fn(&Player, &CloseReason) + Send + Sync + 'static) {
        write(&self.inner.removed).push(Arc::new(hook));
    }

    /// Decides who may join: `authenticator` gets each client's [`Hello`]
    /// and returns the identity the [`Player`] carries
    /// ([`Player::identity`]) or the reason to refuse it, which the client
    /// receives as [`ConnectError::Refused`](crate::ConnectError::Refused) with
    /// [`RefuseCode::Unauthorized`](crate::RefuseCode::Unauthorized). It runs as
    /// its own task, within the handshake deadline (5 s by default). Without
    /// one, every client with matching declarations joins.
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

    // ---- rooms ----

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

    // ---- calling clients ----

    /// Calls `remote` on `player`'s client with the remote's timeout (or the
    /// configured default, 10 s): [`invoke_with_timeout`](Self::invoke_with_timeout)
    /// with that timeout.
    pub fn invoke<'a, Req: Payload, Resp: Payload>(
        &'a self,
        player: &'a Player,
        remote: ClientFn<Req, Resp>,
        req: Req,
    ) -> impl Future<Output = Result<Resp, FunctionError>> + Send + 'a {
        let timeout = remote.timeout.unwrap_or(self.inner.config.default_timeout);
        self.invoke_with_timeout(player, remote, req, timeout)
    }

    /// Calls `remote` on `player`'s client with this timeout. Dropping the
    /// future cancels the call at the client too.
    pub async fn invoke_with_timeout<Req: Payload, Resp: Payload>(
        &self,
        player: &Player,
        remote: ClientFn<Req, Resp>,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp, FunctionError> {
        let endpoint = &self.inner.endpoint;
        let pending = endpoint.start_call(Some(player.inner.conn.clone()), player, &remote, &req, timeout)?;
        endpoint.finish_call(player, &remote, pending.await)
    }

    /// Runs this server's own handler of `remote` as if `player` had called
    /// it: the same decoding, validation and errors, without the network.
    pub async fn predict<Req: Payload, Resp: Payload>(
        &self,
        player: &Player,
        remote: ServerFn<Req, Resp>,
        req: Req,
    ) -> Result<Resp, FunctionError> {
        self.inner.endpoint.predict(player.clone(), remote, &req).await
    }

    /// Hands `value` to this server's listeners of `remote` as if `player`
    /// had fired it.
    pub fn predict_event<T: Payload>(
        &self,
        player: &Player,
        remote: ServerEvent<T>,
        value: T,
    ) -> Result<(), EventError> {
        self.inner.endpoint.predict_event(player, remote, &value)
    }

    // ---- events ----

    /// Fires `remote` at one player.
    pub fn fire<T: Payload>(&self, player: &Player, remote: ClientEvent<T>, value: T) -> Result<(), EventError> {
        let (id, payload) = self.inner.endpoint.encode_event(&remote, &value)?;
        let sent = self.fire_one_encoded(player, id, remote.name, &payload);
        crate::payload::recycle(payload);
        sent
    }

    /// Fires `remote` at each of `players`. The payload is encoded once;
    /// the result says who it was queued for and who was skipped, and why.
    /// Fails only if the value cannot be encoded.
    pub fn fire_to<T: Payload>(
        &self,
        players: impl Players,
        remote: ClientEvent<T>,
        value: T,
    ) -> Result<Broadcast, EventError> {
        self.fire_many(&players.to_vec(), remote, &value)
    }

    /// Fires `remote` at every connected player; see [`fire_to`](Self::fire_to).
    pub fn fire_all<T: Payload>(&self, remote: ClientEvent<T>, value: T) -> Result<Broadcast, EventError> {
        self.fire_many(self.all_players().iter(), remote, &value)
    }

    /// Fires `remote` at every connected player but `except`; see
    /// [`fire_to`](Self::fire_to).
    pub fn fire_except<T: Payload>(
        &self,
        except: impl Players,
        remote: ClientEvent<T>,
        value: T,
    ) -> Result<Broadcast, EventError> {
        let all = self.all_players();
        self.fire_many(all.iter().filter(|p| !except.contains(p)), remote, &value)
    }

    /// Encodes once, queues for each player.
    pub(super) fn fire_many<'p, T: Payload>(
        &self,
        players: impl IntoIterator<Item = &'p Player>,
        remote: ClientEvent<T>,
        value: &T,
    ) -> Result<Broadcast, EventError> {
        let (id, payload) = self.inner.endpoint.encode_event(&remote, value)?;
        let outcome = self.fire_many_encoded(players, id, remote.name, &payload);
        crate::payload::recycle(payload);
        Ok(outcome)
    }
}

/// The server's end of one connection.
struct ServerSide {
    server: Arc<ServerInner>,
    player: Player,
    joined: bool,
    /// Given back when the player joins (or with the side, when it ends).
    handshake: Option<HandshakeSlot>,
}

impl Side for ServerSide {
    type Ctx = Player;

    fn endpoint(&self) -> &Endpoint<Player> {
        &self.server.endpoint
    }

    fn ctx(&self) -> &Player {
        &self.player
    }

    fn hello(&mut self, conn: &Arc<Conn>, token: Bytes) {
        if let Err(why) = self.server.admission() {
            self.server.refused(why);
            return conn.refuse_hello(RefuseCode::Unavailable, why);
        }
        let Some(authenticator) = read(&self.server.authenticator).clone() else {
            return conn.accept_hello();
        };
        let hello = Hello {
            token,
            addr: self.player.remote_addr(),
        };
        let (conn, player, server) = (conn.clone(), self.player.clone(), self.server.clone());
        let verdict = AssertUnwindSafe(authenticator(hello)).catch_unwind();
        tokio::spawn(
            async move {
                let verdict = verdict.await.unwrap_or_else(|_| {
                    tracing::error!("authenticator panicked");
                    Err("authentication failed".into())
                });
                // Shutdown may have begun, or the server filled up, while the
                // authenticator ran: nobody joins after the goodbyes.
                let verdict = match (verdict, server.admission()) {
                    (Ok(identity), Ok(())) => Ok(identity),
                    (Ok(_), Err(why)) => Err((RefuseCode::Unavailable, why.to_string())),
                    (Err(reason), _) => Err((RefuseCode::Unauthorized, reason)),
                };
                // The handshake deadline may have closed the session meanwhile;
                // then accept and refuse do nothing.
                match verdict {
                    Ok(identity) => {
                        let _ = player.inner.identity.set(identity);
                        conn.accept_hello();
                    }
                    Err((code, reason)) => {
                        tracing::info!(%reason, "client refused");
                        server.refused(match code {
                            RefuseCode::Unauthorized => "unauthorized",
                            _ => "unavailable",
                        });
                        conn.refuse_hello(code, &reason);
                    }
                }
            }
            .in_current_span(),
        );
    }

    fn connected(&mut self) {
        self.joined = true;
        self.handshake = None;
        let player = &self.player;
        write(&self.server.players).insert(player);
        self.server.present.send_modify(|present| *present += 1);
        if self.server.shutting_down.load(Ordering::SeqCst) {
            // Admitted just before shutdown began, and joined after it took
            // its list of players: it would wait for this one forever.
            player
                .inner
                .conn
                .close(GoodbyeCode::ShuttingDown, "server shutting down");
        }
        tracing::info!("player joined");
        let hooks = read(&self.server.added).clone();
        for hook in hooks {
            catch_user("on_player_added hook", None, || hook(player));
        }
    }

    fn drained(&mut self) {
        self.server.drained.notify_waiters();
    }

    fn closed(&mut self, reason: CloseReason) {
        let player = &self.player;
        let _ = player.inner.closed.set(reason.clone());
        player.inner.closed_wakers.notify_waiters();
        if !self.joined {
            tracing::debug!(%reason, "connection closed before joining");
            match &reason {
                // Counted with their reason when the server refused.
                CloseReason::RefusedPeer {
                    code: RefuseCode::Unauthorized | RefuseCode::Unavailable,
                    ..
                } => {}
                // Refused by the session itself.
                CloseReason::RefusedPeer {
                    code: RefuseCode::RemotesMismatch,
                    ..
                } => self.server.refused("remotes mismatch"),
                CloseReason::RefusedPeer {
                    code: RefuseCode::VersionMismatch,
                    ..
                } => self.server.refused("version mismatch"),
                _ => self.server.refused(&format!(
                    "closed before joining: {}",
                    crate::figures::reason_kind(&reason)
                )),
            }
            return;
        }
        *lock(&self.server.tallies)
            .disconnects
            .entry(crate::figures::departure_kind(&reason))
            .or_default() += 1;
        write(&self.server.players).remove(player);
        self.server.endpoint.chains.peer_left(player);
        let rooms = self.server.rooms.leave_all(player);
        match &reason {
            CloseReason::ProtocolViolation(_) | CloseReason::PeerTooSlow | CloseReason::IdleTimeout => {
                tracing::warn!(%reason, "player dropped")
            }
            _ => tracing::info!(%reason, "player left"),
        }
        for room in rooms {
            self.server.room_changed(&self.server.room_left, player, &room);
        }
        let hooks = read(&self.server.removed).clone();
        for hook in hooks {
            catch_user("on_player_removed hook", None, || hook(player, &reason));
        }
        // After the hooks, which may still read it.
        player.inner.data.clear();
        self.server.present.send_modify(|present| *present -= 1);
    }
}
