//! The client side: a volley client in a Bevy app, started and stopped
//! with commands, its state, and the remotes its systems receive, fire,
//! answer and call.

use std::sync::Mutex;
use std::time::Duration;

use bevy_app::{App, Plugin, PostUpdate, PreUpdate, Startup};
use bevy_ecs::prelude::*;
use tokio::sync::watch;
use volley::remote::Payload;
use volley::transport::memory::MemoryTransport;
use volley::{Client, ClientConfig, ClientEvent, ClientFn, ClientStatus, CloseReason, ConnectError, Protocol};
use volley::{ServerEvent, ServerFn};

use crate::calls::{add_calls, add_requests, ask_systems};
use crate::flow::{event_queue, pause_with, EventQueue, QueueLimit, DEFAULT_EVENT_QUEUE};
use crate::inbox::{inbox, Inbox};
use crate::messages::{FromServer, ToServer};
use crate::rtt::rtt_due;
use crate::runtime::{runtime_of, VolleyRuntime};
use crate::VolleySet;

/// Adds a volley client to the app: a [`VolleyClient`] resource, the
/// [`ClientState`] and [`ServerRtt`] resources, and [`Connected`] /
/// [`Disconnected`] / [`Reconnected`] / [`ConnectFailed`] messages. It
/// connects when a system triggers [`Connect`] (or at start-up, made with
/// [`tcp`](Self::tcp) or [`memory`](Self::memory)); nothing is dialled
/// while the plugin is added. Then say which remotes the systems use, with
/// [`ClientAppExt`].
pub struct VolleyClientPlugin {
    protocol: Protocol,
    config: ClientConfig,
    event_queue: usize,
    /// Where to connect at start-up, if anywhere.
    at_start: Mutex<Option<Connect>>,
}

impl std::fmt::Debug for VolleyClientPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolleyClientPlugin").finish_non_exhaustive()
    }
}

impl VolleyClientPlugin {
    /// A client for `protocol`'s remotes, connected by triggering
    /// [`Connect`].
    pub fn new(protocol: Protocol, config: ClientConfig) -> Self {
        Self {
            protocol,
            config,
            event_queue: DEFAULT_EVENT_QUEUE,
            at_start: Mutex::new(None),
        }
    }

    /// A client that connects over TCP to `addr` at start-up.
    pub fn tcp(protocol: Protocol, config: ClientConfig, addr: impl Into<String>) -> Self {
        Self::new(protocol, config).connect_at_start(Connect::tcp(addr))
    }

    /// A client of an in-process server (`Server::connect_memory()`),
    /// connected at start-up.
    pub fn memory(protocol: Protocol, config: ClientConfig, transport: MemoryTransport) -> Self {
        Self::new(protocol, config).connect_at_start(Connect::memory(transport))
    }

    /// How many events of one type wait for the app before the connection
    /// is paused (not read) until it catches up. Default:
    /// [`DEFAULT_EVENT_QUEUE`].
    pub fn with_event_queue(mut self, events: usize) -> Self {
        self.event_queue = events;
        self
    }

    /// Connects as `connect` says when the app starts (in `Startup`).
    pub fn connect_at_start(self, connect: Connect) -> Self {
        *self.at_start.lock().unwrap_or_else(|e| e.into_inner()) = Some(connect);
        self
    }
}

/// The client.
#[derive(Resource, Clone, Debug)]
pub struct VolleyClient {
    /// The volley client itself, for anything the plugin does not wrap.
    pub client: Client,
}

/// Where the client's connection stands: volley's [`ClientStatus`], kept
/// true on every path (a reconnect, a resume, a connection made with the
/// raw [`VolleyClient::client`]). With the `bevy_state` feature it is a
/// Bevy `States` too.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "bevy_state", derive(bevy_state::state::States))]
pub enum ClientState {
    /// No connection, none being made or tried again.
    #[default]
    Disconnected,
    /// Opening the transport, or in the handshake.
    Connecting,
    /// Connected.
    Connected,
    /// The connection was lost; resuming or redialing.
    Reconnecting,
}

impl From<ClientStatus> for ClientState {
    fn from(status: ClientStatus) -> Self {
        match status {
            ClientStatus::Disconnected => Self::Disconnected,
            ClientStatus::Connecting => Self::Connecting,
            ClientStatus::Connected => Self::Connected,
            ClientStatus::Reconnecting => Self::Reconnecting,
        }
    }
}

/// Connects the client: `commands.trigger(Connect::tcp("127.0.0.1:7777"))`.
/// A failure arrives as a [`ConnectFailed`] message.
#[derive(Event, Debug)]
pub struct Connect {
    /// Taken by the one observer that connects.
    to: Mutex<Option<Dial>>,
}

#[derive(Debug)]
enum Dial {
    Tcp(String),
    Memory(MemoryTransport),
}

impl Connect {
    /// Over TCP to `addr` (`host:port`).
    pub fn tcp(addr: impl Into<String>) -> Self {
        Self {
            to: Mutex::new(Some(Dial::Tcp(addr.into()))),
        }
    }

    /// To an in-process server, over its transport
    /// (`Server::connect_memory()`).
    pub fn memory(transport: MemoryTransport) -> Self {
        Self {
            to: Mutex::new(Some(Dial::Memory(transport))),
        }
    }
}

/// Says goodbye to the server and stops reconnecting:
/// `commands.trigger(Disconnect)`.
#[derive(Event, Debug, Clone, Copy, Default)]
pub struct Disconnect;

/// The connection opened (first, or again after a reconnect).
#[derive(Message, Clone, Debug)]
pub struct Connected;

/// An open connection closed; [`ClientState`] says whether the client is
/// getting it back.
#[derive(Message, Clone, Debug)]
pub struct Disconnected {
    /// Why.
    pub reason: CloseReason,
}

/// The connection came back after it was lost: resumed (the same player,
/// nothing lost) or redialed by the client's reconnect policy (a new
/// player).
#[derive(Message, Clone, Debug)]
pub struct Reconnected {
    /// Resumed rather than redialed.
    pub resumed: bool,
}

/// A [`Connect`] failed.
#[derive(Message, Debug)]
pub struct ConnectFailed {
    /// Why, as volley says.
    pub error: ConnectError,
}

/// What volley's hooks and connect tasks tell the ECS.
enum Change {
    Failed(ConnectError),
    Disconnected(CloseReason),
    Reconnected { resumed: bool },
}

/// The sending end of the changes' inbox, for the connect observer.
#[derive(Resource)]
struct Changes(tokio::sync::mpsc::UnboundedSender<Change>);

/// The round-trip time to the server, from volley's keep-alive pings (a
/// resource; the server has an [`Rtt`](crate::Rtt) per player). Refreshed
/// once a second; `None` while not connected or before the first pong.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq)]
pub struct ServerRtt(pub Option<Duration>);

/// The client's status as volley keeps it; read each frame with one atomic
/// load.
#[derive(Resource)]
struct StatusWatch(Mutex<watch::Receiver<ClientStatus>>);

impl Plugin for VolleyClientPlugin {
    fn build(&self, app: &mut App) {
        runtime_of(app);
        let client = Client::new(self.protocol.clone(), self.config.clone());
        let (tx, changes) = inbox::<Change>();
        let on_close = tx.clone();
        client.on_disconnect(move |reason| {
            let _ = on_close.send(Change::Disconnected(reason.clone()));
        });
        let on_back = tx.clone();
        client.on_reconnect(move || {
            let _ = on_back.send(Change::Reconnected { resumed: false });
        });
        let on_resumed = tx.clone();
        client.on_resumed(move || {
            let _ = on_resumed.send(Change::Reconnected { resumed: true });
        });
        let status = StatusWatch(Mutex::new(client.watch_status()));
        let at_start = self.at_start.lock().unwrap_or_else(|e| e.into_inner()).take();
        app.insert_resource(VolleyClient { client })
            .insert_resource(changes)
            .insert_resource(Changes(tx))
            .insert_resource(status)
            .insert_resource(QueueLimit(self.event_queue))
            .init_resource::<ClientState>()
            .init_resource::<ServerRtt>()
            .add_message::<Connected>()
            .add_message::<Disconnected>()
            .add_message::<Reconnected>()
            .add_message::<ConnectFailed>()
            .configure_sets(PreUpdate, VolleySet::Receive)
            .configure_sets(PostUpdate, VolleySet::Send)
            .add_observer(connect)
            .add_observer(disconnect)
            .add_systems(
                PreUpdate,
                (track_connection, refresh_rtt).chain().in_set(VolleySet::Receive),
            );
        if let Some(at_start) = at_start {
            let at_start = Mutex::new(Some(at_start));
            app.add_systems(Startup, move |mut commands: Commands| {
                if let Some(connect) = at_start.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    commands.trigger(connect);
                }
            });
        }
        #[cfg(feature = "bevy_state")]
        crate::states::mirror::<ClientState>(app);
    }
}

/// An observer: connects, in the background.
fn connect(connect: On<Connect>, client: Res<VolleyClient>, runtime: Res<VolleyRuntime>, changes: Res<Changes>) {
    let Some(dial) = connect.to.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let (client, failed) = (client.client.clone(), changes.0.clone());
    runtime.spawn(async move {
        let connected = match dial {
            Dial::Tcp(addr) => client.connect_tcp(addr).await,
            Dial::Memory(transport) => client.connect(transport).await,
        };
        if let Err(error) = connected {
            let _ = failed.send(Change::Failed(error));
        }
    });
}

/// An observer: says goodbye and stops reconnecting, in the background.
fn disconnect(_: On<Disconnect>, client: Res<VolleyClient>, runtime: Res<VolleyRuntime>) {
    let client = client.client.clone();
    runtime.spawn(async move { client.close().await });
}

fn track_connection(
    mut inbox: ResMut<Inbox<Change>>,
    status: ResMut<StatusWatch>,
    mut state: ResMut<ClientState>,
    mut connected: MessageWriter<Connected>,
    mut disconnected: MessageWriter<Disconnected>,
    mut reconnected: MessageWriter<Reconnected>,
    mut failed: MessageWriter<ConnectFailed>,
) {
    for change in inbox.drain() {
        match change {
            Change::Failed(error) => {
                tracing::warn!(%error, "volley client could not connect");
                failed.write(ConnectFailed { error });
            }
            Change::Disconnected(reason) => {
                disconnected.write(Disconnected { reason });
            }
            Change::Reconnected { resumed } => {
                reconnected.write(Reconnected { resumed });
            }
        }
    }
    let watch = status.into_inner().0.get_mut().unwrap_or_else(|e| e.into_inner());
    // One atomic load when nothing changed; the sender lives with the client.
    if watch.has_changed().unwrap_or(false) {
        let now = ClientState::from(*watch.borrow_and_update());
        if state.set_if_neq(now) && now == ClientState::Connected {
            connected.write(Connected);
        }
    }
}

fn refresh_rtt(
    client: Res<VolleyClient>,
    state: Res<ClientState>,
    mut rtt: ResMut<ServerRtt>,
    mut last: Local<Option<tokio::time::Instant>>,
) {
    // At once when the connection changes (a new one has a new rtt).
    if !rtt_due(&mut last, state.is_changed()) {
        return;
    }
    rtt.set_if_neq(ServerRtt(client.client.rtt()));
}

/// The remotes a client app's systems use.
pub trait ClientAppExt {
    /// Events the server fires arrive as [`FromServer<T>`] messages and
    /// observer events (several remotes may carry one type: the message
    /// names its remote).
    fn receive_from_server<T: Payload + Clone + Sync>(&mut self, remote: ClientEvent<T>) -> &mut Self;
    /// `T` messages written by systems (`MessageWriter<T>`) are fired late
    /// in the frame; `T` derives Bevy's `Message`.
    ///
    /// # Panics
    ///
    /// If another remote was registered for `T`: a message could not say
    /// which of the two it goes by.
    fn send_to_server<T: Message + Payload + Clone + Sync>(&mut self, remote: ServerEvent<T>) -> &mut Self;
    /// [`ToServer<T>`] messages written by systems are fired late in the
    /// frame: for a payload that cannot be a Bevy message (`String`, a
    /// type of another crate).
    ///
    /// # Panics
    ///
    /// If another remote was registered for `ToServer<T>`.
    fn send_wrapped_to_server<T: Payload + Clone + Sync>(&mut self, remote: ServerEvent<T>) -> &mut Self;
    /// Calls the server makes arrive as [`Request<Req, Resp>`](crate::Request)
    /// messages and observer events, answered through
    /// [`Responder<Resp>`](crate::Responder).
    fn answer_server<Req: Payload + Clone + Sync, Resp: Payload + Sync>(
        &mut self,
        remote: ClientFn<Req, Resp>,
    ) -> &mut Self;
    /// Entities with an [`Invoke::server`](crate::Invoke::server) of this
    /// remote call the server; the result arrives as
    /// [`CallDone<Resp>`](crate::CallDone).
    fn call_server<Req: Payload + Sync, Resp: Payload + Clone + Sync>(
        &mut self,
        remote: ServerFn<Req, Resp>,
    ) -> &mut Self;
}

fn client_of(app: &App) -> Client {
    app.world()
        .get_resource::<VolleyClient>()
        .expect("add VolleyClientPlugin before registering remotes")
        .client
        .clone()
}

/// The remote of outgoing events written as `M` messages.
#[derive(Resource)]
struct Outgoing<M, T: Send + Sync + 'static>(ServerEvent<T>, std::marker::PhantomData<fn(M)>);

/// A message a client's systems write to fire an event of type `T`: `T`
/// itself, or [`ToServer<T>`].
trait Outbound<T>: Message {
    fn event(&self) -> &T;
}

impl<T: Message> Outbound<T> for T {
    fn event(&self) -> &T {
        self
    }
}

impl<T: Send + Sync + 'static> Outbound<T> for ToServer<T> {
    fn event(&self) -> &T {
        &self.event
    }
}

/// Registers `remote` as the one `M` messages fire.
fn send_as<M: Outbound<T>, T: Payload + Clone + Sync>(app: &mut App, remote: ServerEvent<T>) -> &mut App {
    if crate::registry::only_for::<M>(app, remote.name()) {
        app.insert_resource(Outgoing::<M, T>(remote, std::marker::PhantomData))
            .add_message::<M>()
            .add_systems(PostUpdate, send_events::<M, T>.in_set(VolleySet::Send));
    }
    app
}

impl ClientAppExt for App {
    fn receive_from_server<T: Payload + Clone + Sync>(&mut self, remote: ClientEvent<T>) -> &mut Self {
        let (tx, flow, first) = event_queue::<FromServer<T>>(self, remote.name());
        if first {
            self.add_message::<FromServer<T>>()
                .add_systems(PreUpdate, deliver_events::<T>.in_set(VolleySet::Receive));
        }
        let name = remote.name();
        let client = client_of(self);
        let paused = client.clone();
        client.on_event(remote, move |_, event: T| {
            let _ = tx.send(FromServer { remote: name, event });
            flow.arrived(|| pause_with(&paused, Client::pause_reading, Client::resume_reading));
        });
        self
    }

    fn send_to_server<T: Message + Payload + Clone + Sync>(&mut self, remote: ServerEvent<T>) -> &mut Self {
        send_as::<T, T>(self, remote)
    }

    fn send_wrapped_to_server<T: Payload + Clone + Sync>(&mut self, remote: ServerEvent<T>) -> &mut Self {
        send_as::<ToServer<T>, T>(self, remote)
    }

    fn answer_server<Req: Payload + Clone + Sync, Resp: Payload + Sync>(
        &mut self,
        remote: ClientFn<Req, Resp>,
    ) -> &mut Self {
        let tx = add_requests::<Req, Resp>(self, remote.name());
        let name = remote.name();
        client_of(self).on_request(remote, move |_, request: Req| ask_systems(&tx, name, None, request));
        self
    }

    fn call_server<Req: Payload + Sync, Resp: Payload + Clone + Sync>(
        &mut self,
        remote: ServerFn<Req, Resp>,
    ) -> &mut Self {
        add_calls::<Req, Resp>(self, remote.name());
        self
    }
}

/// A system: incoming events become messages and observer events.
fn deliver_events<T: Payload + Clone + Sync>(
    mut inbox: ResMut<Inbox<FromServer<T>>>,
    queue: Res<EventQueue<FromServer<T>>>,
    mut messages: MessageWriter<FromServer<T>>,
    mut commands: Commands,
) {
    let mut taken = 0;
    for event in inbox.drain() {
        taken += 1;
        commands.trigger(event.clone());
        messages.write(event);
    }
    queue.flow.taken(taken);
}

fn send_events<M: Outbound<T>, T: Payload + Clone + Sync>(
    client: Res<VolleyClient>,
    remote: Res<Outgoing<M, T>>,
    mut messages: MessageReader<M>,
) {
    for message in messages.read() {
        if let Err(e) = client.client.fire(remote.0, message.event().clone()) {
            tracing::warn!(remote = remote.0.name(), error = %e, "event not sent");
        }
    }
}
