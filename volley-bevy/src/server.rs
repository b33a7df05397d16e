//! The server side: a volley server in a Bevy app, players as entities,
//! and the remotes its systems receive, fire, answer and call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bevy_app::{App, Plugin, PostUpdate, PreUpdate};
use bevy_ecs::prelude::*;
use volley::remote::Payload;
use volley::{
    ClientEvent, ClientFn, CloseReason, Player, PlayerId, Protocol, Server, ServerConfig, ServerEvent, ServerFn,
};

use crate::calls::{ask_systems, deliver_requests, finish_calls, start_calls, CallDone, Caller, Request, Responder};
use crate::inbox::{inbox, Inbox};
use crate::messages::{FromClient, Target, ToClients};
use crate::runtime::VolleyRuntime;
use crate::{register_once, VolleySet};

/// Adds a volley server to the app: a [`VolleyServer`] resource, players as
/// entities ([`NetPlayer`], with their round-trip time in [`Rtt`]), and
/// [`PlayerJoined`] / [`PlayerLeft`] messages. Then say which remotes the
/// systems use, with [`ServerAppExt`].
#[derive(Debug)]
pub struct VolleyServerPlugin {
    /// The server: built from a protocol and settings, or given.
    server: ServerSource,
    tcp: Vec<String>,
}

#[derive(Debug)]
enum ServerSource {
    New(Protocol, Box<ServerConfig>),
    Given(Server),
}

impl VolleyServerPlugin {
    /// A server for `protocol`'s remotes.
    pub fn new(protocol: Protocol, config: ServerConfig) -> Self {
        Self {
            server: ServerSource::New(protocol, Box::new(config)),
            tcp: Vec::new(),
        }
    }

    /// Serves the app with a server the game built: a node of a cluster
    /// (`Server::with_adapter` with `volley-net-cluster`'s `NatsAdapter`),
    /// or one with middleware or listeners of its own. Built
    /// within the app's Tokio runtime ([`VolleyRuntime`](crate::VolleyRuntime)).
    pub fn from_server(server: Server) -> Self {
        Self {
            server: ServerSource::Given(server),
            tcp: Vec::new(),
        }
    }

    /// Listens for TCP clients on `addr` (bound when the plugin is added;
    /// [`VolleyServer::addrs`] says where).
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
    /// The addresses bound by [`VolleyServerPlugin::listen_tcp`].
    pub addrs: Vec<SocketAddr>,
}

/// A connected player, as an entity: spawned when it joins, despawned when
/// it leaves.
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

/// The player's smoothed round-trip time, from volley's keep-alive pings;
/// updated every frame. `None` until the first pong.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq)]
pub struct Rtt(pub Option<Duration>);

/// A player joined; its entity is spawned.
#[derive(Message, Clone, Debug)]
pub struct PlayerJoined {
    /// The player.
    pub player: PlayerId,
    /// Its entity.
    pub entity: Entity,
}

/// A player left; its entity is despawned.
#[derive(Message, Clone, Debug)]
pub struct PlayerLeft {
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

enum Presence {
    Joined(Player),
    Left(PlayerId, CloseReason),
}

impl Plugin for VolleyServerPlugin {
    fn build(&self, app: &mut App) {
        let runtime = runtime_of(app);
        let server = match &self.server {
            ServerSource::New(protocol, config) => Server::new(protocol.clone(), (**config).clone()),
            ServerSource::Given(server) => server.clone(),
        };
        let addrs = self
            .tcp
            .iter()
            .map(|addr| {
                let bound = runtime.block_on(server.listen_tcp(addr.clone()));
                bound.unwrap_or_else(|e| panic!("volley server cannot listen on {addr}: {e}"))
            })
            .collect();
        let (tx, presence) = inbox::<Presence>();
        let joined = tx.clone();
        server.on_player_added(move |player| {
            let _ = joined.send(Presence::Joined(player.clone()));
        });
        server.on_player_removed(move |player, reason| {
            let _ = tx.send(Presence::Left(player.id(), reason.clone()));
        });
        app.insert_resource(VolleyServer { server, addrs })
            .insert_resource(presence)
            .init_resource::<PlayerEntities>()
            .add_message::<PlayerJoined>()
            .add_message::<PlayerLeft>()
            .configure_sets(PreUpdate, VolleySet::Receive)
            .configure_sets(PostUpdate, VolleySet::Send)
            .add_systems(PreUpdate, (sync_players, update_rtt).chain().in_set(VolleySet::Receive));
    }
}

/// The app's runtime, inserted if it has none.
pub(crate) fn runtime_of(app: &mut App) -> VolleyRuntime {
    if let Some(runtime) = app.world().get_resource::<VolleyRuntime>() {
        return runtime.clone();
    }
    let runtime = VolleyRuntime::current_or_new();
    app.insert_resource(runtime.clone());
    runtime
}

/// Spawns and despawns player entities; runs before the remotes' messages
/// are delivered, so a joining player's events name its entity.
fn sync_players(
    mut commands: Commands,
    inbox: Res<Inbox<Presence>>,
    mut entities: ResMut<PlayerEntities>,
    mut joined: MessageWriter<PlayerJoined>,
    mut left: MessageWriter<PlayerLeft>,
) {
    for change in inbox.drain() {
        match change {
            Presence::Joined(player) => {
                let id = player.id();
                let entity = commands.spawn((NetPlayer { player }, Rtt::default())).id();
                entities.0.insert(id, entity);
                joined.write(PlayerJoined { player: id, entity });
            }
            Presence::Left(player, reason) => {
                if let Some(entity) = entities.0.remove(&player) {
                    commands.entity(entity).despawn();
                }
                left.write(PlayerLeft { player, reason });
            }
        }
    }
}

fn update_rtt(mut players: Query<(&NetPlayer, &mut Rtt)>) {
    for (player, mut rtt) in &mut players {
        let now = player.player.rtt();
        if rtt.0 != now {
            rtt.0 = now;
        }
    }
}

/// The remotes a server app's systems use.
pub trait ServerAppExt {
    /// Events clients fire arrive as [`FromClient<T>`] messages.
    fn receive_from_clients<T: Payload + Clone + Sync>(&mut self, remote: ServerEvent<T>) -> &mut Self;
    /// [`ToClients<T>`] messages written by systems are fired late in the
    /// frame.
    fn send_to_clients<T: Payload + Clone + Sync>(&mut self, remote: ClientEvent<T>) -> &mut Self;
    /// Calls clients make arrive as [`Request<Req, Resp>`] messages, answered
    /// through [`Responder<Resp>`].
    fn answer_clients<Req: Payload + Sync, Resp: Payload + Sync>(&mut self, remote: ServerFn<Req, Resp>) -> &mut Self;
    /// Entities with an [`Invoke<Req, Resp>`](crate::Invoke) call a player;
    /// the result arrives as [`CallDone<Resp>`].
    fn call_clients<Req: Payload + Sync, Resp: Payload + Sync>(&mut self, remote: ClientFn<Req, Resp>) -> &mut Self;
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
        register_once::<FromClient<T>>(self, remote.name());
        let (tx, events) = inbox::<FromClient<T>>();
        server_of(self).on_event(remote, move |player: Player, event: T| {
            let _ = tx.send(FromClient {
                player: player.id(),
                entity: None,
                event,
            });
        });
        self.insert_resource(events).add_message::<FromClient<T>>().add_systems(
            PreUpdate,
            receive_events::<T>.after(sync_players).in_set(VolleySet::Receive),
        )
    }

    fn send_to_clients<T: Payload + Clone + Sync>(&mut self, remote: ClientEvent<T>) -> &mut Self {
        register_once::<ToClients<T>>(self, remote.name());
        self.insert_resource(Outgoing(remote))
            .add_message::<ToClients<T>>()
            .add_systems(PostUpdate, send_events::<T>.in_set(VolleySet::Send))
    }

    fn answer_clients<Req: Payload + Sync, Resp: Payload + Sync>(&mut self, remote: ServerFn<Req, Resp>) -> &mut Self {
        register_once::<Request<Req, Resp>>(self, remote.name());
        let (tx, incoming) = inbox();
        server_of(self).on_request(remote, move |player: Player, request: Req| {
            ask_systems(&tx, Some(player.id()), request)
        });
        self.insert_resource(incoming)
            .init_resource::<Responder<Resp>>()
            .add_message::<Request<Req, Resp>>()
            .add_systems(PreUpdate, deliver_requests::<Req, Resp>.in_set(VolleySet::Receive))
    }

    fn call_clients<Req: Payload + Sync, Resp: Payload + Sync>(&mut self, remote: ClientFn<Req, Resp>) -> &mut Self {
        register_once::<CallDone<Resp>>(self, remote.name());
        let server = server_of(self);
        let (done, finished) = inbox();
        let start = move |to: Option<PlayerId>, request: Req| {
            let server = server.clone();
            let call = async move {
                let player = to
                    .and_then(|id| server.player(id))
                    .ok_or(volley::FunctionError::Disconnected)?;
                server.invoke(&player, remote, request).await
            };
            Box::pin(call) as _
        };
        self.insert_resource(Caller {
            start: Arc::new(start),
            done,
        })
        .insert_resource(finished)
        .add_message::<CallDone<Resp>>()
        .add_systems(PreUpdate, finish_calls::<Req, Resp>.in_set(VolleySet::Receive))
        .add_systems(PostUpdate, start_calls::<Req, Resp>.in_set(VolleySet::Send))
    }
}

/// The remote of outgoing events of type `T`.
#[derive(Resource)]
struct Outgoing<T: Send + Sync + 'static>(ClientEvent<T>);

fn receive_events<T: Payload + Clone + Sync>(
    inbox: Res<Inbox<FromClient<T>>>,
    entities: Res<PlayerEntities>,
    mut messages: MessageWriter<FromClient<T>>,
) {
    for mut message in inbox.drain() {
        message.entity = entities.get(message.player);
        messages.write(message);
    }
}

fn send_events<T: Payload + Clone + Sync>(
    server: Res<VolleyServer>,
    remote: Res<Outgoing<T>>,
    mut messages: MessageReader<ToClients<T>>,
) {
    let server = &server.server;
    for ToClients { to, event } in messages.read() {
        let recipients = match to {
            Target::Player(id) => server.to_ids([*id]),
            Target::Players(ids) => server.to_ids(ids.iter().copied()),
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
