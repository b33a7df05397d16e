//! The server side: a volley server in a Bevy app, started and stopped with
//! commands, players as entities, and the remotes its systems receive,
//! fire, answer and call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bevy_app::{App, Plugin, PostUpdate, PreUpdate, Startup};
use bevy_ecs::prelude::*;
use volley::remote::Payload;
use volley::{
    ClientEvent, ClientFn, CloseReason, Player, PlayerId, Protocol, Server, ServerConfig, ServerEvent, ServerFn,
};

use crate::calls::{add_calls, add_requests, ask_systems};
use crate::flow::{event_queue, pause_with, EventQueue, QueueLimit, DEFAULT_EVENT_QUEUE};
use crate::inbox::{inbox, Inbox};
use crate::messages::{FromClient, Target, ToClients};
use crate::rtt::rtt_due;
use crate::runtime::{runtime_of, VolleyRuntime};
use crate::VolleySet;

/// Adds a volley server to the app: a [`VolleyServer`] resource, the
/// [`ServerState`] resource, players as entities ([`NetPlayer`], with their
/// round-trip time in [`Rtt`]), and [`PlayerJoined`] / [`PlayerLeft`]
/// messages. It listens when a system triggers [`StartServer`] (or at
/// start-up, for each [`listen_tcp`](Self::listen_tcp)); nothing is bound
/// while the plugin is added. Then say which remotes the systems use, with
/// [`ServerAppExt`].
#[derive(Debug)]
pub struct VolleyServerPlugin {
    /// The server: built from a protocol and settings, or given.
    server: ServerSource,
    tcp: Vec<String>,
    event_queue: usize,
}

#[derive(Debug)]
enum ServerSource {
    New(Protocol, Box<ServerConfig>),
    Given(Server),
}

impl VolleyServerPlugin {
    /// A server for `protocol`'s remotes.
    ///
    /// # Panics
    ///
    /// When added, if `config` cannot work (`ServerConfig::validate`).
    pub fn new(protocol: Protocol, config: ServerConfig) -> Self {
        Self {
            server: ServerSource::New(protocol, Box::new(config)),
            tcp: Vec::new(),
            event_queue: DEFAULT_EVENT_QUEUE,
        }
    }

    /// Serves the app with a server the game built: a node of a cluster
    /// (`Server::with_adapter` with `volley-net-cluster`'s `NatsAdapter`),
    /// or one with middleware or listeners of its own. It is
    /// [`ServerState::Running`] from the start.
    pub fn from_server(server: Server) -> Self {
        Self {
            server: ServerSource::Given(server),
            tcp: Vec::new(),
            event_queue: DEFAULT_EVENT_QUEUE,
        }
    }

    /// How many events of one type wait for the app before the players
    /// sending them are paused (not read) until it catches up. Default:
    /// [`DEFAULT_EVENT_QUEUE`].
    pub fn with_event_queue(mut self, events: usize) -> Self {
        self.event_queue = events;
        self
    }

    /// Listens for TCP clients on `addr` from start-up (a [`StartServer`]
    /// triggered in `Startup`).
    pub fn listen_tcp(mut self, addr: impl Into<String>) -> Self {
        self.tcp.push(addr.into());
        self
    }
}

/// The server, and where it listens.
#[derive(Resource, Clone, Debug)]
pub struct VolleyServer {
    /// The volley server itself, for anything the plugin does not wrap
    /// (rooms, other transports, middleware).
    pub server: Server,
    /// The addresses bound by [`StartServer`] so far.
    pub addrs: Vec<SocketAddr>,
}

/// Whether the server serves. With the `bevy_state` feature it is a Bevy
/// `States` too.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "bevy_state", derive(bevy_state::state::States))]
pub enum ServerState {
    /// Not listening yet, or shut down by [`StopServer`].
    #[default]
    Stopped,
    /// Listening (a [`StartServer`] succeeded), or built by the game.
    Running,
}

/// Listens for clients: `commands.trigger(StartServer::tcp("0.0.0.0:7777"))`.
/// Success arrives as [`ServerStarted`], failure as [`ServerFailed`]; a
/// server listens on as many addresses as it is started on.
#[derive(Event, Debug, Clone)]
pub struct StartServer {
    /// Where to listen; `None`: in memory only.
    tcp: Option<String>,
}

impl StartServer {
    /// On TCP, at `addr` (`host:port`; port 0 picks a free one).
    pub fn tcp(addr: impl Into<String>) -> Self {
        Self { tcp: Some(addr.into()) }
    }

    /// In memory only: binds nothing (in-process clients connect with
    /// `Server::connect_memory`, running or not), but the server is
    /// [`ServerState::Running`] from the next frame, for what waits on that
    /// (tests, a single-process game, replicon's server state).
    pub fn memory() -> Self {
        Self { tcp: None }
    }
}

/// Shuts the server down gracefully (volley's `Server::shutdown`: running
/// handlers get `grace` to finish, every player is told goodbye); then
/// [`ServerStopped`]. A server stopped does not start again.
#[derive(Event, Debug, Clone, Copy)]
pub struct StopServer {
    /// How long running handlers may take.
    pub grace: Duration,
}

/// The server listens at `addr`.
#[derive(Message, Debug, Clone)]
pub struct ServerStarted {
    /// Where.
    pub addr: SocketAddr,
}

/// A [`StartServer`] failed.
#[derive(Message, Debug)]
pub struct ServerFailed {
    /// The address asked for.
    pub addr: String,
    /// Why.
    pub error: std::io::Error,
}

/// The server has shut down: every player told and gone.
#[derive(Message, Debug, Clone)]
pub struct ServerStopped;

/// A connected player, as an entity: spawned when it joins, despawned when
/// it leaves. Despawning it kicks the player.
#[derive(Component, Clone, Debug)]
pub struct NetPlayer {
    /// The player.
    pub player: Player,
}

impl NetPlayer {
    /// Its id.
    pub fn id(&self) -> PlayerId {
        self.player.id()
    }
}

/// A player's round-trip time, from volley's keep-alive pings: a component
/// of its entity (a client has [`ServerRtt`](crate::ServerRtt)). Refreshed
/// once a second; `None` until the first pong.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq)]
pub struct Rtt(pub Option<Duration>);

/// The rooms a player is in, on its entity: volley's rooms, mirrored at
/// the start of each frame (join and leave with volley's `Player::join` /
/// `Player::leave`, through [`NetPlayer::player`]).
#[derive(Component, Clone, Debug, Default, PartialEq, Eq)]
pub struct Rooms(pub std::collections::BTreeSet<String>);

impl Rooms {
    /// Whether the player is in `room`.
    pub fn contains(&self, room: &str) -> bool {
        self.0.contains(room)
    }
}

/// A player joined; its entity is spawned.
#[derive(Message, Clone, Debug)]
pub struct PlayerJoined {
    /// The player.
    pub player: PlayerId,
    /// Its entity.
    pub entity: Entity,
}

/// A player left: an event for the entity's observers, triggered while the
/// entity still exists, and a message; the entity is despawned after.
#[derive(Message, EntityEvent, Clone, Debug)]
pub struct PlayerLeft {
    /// Its entity (despawned by the time the message is read, unless the
    /// game despawned it first: then the entity is stale).
    pub entity: Entity,
    /// The player.
    pub player: PlayerId,
    /// Why.
    pub reason: CloseReason,
}

/// Players by id, to their entities.
#[derive(Resource, Default, Debug)]
pub struct PlayerEntities(HashMap<PlayerId, Entity>);

impl PlayerEntities {
    /// The entity of `player`, while it is connected.
    pub fn get(&self, player: PlayerId) -> Option<Entity> {
        self.0.get(&player).copied()
    }
}

/// What volley's hooks and tasks tell the ECS.
enum Change {
    Joined(Player),
    Left(PlayerId, CloseReason),
    RoomJoined(PlayerId, String),
    RoomLeft(PlayerId, String),
    Started(SocketAddr),
    /// Running in memory only.
    Running,
    Failed(String, std::io::Error),
    Stopped,
}

/// The sending end of the changes' inbox, for the observers.
#[derive(Resource)]
struct Changes(tokio::sync::mpsc::UnboundedSender<Change>);

/// Players' systems run before the remotes' messages are delivered, so a
/// joining player's first event names its entity.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
struct Players;

impl Plugin for VolleyServerPlugin {
    fn build(&self, app: &mut App) {
        runtime_of(app);
        let (server, running) = match &self.server {
            ServerSource::New(protocol, config) => (Server::new(protocol.clone(), (**config).clone()), false),
            ServerSource::Given(server) => (server.clone(), true),
        };
        let (tx, changes) = inbox::<Change>();
        let joined = tx.clone();
        server.on_player_added(move |player| {
            let _ = joined.send(Change::Joined(player.clone()));
        });
        let left = tx.clone();
        server.on_player_removed(move |player, reason| {
            let _ = left.send(Change::Left(player.id(), reason.clone()));
        });
        let joined_room = tx.clone();
        server.on_room_joined(move |player, room| {
            let _ = joined_room.send(Change::RoomJoined(player.id(), room.to_string()));
        });
        let left_room = tx.clone();
        server.on_room_left(move |player, room| {
            let _ = left_room.send(Change::RoomLeft(player.id(), room.to_string()));
        });
        let state = if running {
            ServerState::Running
        } else {
            ServerState::Stopped
        };
        app.insert_resource(VolleyServer {
            server,
            addrs: Vec::new(),
        })
        .insert_resource(changes)
        .insert_resource(Changes(tx))
        .insert_resource(state)
        .insert_resource(QueueLimit(self.event_queue))
        .init_resource::<PlayerEntities>()
        .add_message::<PlayerJoined>()
        .add_message::<PlayerLeft>()
        .add_message::<ServerStarted>()
        .add_message::<ServerFailed>()
        .add_message::<ServerStopped>()
        .configure_sets(PreUpdate, (Players, VolleySet::Receive).chain())
        .configure_sets(PostUpdate, VolleySet::Send)
        .add_observer(start)
        .add_observer(stop)
        .add_observer(kick_when_despawned)
        .add_systems(PreUpdate, (track_server, update_rtt).chain().in_set(Players));
        let at_start: Vec<StartServer> = self.tcp.iter().map(StartServer::tcp).collect();
        if !at_start.is_empty() {
            app.add_systems(Startup, move |mut commands: Commands| {
                for start in &at_start {
                    commands.trigger(start.clone());
                }
            });
        }
        #[cfg(feature = "bevy_state")]
        crate::states::mirror::<ServerState>(app);
    }
}

/// An observer: binds a listener, in the background.
fn start(start: On<StartServer>, server: Res<VolleyServer>, runtime: Res<VolleyRuntime>, changes: Res<Changes>) {
    let (server, changes) = (server.server.clone(), changes.0.clone());
    let Some(addr) = start.tcp.clone() else {
        let _ = changes.send(Change::Running);
        return;
    };
    runtime.spawn(async move {
        let _ = changes.send(match server.listen_tcp(addr.clone()).await {
            Ok(bound) => Change::Started(bound),
            Err(error) => Change::Failed(addr, error),
        });
    });
}

/// An observer: shuts the server down, in the background.
fn stop(stop: On<StopServer>, server: Res<VolleyServer>, runtime: Res<VolleyRuntime>, changes: Res<Changes>) {
    let (server, changes, grace) = (server.server.clone(), changes.0.clone(), stop.grace);
    runtime.spawn(async move {
        server.shutdown(grace).await;
        let _ = changes.send(Change::Stopped);
    });
}

/// An observer: a player entity the game despawns kicks its player (one
/// that already left is not told twice).
fn kick_when_despawned(gone: On<Remove, NetPlayer>, players: Query<&NetPlayer>) {
    if let Ok(net) = players.get(gone.entity) {
        if net.player.is_connected() {
            net.player.kick("removed by the game");
        }
    }
}

/// Spawns and despawns player entities and follows the listeners.
#[allow(clippy::too_many_arguments)]
fn track_server(
    mut commands: Commands,
    mut inbox: ResMut<Inbox<Change>>,
    mut server: ResMut<VolleyServer>,
    mut state: ResMut<ServerState>,
    mut entities: ResMut<PlayerEntities>,
    mut joined: MessageWriter<PlayerJoined>,
    mut left: MessageWriter<PlayerLeft>,
    mut started: MessageWriter<ServerStarted>,
    mut failed: MessageWriter<ServerFailed>,
    mut stopped: MessageWriter<ServerStopped>,
    mut rooms: Query<&mut Rooms>,
) {
    for change in inbox.drain() {
        match change {
            Change::Joined(player) => {
                let id = player.id();
                let rooms = Rooms(player.rooms().into_iter().collect());
                let entity = commands.spawn((NetPlayer { player }, Rtt::default(), rooms)).id();
                entities.0.insert(id, entity);
                joined.write(PlayerJoined { player: id, entity });
            }
            Change::Left(player, reason) => {
                let Some(entity) = entities.0.remove(&player) else {
                    continue;
                };
                let gone = PlayerLeft { entity, player, reason };
                // Observers first, the entity still there; then it goes.
                commands.trigger(gone.clone());
                commands.entity(entity).try_despawn();
                left.write(gone);
            }
            Change::RoomJoined(player, room) => {
                if let Some(mut rooms) = entities.get(player).and_then(|e| rooms.get_mut(e).ok()) {
                    rooms.0.insert(room);
                }
            }
            Change::RoomLeft(player, room) => {
                if let Some(mut rooms) = entities.get(player).and_then(|e| rooms.get_mut(e).ok()) {
                    rooms.0.remove(&room);
                }
            }
            Change::Started(addr) => {
                tracing::info!(%addr, "volley server listening");
                server.addrs.push(addr);
                state.set_if_neq(ServerState::Running);
                started.write(ServerStarted { addr });
            }
            Change::Running => {
                state.set_if_neq(ServerState::Running);
            }
            Change::Failed(addr, error) => {
                tracing::warn!(%addr, %error, "volley server could not listen");
                failed.write(ServerFailed { addr, error });
            }
            Change::Stopped => {
                state.set_if_neq(ServerState::Stopped);
                stopped.write(ServerStopped);
            }
        }
    }
}

fn update_rtt(mut players: Query<(&NetPlayer, &mut Rtt)>, mut last: Local<Option<tokio::time::Instant>>) {
    if !rtt_due(&mut last, false) {
        return;
    }
    for (net, mut rtt) in &mut players {
        rtt.set_if_neq(Rtt(net.player.rtt()));
    }
}

/// The remotes a server app's systems use.
pub trait ServerAppExt {
    /// Events clients fire arrive as [`FromClient<T>`] messages and observer
    /// events (several remotes may carry one type: the message names its
    /// remote).
    fn receive_from_clients<T: Payload + Clone + Sync>(&mut self, remote: ServerEvent<T>) -> &mut Self;
    /// [`ToClients<T>`] messages written by systems are fired late in the
    /// frame.
    ///
    /// # Panics
    ///
    /// If another remote was registered for `ToClients<T>`: a message could
    /// not say which of the two it goes by.
    fn send_to_clients<T: Payload + Clone + Sync>(&mut self, remote: ClientEvent<T>) -> &mut Self;
    /// Calls clients make arrive as [`Request<Req, Resp>`](crate::Request)
    /// messages and observer events, answered through
    /// [`Responder<Resp>`](crate::Responder).
    fn answer_clients<Req: Payload + Clone + Sync, Resp: Payload + Sync>(
        &mut self,
        remote: ServerFn<Req, Resp>,
    ) -> &mut Self;
    /// Entities with an [`Invoke::player`](crate::Invoke::player) or
    /// [`Invoke::entity`](crate::Invoke::entity) of this remote call a
    /// player; the result arrives as [`CallDone<Resp>`](crate::CallDone).
    fn call_clients<Req: Payload + Sync, Resp: Payload + Clone + Sync>(
        &mut self,
        remote: ClientFn<Req, Resp>,
    ) -> &mut Self;
}

fn server_of(app: &App) -> Server {
    app.world()
        .get_resource::<VolleyServer>()
        .expect("add VolleyServerPlugin before registering remotes")
        .server
        .clone()
}

impl ServerAppExt for App {
    fn receive_from_clients<T: Payload + Clone + Sync>(&mut self, remote: ServerEvent<T>) -> &mut Self {
        let (tx, flow, first) = event_queue::<FromClient<T>>(self, remote.name());
        if first {
            self.add_message::<FromClient<T>>()
                .add_systems(PreUpdate, receive_events::<T>.in_set(VolleySet::Receive));
        }
        let name = remote.name();
        server_of(self).on_event(remote, move |player: Player, event: T| {
            let _ = tx.send(FromClient {
                remote: name,
                player: player.id(),
                entity: None,
                event,
            });
            flow.arrived(|| pause_with(&player, Player::pause_reading, Player::resume_reading));
        });
        self
    }

    fn send_to_clients<T: Payload + Clone + Sync>(&mut self, remote: ClientEvent<T>) -> &mut Self {
        if crate::registry::only_for::<ToClients<T>>(self, remote.name()) {
            self.insert_resource(Outgoing(remote))
                .add_message::<ToClients<T>>()
                .add_systems(PostUpdate, send_events::<T>.in_set(VolleySet::Send));
        }
        self
    }

    fn answer_clients<Req: Payload + Clone + Sync, Resp: Payload + Sync>(
        &mut self,
        remote: ServerFn<Req, Resp>,
    ) -> &mut Self {
        let tx = add_requests::<Req, Resp>(self, remote.name());
        let name = remote.name();
        server_of(self).on_request(remote, move |player: Player, request: Req| {
            ask_systems(&tx, name, Some(player.id()), request)
        });
        self
    }

    fn call_clients<Req: Payload + Sync, Resp: Payload + Clone + Sync>(
        &mut self,
        remote: ClientFn<Req, Resp>,
    ) -> &mut Self {
        add_calls::<Req, Resp>(self, remote.name());
        self
    }
}

/// The remote of outgoing events of type `T`.
#[derive(Resource)]
struct Outgoing<T: Send + Sync + 'static>(ClientEvent<T>);

/// A system: incoming events become messages and observer events, naming
/// the player's entity.
fn receive_events<T: Payload + Clone + Sync>(
    mut inbox: ResMut<Inbox<FromClient<T>>>,
    queue: Res<EventQueue<FromClient<T>>>,
    entities: Res<PlayerEntities>,
    mut messages: MessageWriter<FromClient<T>>,
    mut commands: Commands,
) {
    let mut taken = 0;
    for mut event in inbox.drain() {
        taken += 1;
        event.entity = entities.get(event.player);
        commands.trigger(event.clone());
        messages.write(event);
    }
    queue.flow.taken(taken);
}

fn send_events<T: Payload + Clone + Sync>(
    server: Res<VolleyServer>,
    remote: Res<Outgoing<T>>,
    players: Query<&NetPlayer>,
    mut messages: MessageReader<ToClients<T>>,
) {
    let server = &server.server;
    let id_of = |entity: &Entity| players.get(*entity).ok().map(NetPlayer::id);
    for ToClients { to, event } in messages.read() {
        let recipients = match to {
            Target::Player(id) => server.to_ids([*id]),
            Target::Players(ids) => server.to_ids(ids.iter().copied()),
            Target::Entity(entity) => server.to_ids(id_of(entity)),
            Target::Entities(entities) => server.to_ids(entities.iter().filter_map(id_of)),
            Target::Room(room) => server.to_room(room),
            Target::RoomExcept(room, id) => server.to_room(room).except_id(*id),
            Target::All => server.to_all(),
            Target::AllExcept(id) => server.to_all().except_id(*id),
        };
        if let Err(e) = recipients.fire(remote.0, event.clone()) {
            tracing::warn!(remote = remote.0.name(), error = %e, "event not sent");
        }
    }
}
