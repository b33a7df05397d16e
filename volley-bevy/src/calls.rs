//! Remote calls in systems.
//!
//! Incoming: each call arrives as a [`Request`] message with a small
//! copyable [`RequestKey`]; any system answers it through
//! [`Responder`], in the same frame or a later one (a key can be kept in a
//! component). If nothing answers before the caller's deadline, the caller
//! gets `Timeout` and the key becomes a no-op; the same if the caller
//! cancels.
//!
//! Outgoing: a call is an entity with an [`Invoke`] component. Its result
//! arrives as a [`CallDone`] message naming the entity (the component is
//! removed then). Despawning the entity first cancels the call across the
//! wire.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bevy_ecs::prelude::{Commands, Component, Entity, Message, MessageWriter, Query, Res, ResMut, Resource};
use tokio::sync::{mpsc, oneshot};
use volley::{FunctionError, PlayerId, Reject};

use crate::inbox::Inbox;
use crate::runtime::VolleyRuntime;

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
/// with `MessageReader<Request<Req, Resp>>`, answer with
/// `ResMut<Responder<Resp>>`.
#[derive(Message, Debug, Clone)]
pub struct Request<Req: Send + Sync + 'static, Resp: Send + Sync + 'static> {
    /// The key to answer with.
    pub key: RequestKey,
    /// The calling player, on the server; `None` on a client (the server
    /// called).
    pub from: Option<PlayerId>,
    /// The request.
    pub request: Req,
    _answer: std::marker::PhantomData<fn() -> Resp>,
}

/// An incoming call on its way from volley's handler to the ECS.
pub(crate) struct Incoming<Req, Resp> {
    pub(crate) key: RequestKey,
    pub(crate) from: Option<PlayerId>,
    pub(crate) request: Req,
    pub(crate) answer: oneshot::Sender<Result<Resp, Reject>>,
}

/// The calls of functions answering `Resp` that wait for a system's answer.
#[derive(Resource)]
pub struct Responder<Resp: Send + Sync + 'static> {
    waiting: HashMap<RequestKey, oneshot::Sender<Result<Resp, Reject>>>,
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
    /// answered, timed out, or the caller cancelled).
    pub fn respond(&mut self, key: RequestKey, answer: Result<Resp, Reject>) -> bool {
        self.waiting.remove(&key).is_some_and(|tx| tx.send(answer).is_ok())
    }

    /// Calls waiting for an answer.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// The volley handler's side: hands the call to the ECS and waits for a
/// system's answer. Dropped by volley when the caller gives up, which makes
/// the key a no-op.
pub(crate) fn ask_systems<Req, Resp>(
    to_ecs: &mpsc::UnboundedSender<Incoming<Req, Resp>>,
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
            .unwrap_or_else(|_| Err(Reject::internal("no system answered")))
    }
}

/// A system: incoming calls become [`Request`] messages, and the keys of
/// calls whose caller gave up are forgotten.
pub(crate) fn deliver_requests<Req: Send + Sync + 'static, Resp: Send + Sync + 'static>(
    inbox: Res<Inbox<Incoming<Req, Resp>>>,
    mut responder: ResMut<Responder<Resp>>,
    mut requests: MessageWriter<Request<Req, Resp>>,
) {
    responder.waiting.retain(|_, tx| !tx.is_closed());
    for call in inbox.drain() {
        responder.waiting.insert(call.key, call.answer);
        requests.write(Request {
            key: call.key,
            from: call.from,
            request: call.request,
            _answer: std::marker::PhantomData,
        });
    }
}

type CallFuture<Resp> = Pin<Box<dyn Future<Output = Result<Resp, FunctionError>> + Send>>;

/// How calls of one function are made: by the server to a player, or by a
/// client to the server.
#[derive(Resource)]
pub(crate) struct Caller<Req, Resp> {
    pub(crate) start: Arc<dyn Fn(Option<PlayerId>, Req) -> CallFuture<Resp> + Send + Sync>,
    pub(crate) done: mpsc::UnboundedSender<Finished<Req, Resp>>,
}

/// A call's result on its way to the ECS.
pub(crate) struct Finished<Req, Resp> {
    entity: Entity,
    result: Result<Resp, FunctionError>,
    _request: std::marker::PhantomData<fn(Req)>,
}

/// An outgoing call: spawn an entity with it. On the server, `to` is the
/// player called; on a client it is ignored (calls go to the server).
#[derive(Component)]
pub struct Invoke<Req: Send + Sync + 'static, Resp: Send + Sync + 'static> {
    to: Option<PlayerId>,
    request: Option<Req>,
    /// The call's task, stopped (and the call cancelled across the wire)
    /// when the component goes: the entity despawned, or the result in.
    task: Option<AbortOnDrop>,
    _answer: std::marker::PhantomData<fn() -> Resp>,
}

impl<Req: Send + Sync + 'static, Resp: Send + Sync + 'static> std::fmt::Debug for Invoke<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invoke")
            .field("to", &self.to)
            .field("sent", &self.is_sent())
            .finish()
    }
}

impl<Req: Send + Sync + 'static, Resp: Send + Sync + 'static> Invoke<Req, Resp> {
    /// A call to player `to` (server side).
    pub fn player(to: PlayerId, request: Req) -> Self {
        Self {
            to: Some(to),
            request: Some(request),
            task: None,
            _answer: std::marker::PhantomData,
        }
    }

    /// A call to the server (client side).
    pub fn server(request: Req) -> Self {
        Self {
            to: None,
            request: Some(request),
            task: None,
            _answer: std::marker::PhantomData,
        }
    }

    /// Whether the call has been sent (it is, late in the frame it was
    /// spawned in).
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

/// The result of the call made by `entity`'s [`Invoke`].
#[derive(Message, Debug, Clone, PartialEq)]
pub struct CallDone<Resp: Send + Sync + 'static> {
    /// The entity that made the call.
    pub entity: Entity,
    /// What came back.
    pub result: Result<Resp, FunctionError>,
}

/// A system: sends the calls of new [`Invoke`] components.
pub(crate) fn start_calls<Req: Send + Sync + 'static, Resp: Send + Sync + 'static>(
    runtime: Res<VolleyRuntime>,
    caller: Res<Caller<Req, Resp>>,
    mut calls: Query<(Entity, &mut Invoke<Req, Resp>)>,
) {
    for (entity, mut call) in &mut calls {
        let Some(request) = call.request.take() else { continue };
        let future = (caller.start)(call.to, request);
        let done = caller.done.clone();
        let task = runtime.spawn(async move {
            let result = future.await;
            let _ = done.send(Finished {
                entity,
                result,
                _request: std::marker::PhantomData,
            });
        });
        call.task = Some(AbortOnDrop(task.abort_handle()));
    }
}

/// A system: results become [`CallDone`] messages, and their entities lose
/// the [`Invoke`] component.
pub(crate) fn finish_calls<Req: Send + Sync + 'static, Resp: Send + Sync + 'static>(
    inbox: Res<Inbox<Finished<Req, Resp>>>,
    mut commands: Commands,
    calls: Query<(), bevy_ecs::query::With<Invoke<Req, Resp>>>,
    mut done: MessageWriter<CallDone<Resp>>,
) {
    for Finished { entity, result, .. } in inbox.drain() {
        // Despawned meanwhile: its task was stopped; nothing to tell.
        if calls.get(entity).is_err() {
            continue;
        }
        if let Ok(mut e) = commands.get_entity(entity) {
            e.remove::<Invoke<Req, Resp>>();
        }
        done.write(CallDone { entity, result });
    }
}
