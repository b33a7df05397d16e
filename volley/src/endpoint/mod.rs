//! What both sides share above the connection: the registry of handlers and
//! listeners for the remotes this side receives, the bad-input hooks, and the
//! dispatch of each request and event through middleware to them. The
//! outgoing call path, and `predict`, is `call.rs` beside this; middleware
//! lists are `chains.rs`.
//!
//! `C` is what a handler is given about the peer: the calling
//! [`Player`](crate::Player) on the server, `()` on a client.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use futures_util::FutureExt;
use volley_proto::{Direction, RemoteId, Status};

use crate::chains::{Chains, Layer};
use crate::checks::Checks;
use crate::error::Reject;
use crate::figures::Figures;
use crate::guard::{catch_user, panic_detail};
use crate::locks::{read, write};
use crate::middleware::{BoxFuture, CallResult, Next, Request, Response, Terminal};
use crate::payload::{decode, encode, Answer};
use crate::remote::{Event, Function, Payload, Protocol};

mod call;
mod invocation;

pub(crate) use invocation::Invocation;

/// What a function handler gives the driver for one request.
pub(crate) enum Outcome {
    /// Finished already (synchronous handler, or refused before it ran).
    Ready(Answer),
    /// Work that may wait: the driver polls it once inline, and runs it as
    /// its own task if it is not done.
    Pending(Pin<Box<dyn Future<Output = Answer> + Send>>),
    /// The request did not decode or failed its check; the reason is logged
    /// and given to the bad-request hook, the caller gets `BadRequest`.
    Bad(String),
}

type Decode = Arc<dyn Fn(&[u8]) -> Result<Box<dyn Any + Send>, String> + Send + Sync>;
type Direct<C> = Arc<dyn Fn(C, &[u8]) -> Outcome + Send + Sync>;
type Listener<C> = Arc<dyn Fn(&C, &(dyn Any + Send)) + Send + Sync>;
type BadInputHook<C> = Arc<dyn Fn(&C, &BadInput) + Send + Sync>;

/// Input from a peer that was dropped because it did not decode or failed
/// validation, as given to the `on_bad_request` / `on_bad_response` hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BadInput {
    /// The remote's declared name.
    pub remote: &'static str,
    /// What was wrong; for logs, never sent to the peer.
    pub reason: String,
}

/// One function's handler, in the two forms the driver may need.
struct FnEntry<C> {
    /// Decode, check and handle in one typed step: the path without `call`
    /// middleware, which boxes nothing.
    direct: Direct<C>,
    /// Decode and check into type-erased arguments, for middleware.
    decode: Decode,
    /// The handler on type-erased arguments: the end of a middleware chain.
    terminal: Terminal<C>,
    /// Encodes the chain's type-erased result.
    encode: fn(&'static str, CallResult) -> Answer,
}

/// One event's listeners, all of the event's type.
struct EventEntry<C> {
    decode: Decode,
    listeners: Vec<Listener<C>>,
}

/// Handlers and listeners of an endpoint as one connection's driver last
/// read them, read again only after one changed.
///
/// Reading the endpoint's shared tables for every message would take their
/// lock and bump a reference count that the drivers of every connection
/// share: a cache line passed between cores on every call.
pub(crate) struct Snapshot<C> {
    /// The endpoint's `generation` when read; `u64::MAX` before the first read.
    generation: u64,
    functions: Vec<Option<Arc<FnEntry<C>>>>,
    events: Vec<Option<Arc<EventEntry<C>>>>,
}

impl<C> Snapshot<C> {
    pub(crate) fn new() -> Self {
        Self {
            generation: u64::MAX,
            functions: Vec::new(),
            events: Vec::new(),
        }
    }
}

pub(crate) struct Endpoint<C> {
    pub(crate) protocol: Protocol,
    functions: RwLock<Vec<Option<Arc<FnEntry<C>>>>>,
    events: RwLock<Vec<Option<Arc<EventEntry<C>>>>>,
    /// Counts changes to `functions` and `events`, so snapshots know when to
    /// read them again.
    generation: std::sync::atomic::AtomicU64,
    /// Middleware of every kind, and what applies to each remote.
    pub(crate) chains: Chains<C>,
    bad_request: RwLock<Vec<BadInputHook<C>>>,
    bad_response: RwLock<Vec<BadInputHook<C>>>,
    /// Counters of every remote, shared with each connection.
    pub(crate) figures: Arc<Figures>,
}

fn decode_erased<T: Payload>(checks: Checks<T>) -> Decode {
    Arc::new(move |bytes| decode::<T>(bytes, &checks).map(|v| Box::new(v) as Box<dyn Any + Send>))
}

/// Turns a handler's return (or panic) into the answer for the caller.
fn answer<Resp: Payload>(remote: &'static str, result: std::thread::Result<Result<Resp, Reject>>) -> Answer {
    match result {
        Ok(Ok(resp)) => match encode(&resp) {
            Ok(bytes) => (Status::Ok, bytes),
            Err(e) => {
                tracing::error!(remote, error = %e, "could not encode the handler's result");
                (Status::Unprocessed, Vec::new())
            }
        },
        Ok(Err(reject)) => reject.into_answer(remote),
        Err(panic) => {
            tracing::error!(remote, panic = %panic_detail(&*panic), "handler panicked");
            (Status::Unprocessed, Vec::new())
        }
    }
}

/// The end of a middleware chain, typed again: `Resp` back to an answer.
fn encode_erased<Resp: Payload>(remote: &'static str, result: CallResult) -> Answer {
    let result = result.map(|response| match response.into_inner().downcast::<Resp>() {
        Ok(resp) => Ok(*resp),
        Err(_) => Err(Reject::internal(format!(
            "middleware answered with a value that is not {}",
            std::any::type_name::<Resp>()
        ))),
    });
    answer(remote, Ok(result.and_then(|r| r)))
}

/// Catches a panic anywhere in a chain future; the caller sees `Unprocessed`.
fn guard_panics(remote: &'static str, fut: BoxFuture<CallResult>) -> BoxFuture<CallResult> {
    Box::pin(AssertUnwindSafe(fut).catch_unwind().map(move |r| {
        r.unwrap_or_else(|panic| {
            tracing::error!(remote, panic = %panic_detail(&*panic), "handler or middleware panicked");
            Err(Reject::internal("panicked"))
        })
    }))
}

impl<C: Clone + Send + Sync + 'static> Endpoint<C> {
    /// The endpoint of the side that handles the remotes going `handles`.
    pub(crate) fn new(protocol: Protocol, handles: Direction) -> Self {
        let n = protocol.len();
        let remotes = (0..n as RemoteId)
            .filter_map(|id| protocol.table().spec(id))
            .map(|spec| {
                let event = !matches!(spec.kind, volley_proto::RemoteKind::Function);
                (spec.name, event, spec.direction == handles)
            });
        Self {
            figures: Arc::new(Figures::new(remotes)),
            chains: Chains::new(n),
            protocol,
            functions: RwLock::new(vec![None; n]),
            events: RwLock::new(vec![None; n]),
            generation: std::sync::atomic::AtomicU64::new(0),
            bad_request: RwLock::new(Vec::new()),
            bad_response: RwLock::new(Vec::new()),
        }
    }

    /// The wire id of a remote this endpoint was built with.
    ///
    /// # Panics
    ///
    /// If the remote is not in the protocol: registering for an undeclared
    /// remote is a mistake to fix in code, so it fails at start-up.
    #[track_caller]
    pub(crate) fn declared_id(&self, name: &'static str) -> RemoteId {
        match self.protocol.id(name) {
            Some(id) => id,
            None => panic!("remote {name:?} is not declared in this volley Protocol"),
        }
    }

    #[track_caller]
    fn set_handler(&self, name: &'static str, entry: FnEntry<C>) {
        let id = self.declared_id(name);
        let replaced = write(&self.functions)[id as usize].replace(Arc::new(entry)).is_some();
        self.changed();
        if replaced {
            tracing::warn!(
                remote = name,
                "handler replaced: a function has one handler, the new one wins"
            );
        }
    }

    /// A handler or listener changed: snapshots must read the tables again.
    fn changed(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Brings `snapshot` up to date with the handlers and listeners.
    fn refresh(&self, snapshot: &mut Snapshot<C>) {
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        if snapshot.generation != generation {
            snapshot.functions.clone_from(&read(&self.functions));
            snapshot.events.clone_from(&read(&self.events));
            snapshot.generation = generation;
        }
    }

    /// Registers an async handler.
    #[track_caller]
    pub(crate) fn on_request<D, Req, Resp, F, Fut>(&self, remote: Function<D, Req, Resp>, handler: F)
    where
        Req: Payload,
        Resp: Payload,
        F: Fn(C, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Reject>> + Send + 'static,
    {
        let name = remote.name;
        let checks = self.protocol.request_checks(&remote);
        let handler = Arc::new(handler);
        // Building the future runs user code too; a panic there is the handler's.
        let start = {
            let handler = handler.clone();
            move |ctx: C, req: Req| std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx, req)))
        };
        let start_erased = start.clone();
        self.set_handler(
            name,
            FnEntry {
                decode: decode_erased(checks.clone()),
                direct: Arc::new(move |ctx, payload| {
                    let req = match decode(payload, &checks) {
                        Ok(req) => req,
                        Err(reason) => return Outcome::Bad(reason),
                    };
                    match start(ctx, req) {
                        Ok(fut) => Outcome::Pending(Box::pin(
                            AssertUnwindSafe(fut).catch_unwind().map(move |r| answer(name, r)),
                        )),
                        Err(panic) => Outcome::Ready(answer::<Resp>(name, Err(panic))),
                    }
                }),
                terminal: Arc::new(move |req: Request<C>| {
                    let (ctx, args) = req.into_parts();
                    let Ok(req) = args.downcast::<Req>() else {
                        return Box::pin(async { Err(Reject::internal("middleware replaced the arguments' type")) });
                    };
                    match start_erased(ctx, *req) {
                        Ok(fut) => Box::pin(fut.map(|r| r.map(Response::new))),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }),
                encode: encode_erased::<Resp>,
            },
        );
    }

    /// Registers a synchronous handler, run inline on the connection's task.
    #[track_caller]
    pub(crate) fn on_request_sync<D, Req, Resp, F>(&self, remote: Function<D, Req, Resp>, handler: F)
    where
        Req: Payload,
        Resp: Payload,
        F: Fn(C, Req) -> Result<Resp, Reject> + Send + Sync + 'static,
    {
        let name = remote.name;
        let checks = self.protocol.request_checks(&remote);
        let handler = Arc::new(handler);
        let erased = handler.clone();
        self.set_handler(
            name,
            FnEntry {
                decode: decode_erased(checks.clone()),
                direct: Arc::new(move |ctx, payload| match decode(payload, &checks) {
                    Ok(req) => Outcome::Ready(answer(
                        name,
                        std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx, req))),
                    )),
                    Err(reason) => Outcome::Bad(reason),
                }),
                terminal: Arc::new(move |req: Request<C>| {
                    let (ctx, args) = req.into_parts();
                    let result = match args.downcast::<Req>() {
                        Ok(req) => erased(ctx, *req).map(Response::new),
                        Err(_) => Err(Reject::internal("middleware replaced the arguments' type")),
                    };
                    Box::pin(std::future::ready(result))
                }),
                encode: encode_erased::<Resp>,
            },
        );
    }

    /// Adds a listener; every listener of an event sees every admitted firing.
    #[track_caller]
    pub(crate) fn on_event<D, T, F>(&self, remote: Event<D, T>, listener: F)
    where
        T: Payload + Clone,
        F: Fn(C, T) + Send + Sync + 'static,
    {
        let id = self.declared_id(remote.name);
        let name = remote.name;
        let listener: Listener<C> = Arc::new(move |ctx, value| match value.downcast_ref::<T>() {
            Some(value) => listener(ctx.clone(), value.clone()),
            None => tracing::error!(remote = name, "listener registered with another type than the event's"),
        });
        let mut events = write(&self.events);
        let slot = &mut events[id as usize];
        let mut entry = EventEntry {
            decode: decode_erased(self.protocol.event_checks(&remote)),
            listeners: slot.as_ref().map(|e| e.listeners.clone()).unwrap_or_default(),
        };
        entry.listeners.push(listener);
        *slot = Some(Arc::new(entry));
        drop(events);
        self.changed();
    }

    /// Adds middleware for one remote.
    #[track_caller]
    pub(crate) fn add_middleware_for(&self, name: &'static str, middleware: Layer<C>) {
        let id = self.declared_id(name);
        self.chains.add_for(id, middleware);
    }

    pub(crate) fn on_bad_request(&self, hook: impl Fn(&C, &BadInput) + Send + Sync + 'static) {
        write(&self.bad_request).push(Arc::new(hook));
    }

    pub(crate) fn on_bad_response(&self, hook: impl Fn(&C, &BadInput) + Send + Sync + 'static) {
        write(&self.bad_response).push(Arc::new(hook));
    }

    /// The peer's answer to our call did not decode or check.
    pub(crate) fn report_bad_response(&self, ctx: &C, remote: &'static str, reason: String) {
        if let Some(id) = self.protocol.id(remote) {
            self.figures.bad_input(id);
        }
        self.report(&self.bad_response, ctx, remote, reason);
    }

    fn report(&self, hooks: &RwLock<Vec<BadInputHook<C>>>, ctx: &C, remote: &'static str, reason: String) {
        let bad = BadInput { remote, reason };
        for hook in read(hooks).clone() {
            catch_user("bad input hook", Some(remote), || hook(ctx, &bad));
        }
    }

    pub(crate) fn report_bad_request(&self, ctx: &C, remote: RemoteId, reason: String) {
        self.figures.bad_input(remote);
        let name = self.protocol.name(remote);
        tracing::warn!(remote = name, %reason, "bad request dropped");
        self.report(&self.bad_request, ctx, name, reason);
    }

    /// Handles one request from the peer for function `remote`.
    pub(crate) fn handle_request(
        &self,
        snapshot: &mut Snapshot<C>,
        ctx: C,
        remote: RemoteId,
        payload: &[u8],
    ) -> Outcome {
        // Looked up only when needed: with a thousand connections, the
        // protocol's table is a cache miss away on every request.
        let name = || self.protocol.name(remote);
        self.refresh(snapshot);
        let Some(entry) = snapshot.functions.get(remote as usize).and_then(Option::as_ref) else {
            tracing::debug!(remote = name(), "no handler registered");
            return Outcome::Ready((Status::Unprocessed, Vec::new()));
        };
        let applied = match self.chains.admit(&ctx, remote, name, payload.len()) {
            Ok(Some(applied)) if !applied.chain.is_empty() => applied,
            Ok(_) => return (entry.direct)(ctx, payload),
            Err(reject) => return Outcome::Ready(reject.into_answer(name())),
        };
        let name = name();
        let args = match (entry.decode)(payload) {
            Ok(args) => args,
            Err(reason) => return Outcome::Bad(reason),
        };
        let (terminal, encode) = (entry.terminal.clone(), entry.encode);
        let req = Request::new(ctx, name, payload.len(), args);
        // Built inside the future, so a panic while building the chain is caught too.
        let chain = Box::pin(async move { Next::new(applied.chain, terminal).run(req).await });
        Outcome::Pending(Box::pin(guard_panics(name, chain).map(move |r| encode(name, r))))
    }

    /// Hands one event from the peer to each listener, through middleware. A
    /// payload that does not decode or check is dropped and reported once.
    ///
    /// Returns the work left when it cannot finish at once: a middleware
    /// chain around the listeners, or, with `behind` (an earlier event of
    /// this peer is still in its chain), the delivery itself, so that this
    /// event does not overtake the earlier one. The caller runs what it gets
    /// in order.
    pub(crate) fn handle_event(
        &self,
        snapshot: &mut Snapshot<C>,
        ctx: &C,
        remote: RemoteId,
        payload: &[u8],
        behind: bool,
    ) -> Option<BoxFuture<()>> {
        let name = self.protocol.name(remote);
        self.refresh(snapshot);
        let entry = snapshot.events.get(remote as usize).and_then(Option::as_ref)?;
        let applied = match self.chains.admit(ctx, remote, || name, payload.len()) {
            Ok(applied) => applied.filter(|a| !a.chain.is_empty()),
            Err(reject) => {
                tracing::debug!(remote = name, ?reject, "event refused");
                return None;
            }
        };
        let args = match (entry.decode)(payload) {
            Ok(args) => args,
            Err(reason) => {
                self.report_bad_request(ctx, remote, reason);
                return None;
            }
        };
        // The common case delivers right here, without touching the entry's
        // shared reference count.
        if applied.is_none() && !behind {
            deliver(entry, ctx, &*args, name);
            return None;
        }
        let entry = entry.clone();
        let Some(applied) = applied else {
            let ctx = ctx.clone();
            return Some(Box::pin(async move { deliver(&entry, &ctx, &*args, name) }));
        };
        let terminal: Terminal<C> = Arc::new(move |req: Request<C>| {
            let (ctx, args) = req.into_parts();
            deliver(&entry, &ctx, &*args, name);
            Box::pin(std::future::ready(Ok(Response::new(()))))
        });
        let req = Request::new(ctx.clone(), name, payload.len(), args);
        let chain = Box::pin(async move { Next::new(applied.chain, terminal).run(req).await });
        Some(Box::pin(guard_panics(name, chain).map(|_| ())))
    }
}

fn deliver<C>(entry: &EventEntry<C>, ctx: &C, args: &(dyn Any + Send), name: &'static str) {
    for listener in &entry.listeners {
        catch_user("event listener", Some(name), || listener(ctx, args));
    }
}
