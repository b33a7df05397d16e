//! Remote calls in systems and observers.
//!
//! Incoming: each call arrives as a [`Request`], both a message and an
//! observer event, with a small copyable [`RequestKey`]. A system or
//! observer answers it through [`Responder`] while the message lives (this
//! frame or the next), or takes a [`DeferredAnswer`] answer to keep for later (in
//! a component, say). A call nobody answers or defers in that time, or
//! whose `DeferredAnswer` is dropped unanswered, is answered `Unprocessed` at
//! once: the caller does not wait for its deadline. A caller that gives up
//! (deadline, cancel) makes the key a no-op.
//!
//! Outgoing: a call is an entity with an [`Invoke`] component, which names
//! its remote. Its result reaches the entity's observers
//! (`On<CallDone<Resp>>`) and readers of [`CallDone`] messages; then the
//! entity is despawned. Despawning it first cancels the call across the
//! wire.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bevy_ecs::prelude::*;
use tokio::sync::{mpsc, oneshot};
#[cfg(feature = "server")]
use volley::ClientFn;
#[cfg(feature = "client")]
use volley::ServerFn;
use volley::{FunctionError, PlayerId, Reject};

#[cfg(feature = "client")]
use crate::client::VolleyClient;
use crate::inbox::Inbox;
use crate::runtime::VolleyRuntime;
#[cfg(feature = "server")]
use crate::server::{NetPlayer, PlayerEntities, VolleyServer};

/// Names one incoming call until it is answered. Copy it anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestKey(u64);

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

impl RequestKey {
    pub(crate) fn next() -> Self {
        Self(NEXT_KEY.fetch_add(1, Ordering::Relaxed))
    }
}

/// An incoming call of a function taking `Req` and answering `Resp`: read
/// with `MessageReader<Request<Req, Resp>>` or observe with
/// `On<Request<Req, Resp>>`; answer with `ResMut<Responder<Resp>>`.
#[derive(Message, Event, Debug)]
pub struct Request<Req: Send + Sync + 'static, Resp: Send + Sync + 'static> {
    /// The key to answer with.
    pub key: RequestKey,
    /// The remote called (several functions may share the types).
    pub remote: &'static str,
    /// The calling player, on the server; `None` on a client (the server
    /// called).
    pub from: Option<PlayerId>,
    /// The calling player's entity, on the server, once spawned.
    pub entity: Option<Entity>,
    /// The request.
    pub request: Req,
    _answer: std::marker::PhantomData<fn() -> Resp>,
}

// By hand: a derived `Clone` would ask `Resp: Clone`.
impl<Req: Clone + Send + Sync + 'static, Resp: Send + Sync + 'static> Clone for Request<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            key: self.key,
            remote: self.remote,
            from: self.from,
            entity: self.entity,
            request: self.request.clone(),
            _answer: std::marker::PhantomData,
        }
    }
}

/// An incoming call on its way from volley's handler to the ECS.
pub(crate) struct Incoming<Req, Resp> {
    key: RequestKey,
    remote: &'static str,
    from: Option<PlayerId>,
    request: Req,
    answer: oneshot::Sender<Result<Resp, Reject>>,
}

/// How many frames a request waits in [`Responder`] for an answer or a
/// [`DeferredAnswer`]: as long as its message can be read (the frame it arrives
/// and the next).
const REQUEST_FRAMES: u8 = 2;

/// The calls of functions answering `Resp` that wait for an answer.
#[derive(Resource)]
pub struct Responder<Resp: Send + Sync + 'static> {
    waiting: HashMap<RequestKey, Waiting<Resp>>,
}

struct Waiting<Resp> {
    answer: oneshot::Sender<Result<Resp, Reject>>,
    /// Frames it has waited.
    frames: u8,
}

impl<Resp: Send + Sync + 'static> Default for Responder<Resp> {
    fn default() -> Self {
        Self {
            waiting: HashMap::new(),
        }
    }
}

impl<Resp: Send + Sync + 'static> std::fmt::Debug for Responder<Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl<Resp: Send + Sync + 'static> Responder<Resp> {
    /// Answers call `key`; `false` if nobody waits for it any more (it was
    /// answered or deferred, its time ran out, or the caller gave up).
    pub fn respond(&mut self, key: RequestKey, answer: Result<Resp, Reject>) -> bool {
        self.waiting.remove(&key).is_some_and(|w| w.answer.send(answer).is_ok())
    }

    /// Takes call `key` out to answer later, from any frame: `None` if
    /// nobody waits for it any more.
    pub fn defer(&mut self, key: RequestKey) -> Option<DeferredAnswer<Resp>> {
        self.waiting
            .remove(&key)
            .map(|w| DeferredAnswer { answer: Some(w.answer) })
    }

    /// Calls waiting for an answer (not counting deferred ones).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// An incoming call's answer, kept to give later ([`Responder::defer`]);
/// it can be a component. Dropped unanswered, the caller gets
/// `Unprocessed` at once.
#[derive(Component, Debug)]
pub struct DeferredAnswer<Resp: Send + Sync + 'static> {
    answer: Option<oneshot::Sender<Result<Resp, Reject>>>,
}

impl<Resp: Send + Sync + 'static> DeferredAnswer<Resp> {
    /// Answers; `false` if the caller gave up meanwhile (its deadline, or
    /// it cancelled).
    pub fn respond(mut self, answer: Result<Resp, Reject>) -> bool {
        self.answer.take().is_some_and(|tx| tx.send(answer).is_ok())
    }

    /// Whether the caller still waits.
    pub fn is_wanted(&self) -> bool {
        self.answer.as_ref().is_some_and(|tx| !tx.is_closed())
    }
}

/// Where a function's handlers send its calls: one per pair of types,
/// shared by every function with those types.
#[derive(Resource)]
pub(crate) struct RequestSender<Req, Resp>(pub(crate) mpsc::UnboundedSender<Incoming<Req, Resp>>);

/// The volley handler's side: hands the call to the ECS and waits for an
/// answer. Dropped by volley when the caller gives up, which makes the key
/// a no-op.
pub(crate) fn ask_systems<Req, Resp>(
    to_ecs: &mpsc::UnboundedSender<Incoming<Req, Resp>>,
    remote: &'static str,
    from: Option<PlayerId>,
    request: Req,
) -> impl Future<Output = Result<Resp, Reject>> + Send + 'static
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    let (answer, answered) = oneshot::channel();
    let sent = to_ecs.send(Incoming {
        key: RequestKey::next(),
        remote,
        from,
        request,
        answer,
    });
    async move {
        if sent.is_err() {
            return Err(Reject::internal("the app is gone"));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(Reject::internal("nothing answered the call in time")))
    }
}

/// A system: incoming calls become [`Request`] messages and observer
/// events; calls unanswered for [`REQUEST_FRAMES`], or whose caller gave
/// up, are let go (the caller hears `Unprocessed`, or nothing more).
pub(crate) fn deliver_requests<Req: Clone + Send + Sync + 'static, Resp: Send + Sync + 'static>(
    mut inbox: ResMut<Inbox<Incoming<Req, Resp>>>,
    mut responder: ResMut<Responder<Resp>>,
    #[cfg(feature = "server")] entities: Option<Res<PlayerEntities>>,
    mut requests: MessageWriter<Request<Req, Resp>>,
    mut commands: Commands,
) {
    responder.waiting.retain(|_, waiting| {
        waiting.frames = waiting.frames.saturating_add(1);
        waiting.frames < REQUEST_FRAMES && !waiting.answer.is_closed()
    });
    for call in inbox.drain() {
        responder.waiting.insert(
            call.key,
            Waiting {
                answer: call.answer,
                frames: 0,
            },
        );
        #[cfg(feature = "server")]
        let entity = call.from.zip(entities.as_ref()).and_then(|(id, e)| e.get(id));
        // Only a server has callers with entities.
        #[cfg(not(feature = "server"))]
        let entity = None;
        let request = Request {
            key: call.key,
            remote: call.remote,
            from: call.from,
            entity,
            request: call.request,
            _answer: std::marker::PhantomData,
        };
        commands.trigger(request.clone());
        requests.write(request);
    }
}

/// Where an outgoing call goes.
#[derive(Debug)]
enum Route<Req, Resp> {
    /// A client's call to the server.
    #[cfg(feature = "client")]
    Server(ServerFn<Req, Resp>),
    /// The server's call to a player, by id.
    #[cfg(feature = "server")]
    Player(ClientFn<Req, Resp>, PlayerId),
    /// The server's call to a player, by its entity.
    #[cfg(feature = "server")]
    Entity(ClientFn<Req, Resp>, Entity),
    /// The server's call to many players at once.
    #[cfg(feature = "server")]
    Group(ClientFn<Req, Resp>, Group),
}

/// Which players a group call asks.
#[cfg(feature = "server")]
#[derive(Debug, Clone)]
enum Group {
    Room(String),
    Players(Vec<PlayerId>),
    All,
}

/// An outgoing call: spawn an entity with it. Sent late in the frame it was
/// added in; its result comes as [`CallDone`], after which the entity is
/// despawned. Inserting a new `Invoke` on the entity starts a new call: the
/// old one's result is not delivered.
#[derive(Component)]
pub struct Invoke<Req: Send + Sync + 'static, Resp: Send + Sync + 'static> {
    route: Route<Req, Resp>,
    request: Option<Req>,
    timeout: Option<Duration>,
    /// Which call of the entity this is, so that a result of an earlier one
    /// is told apart.
    serial: u64,
    /// The call's task, stopped (and the call cancelled across the wire)
    /// when the component goes: the entity despawned, or the result in.
    task: Option<AbortOnDrop>,
}

static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

impl<Req: Send + Sync + 'static, Resp: Send + Sync + 'static> std::fmt::Debug for Invoke<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invoke")
            .field("remote", &self.remote())
            .field("sent", &self.is_sent())
            .finish()
    }
}

impl<Req: Send + Sync + 'static, Resp: Send + Sync + 'static> Invoke<Req, Resp> {
    fn new(route: Route<Req, Resp>, request: Req) -> Self {
        Self {
            route,
            request: Some(request),
            timeout: None,
            serial: NEXT_CALL.fetch_add(1, Ordering::Relaxed),
            task: None,
        }
    }

    #[cfg(feature = "client")]
    /// A client's call of `remote` on the server.
    pub fn server(remote: ServerFn<Req, Resp>, request: Req) -> Self {
        Self::new(Route::Server(remote), request)
    }

    #[cfg(feature = "server")]
    /// The server's call of `remote` on player `to`.
    pub fn player(remote: ClientFn<Req, Resp>, to: PlayerId, request: Req) -> Self {
        Self::new(Route::Player(remote, to), request)
    }

    #[cfg(feature = "server")]
    /// The server's call of `remote` on the player of entity `to` (a
    /// [`NetPlayer`]'s); `Disconnected` if it has none.
    pub fn entity(remote: ClientFn<Req, Resp>, to: Entity, request: Req) -> Self {
        Self::new(Route::Entity(remote, to), request)
    }

    #[cfg(feature = "server")]
    /// The server's call of `remote` on every member of `room` at once (on
    /// a cluster, every node's): each answer comes as a [`CallAnswer`] as
    /// it arrives, then [`GroupDone`], then the entity is despawned.
    pub fn room(remote: ClientFn<Req, Resp>, room: impl Into<String>, request: Req) -> Self {
        Self::new(Route::Group(remote, Group::Room(room.into())), request)
    }

    #[cfg(feature = "server")]
    /// The server's call of `remote` on these players at once; answers as
    /// for [`room`](Self::room).
    pub fn players(remote: ClientFn<Req, Resp>, to: impl IntoIterator<Item = PlayerId>, request: Req) -> Self {
        Self::new(Route::Group(remote, Group::Players(to.into_iter().collect())), request)
    }

    #[cfg(feature = "server")]
    /// The server's call of `remote` on every player at once; answers as
    /// for [`room`](Self::room).
    pub fn all(remote: ClientFn<Req, Resp>, request: Req) -> Self {
        Self::new(Route::Group(remote, Group::All), request)
    }

    /// This call's deadline instead of the remote's (a zero one is
    /// ignored).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// The remote called.
    pub fn remote(&self) -> &'static str {
        match &self.route {
            #[cfg(feature = "client")]
            Route::Server(remote) => remote.name(),
            #[cfg(feature = "server")]
            Route::Player(remote, _) | Route::Entity(remote, _) | Route::Group(remote, _) => remote.name(),
        }
    }

    /// Whether the call has been sent (it is, late in the frame it was
    /// added in).
    pub fn is_sent(&self) -> bool {
        self.task.is_some()
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The result of the call made by `entity`'s [`Invoke`]: an event for the
/// entity's observers and a message; the entity is despawned after.
#[derive(Message, EntityEvent, Debug, Clone, PartialEq)]
pub struct CallDone<Resp: Send + Sync + 'static> {
    /// The entity that made the call.
    pub entity: Entity,
    /// The remote called.
    pub remote: &'static str,
    /// What came back.
    pub result: Result<Resp, FunctionError>,
}

#[cfg(feature = "server")]
/// One player's answer to a group call ([`Invoke::room`],
/// [`Invoke::players`], [`Invoke::all`]), as it arrives: an event for the
/// call entity's observers and a message.
#[derive(Message, EntityEvent, Debug, Clone, PartialEq)]
pub struct CallAnswer<Resp: Send + Sync + 'static> {
    /// The entity that made the call.
    pub entity: Entity,
    /// The remote called.
    pub remote: &'static str,
    /// Who answered (or failed to: `Timeout`, `Disconnected`).
    pub player: PlayerId,
    /// What came back.
    pub result: Result<Resp, FunctionError>,
}

#[cfg(feature = "server")]
/// A group call is over: every player asked has its [`CallAnswer`]. An
/// event for the call entity's observers and a message; the entity is
/// despawned after.
#[derive(Message, EntityEvent, Debug, Clone, PartialEq, Eq)]
pub struct GroupDone {
    /// The entity that made the call.
    pub entity: Entity,
    /// The remote called.
    pub remote: &'static str,
    /// How many players were asked.
    pub asked: usize,
}

/// A call's result on its way to the ECS.
pub(crate) struct Finished<Req, Resp> {
    entity: Entity,
    serial: u64,
    outcome: Outcome<Resp>,
    _request: std::marker::PhantomData<fn(Req)>,
}

enum Outcome<Resp> {
    /// A call to one peer ended.
    Done(Result<Resp, FunctionError>),
    /// A group call's answer from one player.
    #[cfg(feature = "server")]
    Answer(PlayerId, Result<Resp, FunctionError>),
    /// A group call ended, having asked this many.
    #[cfg(feature = "server")]
    GroupDone(usize),
}

/// Where the calls' tasks send results: one per pair of types (one
/// `Invoke` type).
#[derive(Resource)]
pub(crate) struct ResultSender<Req, Resp>(pub(crate) mpsc::UnboundedSender<Finished<Req, Resp>>);

/// The `Invoke` components added since the system last ran.
type NewCalls<'w, 's, Req, Resp> = Query<'w, 's, (Entity, &'static mut Invoke<Req, Resp>), Added<Invoke<Req, Resp>>>;

/// A system: sends the calls of `Invoke` components added this frame. A
/// call to the server in an app without a client, or to players without a
/// server, ends `Disconnected`.
pub(crate) fn start_calls<Req: volley::remote::Payload + Sync, Resp: volley::remote::Payload + Sync>(
    runtime: Res<VolleyRuntime>,
    results: Res<ResultSender<Req, Resp>>,
    #[cfg(feature = "client")] client: Option<Res<VolleyClient>>,
    #[cfg(feature = "server")] server: Option<Res<VolleyServer>>,
    #[cfg(feature = "server")] players: Query<&NetPlayer>,
    mut calls: NewCalls<Req, Resp>,
) {
    for (entity, mut call) in &mut calls {
        let Some(request) = call.request.take() else { continue };
        let timeout = call.timeout;
        let done = results.0.clone();
        let serial = call.serial;
        let send = move |outcome: Outcome<Resp>| {
            let _ = done.send(Finished {
                entity,
                serial,
                outcome,
                _request: std::marker::PhantomData,
            });
        };
        let task = match &call.route {
            #[cfg(feature = "client")]
            Route::Server(remote) => {
                let remote = timeout.map_or(*remote, |t| remote.with_timeout(t));
                let client = client.as_ref().map(|c| c.client.clone());
                runtime.spawn(async move {
                    let result = match client {
                        Some(client) => client.invoke(remote, request).await,
                        None => Err(FunctionError::Disconnected),
                    };
                    send(Outcome::Done(result));
                })
            }
            #[cfg(feature = "server")]
            Route::Player(remote, _) | Route::Entity(remote, _) => {
                let remote = timeout.map_or(*remote, |t| remote.with_timeout(t));
                let player = match &call.route {
                    Route::Entity(_, to) => players.get(*to).ok().map(|p| p.player.clone()),
                    Route::Player(_, id) => server.as_ref().and_then(|s| s.server.player(*id)),
                    _ => None,
                };
                let server = server.as_ref().map(|s| s.server.clone());
                runtime.spawn(async move {
                    let result = match (server, player) {
                        (Some(server), Some(player)) => server.invoke(&player, remote, request).await,
                        _ => Err(FunctionError::Disconnected),
                    };
                    send(Outcome::Done(result));
                })
            }
            #[cfg(feature = "server")]
            Route::Group(remote, group) => {
                let remote = timeout.map_or(*remote, |t| remote.with_timeout(t));
                let recipients = server.as_ref().map(|s| match group {
                    Group::Room(room) => s.server.to_room(room),
                    Group::Players(ids) => s.server.to_ids(ids.iter().copied()),
                    Group::All => s.server.to_all(),
                });
                runtime.spawn(async move {
                    let Some(recipients) = recipients else {
                        return send(Outcome::Done(Err(FunctionError::Disconnected)));
                    };
                    // Within the runtime: the group's deadline is a Tokio timer.
                    let mut answers = recipients.invoke(remote, request);
                    while let Some((player, result)) = answers.next().await {
                        send(Outcome::Answer(player, result));
                    }
                    send(Outcome::GroupDone(answers.asked()));
                })
            }
        };
        call.task = Some(AbortOnDrop(task.abort_handle()));
    }
}

/// A system: results reach the entity's observers and [`CallDone`]
/// readers; the entity is despawned.
pub(crate) fn finish_calls<Req: Send + Sync + 'static, Resp: Clone + Send + Sync + 'static>(
    mut inbox: ResMut<Inbox<Finished<Req, Resp>>>,
    mut commands: Commands,
    calls: Query<&Invoke<Req, Resp>>,
    mut done: MessageWriter<CallDone<Resp>>,
    #[cfg(feature = "server")] mut answers: MessageWriter<CallAnswer<Resp>>,
    #[cfg(feature = "server")] mut groups_done: MessageWriter<GroupDone>,
) {
    for finished in inbox.drain() {
        let Finished {
            entity,
            serial,
            outcome,
            ..
        } = finished;
        // Despawned meanwhile (its task was stopped), or a newer call of
        // the same entity.
        let Ok(call) = calls.get(entity) else { continue };
        if call.serial != serial {
            continue;
        }
        let remote = call.remote();
        match outcome {
            Outcome::Done(result) => {
                let finished = CallDone { entity, remote, result };
                commands.trigger(finished.clone());
                done.write(finished);
                commands.entity(entity).try_despawn();
            }
            #[cfg(feature = "server")]
            Outcome::Answer(player, result) => {
                let answer = CallAnswer {
                    entity,
                    remote,
                    player,
                    result,
                };
                commands.trigger(answer.clone());
                answers.write(answer);
            }
            #[cfg(feature = "server")]
            Outcome::GroupDone(asked) => {
                let finished = GroupDone { entity, remote, asked };
                commands.trigger(finished.clone());
                groups_done.write(finished);
                commands.entity(entity).try_despawn();
            }
        }
    }
}

/// Adds the systems of `Invoke<Req, Resp>` calls, once for each pair of
/// types (the remote is in each `Invoke`).
pub(crate) fn add_calls<Req, Resp>(app: &mut bevy_app::App, remote: &'static str)
where
    Req: volley::remote::Payload + Sync,
    Resp: volley::remote::Payload + Clone + Sync,
{
    if !crate::registry::first_for::<Invoke<Req, Resp>>(app, remote) {
        return;
    }
    let (results, finished) = crate::inbox::inbox::<Finished<Req, Resp>>();
    app.insert_resource(ResultSender(results))
        .insert_resource(finished)
        .add_message::<CallDone<Resp>>()
        .add_systems(
            bevy_app::PreUpdate,
            finish_calls::<Req, Resp>.in_set(crate::VolleySet::Receive),
        )
        .add_systems(
            bevy_app::PostUpdate,
            start_calls::<Req, Resp>.in_set(crate::VolleySet::Send),
        );
    // Group calls' answers: the server's.
    #[cfg(feature = "server")]
    app.add_message::<CallAnswer<Resp>>().add_message::<GroupDone>();
}

/// Adds the systems of incoming calls with these types, once for each pair
/// of types, and gives where a function's handler sends its calls.
pub(crate) fn add_requests<Req, Resp>(
    app: &mut bevy_app::App,
    remote: &'static str,
) -> mpsc::UnboundedSender<Incoming<Req, Resp>>
where
    Req: volley::remote::Payload + Clone + Sync,
    Resp: volley::remote::Payload + Sync,
{
    if crate::registry::first_for::<Request<Req, Resp>>(app, remote) {
        let (tx, incoming) = crate::inbox::inbox::<Incoming<Req, Resp>>();
        app.insert_resource(RequestSender(tx))
            .insert_resource(incoming)
            .init_resource::<Responder<Resp>>()
            .add_message::<Request<Req, Resp>>()
            .add_systems(
                bevy_app::PreUpdate,
                deliver_requests::<Req, Resp>.in_set(crate::VolleySet::Receive),
            );
    }
    app.world().resource::<RequestSender<Req, Resp>>().0.clone()
}
