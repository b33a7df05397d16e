//! The client side: a volley client in a Bevy app, its connection state,
//! and the remotes its systems receive, fire, answer and call.

use std::sync::{Arc, Mutex};

use bevy_app::{App, Plugin, PostUpdate, PreUpdate};
use bevy_ecs::prelude::*;
use volley::remote::Payload;
use volley::transport::memory::MemoryTransport;
use volley::{Client, ClientConfig, ClientEvent, ClientFn, CloseReason, ConnectError, Protocol, ServerEvent, ServerFn};

use crate::calls::{ask_systems, deliver_requests, finish_calls, start_calls, CallDone, Caller, Request, Responder};
use crate::inbox::{deliver, inbox, Inbox};
use crate::messages::{FromServer, ToServer};
use crate::server::runtime_of;
use crate::{register_once, VolleySet};

/// Where the client connects.
enum Target {
    Tcp(String),
    /// An in-process server's transport (`Server::connect_memory`), taken
    /// when the plugin is added.
    Memory(Mutex<Option<MemoryTransport>>),
}

/// Adds a volley client to the app: a [`VolleyClient`] resource, the
/// [`ConnectionState`] resource, and [`Connected`] / [`Disconnected`] /
/// [`Reconnected`] messages. It starts connecting when added; a connection
/// that cannot be made shows as [`ConnectionState::Failed`]. Then say which
/// remotes the systems use, with [`ClientAppExt`].
pub struct VolleyClientPlugin {
    protocol: Protocol,
    config: ClientConfig,
    target: Target,
}

impl std::fmt::Debug for VolleyClientPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            Target::Tcp(addr) => addr.as_str(),
            Target::Memory(_) => "in-memory",
        };
        f.debug_struct("VolleyClientPlugin").field("target", &target).finish()
    }
}

impl VolleyClientPlugin {
    /// A client that connects over TCP to `addr`.
    pub fn tcp(protocol: Protocol, config: ClientConfig, addr: impl Into<String>) -> Self {
        Self {
            protocol,
            config,
            target: Target::Tcp(addr.into()),
        }
    }

    /// A client of an in-process server (`Server::connect_memory()`).
    pub fn memory(protocol: Protocol, config: ClientConfig, transport: MemoryTransport) -> Self {
        Self {
            protocol,
            config,
            target: Target::Memory(Mutex::new(Some(transport))),
        }
    }
}

/// The client.
#[derive(Resource, Clone, Debug)]
pub struct VolleyClient {
    /// The volley client itself, for anything the plugin does not wrap.
    pub client: Client,
}

/// Where the connection stands.
#[derive(Resource, Clone, Debug, Default, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting (or reconnecting).
    #[default]
    Connecting,
    /// Connected.
    Connected,
    /// Closed, with why; with a reconnect policy it may come back.
    Disconnected(CloseReason),
    /// The connection could not be made, with why.
    Failed(String),
}

/// The connection opened.
#[derive(Message, Clone, Debug)]
pub struct Connected;

/// The connection closed.
#[derive(Message, Clone, Debug)]
pub struct Disconnected {
    /// Why.
    pub reason: CloseReason,
}

/// The connection came back, by the client's reconnect policy.
#[derive(Message, Clone, Debug)]
pub struct Reconnected;

enum Change {
    Connected,
    Failed(ConnectError),
    Disconnected(CloseReason),
    Reconnected,
}

impl Plugin for VolleyClientPlugin {
    fn build(&self, app: &mut App) {
        let runtime = runtime_of(app);
        let client = Client::new(self.protocol.clone(), self.config.clone());
        let (tx, changes) = inbox::<Change>();
        let on_close = tx.clone();
        client.on_disconnect(move |reason| {
            let _ = on_close.send(Change::Disconnected(reason.clone()));
        });
        let on_back = tx.clone();
        client.on_reconnect(move || {
            let _ = on_back.send(Change::Reconnected);
        });
        let connecting = client.clone();
        let transport = match &self.target {
            Target::Tcp(addr) => Err(addr.clone()),
            Target::Memory(transport) => Ok(transport.lock().unwrap_or_else(|e| e.into_inner()).take()),
        };
        runtime.spawn(async move {
            let connected = match transport {
                Err(addr) => connecting.connect_tcp(addr).await,
                Ok(Some(transport)) => connecting.connect(transport).await,
                Ok(None) => Err(ConnectError::Io(std::io::Error::other(
                    "the in-memory transport was used already",
                ))),
            };
            let _ = tx.send(match connected {
                Ok(()) => Change::Connected,
                Err(e) => Change::Failed(e),
            });
        });
        app.insert_resource(VolleyClient { client })
            .insert_resource(changes)
            .init_resource::<ConnectionState>()
            .add_message::<Connected>()
            .add_message::<Disconnected>()
            .add_message::<Reconnected>()
            .configure_sets(PreUpdate, VolleySet::Receive)
            .configure_sets(PostUpdate, VolleySet::Send)
            .add_systems(PreUpdate, track_connection.in_set(VolleySet::Receive));
    }
}

fn track_connection(
    inbox: Res<Inbox<Change>>,
    mut state: ResMut<ConnectionState>,
    mut connected: MessageWriter<Connected>,
    mut disconnected: MessageWriter<Disconnected>,
    mut reconnected: MessageWriter<Reconnected>,
) {
    for change in inbox.drain() {
        match change {
            Change::Connected => {
                *state = ConnectionState::Connected;
                connected.write(Connected);
            }
            Change::Failed(error) => {
                tracing::warn!(%error, "volley client could not connect");
                *state = ConnectionState::Failed(error.to_string());
            }
            Change::Disconnected(reason) => {
                *state = ConnectionState::Disconnected(reason.clone());
                disconnected.write(Disconnected { reason });
            }
            Change::Reconnected => {
                *state = ConnectionState::Connected;
                reconnected.write(Reconnected);
            }
        }
    }
}

/// The remotes a client app's systems use.
pub trait ClientAppExt {
    /// Events the server fires arrive as [`FromServer<T>`] messages.
    fn receive_from_server<T: Payload + Clone + Sync>(&mut self, remote: ClientEvent<T>) -> &mut Self;
    /// [`ToServer<T>`] messages written by systems are fired late in the
    /// frame.
    fn send_to_server<T: Payload + Clone + Sync>(&mut self, remote: ServerEvent<T>) -> &mut Self;
    /// Calls the server makes arrive as [`Request<Req, Resp>`] messages,
    /// answered through [`Responder<Resp>`].
    fn answer_server<Req: Payload + Sync, Resp: Payload + Sync>(&mut self, remote: ClientFn<Req, Resp>) -> &mut Self;
    /// Entities with an [`Invoke<Req, Resp>`](crate::Invoke) call the
    /// server; the result arrives as [`CallDone<Resp>`].
    fn call_server<Req: Payload + Sync, Resp: Payload + Sync>(&mut self, remote: ServerFn<Req, Resp>) -> &mut Self;
}

fn client_of(app: &App) -> Client {
    app.world()
        .get_resource::<VolleyClient>()
        .expect("add VolleyClientPlugin before registering remotes")
        .client
        .clone()
}

/// The remote of outgoing events of type `T`.
#[derive(Resource)]
struct Outgoing<T: Send + Sync + 'static>(ServerEvent<T>);

impl ClientAppExt for App {
    fn receive_from_server<T: Payload + Clone + Sync>(&mut self, remote: ClientEvent<T>) -> &mut Self {
        register_once::<FromServer<T>>(self, remote.name());
        let (tx, events) = inbox::<FromServer<T>>();
        client_of(self).on_event(remote, move |_, event: T| {
            let _ = tx.send(FromServer { event });
        });
        self.insert_resource(events)
            .add_message::<FromServer<T>>()
            .add_systems(PreUpdate, deliver::<FromServer<T>>.in_set(VolleySet::Receive))
    }

    fn send_to_server<T: Payload + Clone + Sync>(&mut self, remote: ServerEvent<T>) -> &mut Self {
        register_once::<ToServer<T>>(self, remote.name());
        self.insert_resource(Outgoing(remote))
            .add_message::<ToServer<T>>()
            .add_systems(PostUpdate, send_events::<T>.in_set(VolleySet::Send))
    }

    fn answer_server<Req: Payload + Sync, Resp: Payload + Sync>(&mut self, remote: ClientFn<Req, Resp>) -> &mut Self {
        register_once::<Request<Req, Resp>>(self, remote.name());
        let (tx, incoming) = inbox();
        client_of(self).on_request(remote, move |_, request: Req| ask_systems(&tx, None, request));
        self.insert_resource(incoming)
            .init_resource::<Responder<Resp>>()
            .add_message::<Request<Req, Resp>>()
            .add_systems(PreUpdate, deliver_requests::<Req, Resp>.in_set(VolleySet::Receive))
    }

    fn call_server<Req: Payload + Sync, Resp: Payload + Sync>(&mut self, remote: ServerFn<Req, Resp>) -> &mut Self {
        register_once::<CallDone<Resp>>(self, remote.name());
        let client = client_of(self);
        let (done, finished) = inbox();
        let start = move |_: Option<volley::PlayerId>, request: Req| {
            let client = client.clone();
            Box::pin(async move { client.invoke(remote, request).await }) as _
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

fn send_events<T: Payload + Clone + Sync>(
    client: Res<VolleyClient>,
    remote: Res<Outgoing<T>>,
    mut messages: MessageReader<ToServer<T>>,
) {
    for ToServer { event } in messages.read() {
        if let Err(e) = client.client.fire(remote.0, event.clone()) {
            tracing::warn!(remote = remote.0.name(), error = %e, "event not sent");
        }
    }
}
