//! What both sides share above the connection: the registry of handlers,
//! listeners and middleware for the remotes this side receives, the bad-input
//! hooks, and the typed path of a call (encode → send → decode → check), which
//! `predict` reuses without the network.
//!
//! `C` is what a handler is given about the peer: the calling
//! [`Player`](crate::Player) on the server, `()` on a client.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use volley_proto::{RemoteId, Status};

use crate::completion::Reply;
use crate::conn::{Conn, PendingCall};
use crate::error::{EventError, FunctionError, Reject};
use crate::guard::{catch_user, panic_detail};
use crate::inline::run_soon;
use crate::locks::{read, write};
use crate::middleware::{Admit, BoxFuture, CallResult, Middleware, Next, Request, Response, Terminal};
use crate::payload::{decode, encode, with_encoded, Answer};
use crate::remote::{Check, Dir, Event, Function, Payload, Protocol};

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
type Chain<C> = Arc<[Arc<dyn Middleware<C>>]>;

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

/// A registered middleware of either kind.
pub(crate) enum Layer<C> {
    Admit(Arc<dyn Admit<C>>),
    Wrap(Arc<dyn Middleware<C>>),
}

impl<C> Clone for Layer<C> {
    fn clone(&self) -> Self {
        match self {
            Self::Admit(admit) => Self::Admit(admit.clone()),
            Self::Wrap(wrap) => Self::Wrap(wrap.clone()),
        }
    }
}

/// The middleware that applies to one remote: global ones, then its own.
struct Applied<C> {
    admit: Arc<[Arc<dyn Admit<C>>]>,
    /// Empty keeps the handler on the fast path.
    chain: Chain<C>,
}

impl<C> Clone for Applied<C> {
    fn clone(&self) -> Self {
        Self {
            admit: self.admit.clone(),
            chain: self.chain.clone(),
        }
    }
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
    global: RwLock<Vec<Layer<C>>>,
    per_remote: RwLock<Vec<Vec<Layer<C>>>>,
    /// `global` + `per_remote[id]` for each remote, rebuilt when either changes.
    applied: RwLock<Vec<Applied<C>>>,
    /// Whether any incoming middleware is registered at all.
    has_middleware: std::sync::atomic::AtomicBool,
    bad_request: RwLock<Vec<BadInputHook<C>>>,
    bad_response: RwLock<Vec<BadInputHook<C>>>,
    /// Run before this side sends a call or event.
    outgoing: RwLock<Vec<Arc<dyn Admit<C>>>>,
    /// Whether `outgoing` is empty, read without a lock on every send.
    has_outgoing: std::sync::atomic::AtomicBool,
}

fn decode_erased<T: Payload>(check: Option<Check<T>>) -> Decode {
    Arc::new(move |bytes| decode::<T>(bytes, check).map(|v| Box::new(v) as Box<dyn Any + Send>))
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
    pub(crate) fn new(protocol: Protocol) -> Self {
        let n = protocol.len();
        let empty = Applied {
            admit: Arc::from(Vec::new()),
            chain: Arc::from(Vec::new()),
        };
        Self {
            protocol,
            functions: RwLock::new(vec![None; n]),
            events: RwLock::new(vec![None; n]),
            generation: std::sync::atomic::AtomicU64::new(0),
            global: RwLock::new(Vec::new()),
            per_remote: RwLock::new(vec![Vec::new(); n]),
            applied: RwLock::new(vec![empty; n]),
            has_middleware: std::sync::atomic::AtomicBool::new(false),
            bad_request: RwLock::new(Vec::new()),
            bad_response: RwLock::new(Vec::new()),
            outgoing: RwLock::new(Vec::new()),
            has_outgoing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Adds an admission check for what this side sends.
    pub(crate) fn add_outgoing(&self, middleware: Arc<dyn Admit<C>>) {
        write(&self.outgoing).push(middleware);
        self.has_outgoing.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Runs the outgoing middleware's `admit` for a call or event to `peer`.
    pub(crate) fn admit_outgoing(&self, peer: &C, remote: &'static str, size: usize) -> Result<(), Reject> {
        if !self.has_outgoing.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        for middleware in read(&self.outgoing).iter() {
            admit_guarded(&**middleware, peer, remote, size)?;
        }
        Ok(())
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
        let check = remote.check_request;
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
                direct: Arc::new(move |ctx, payload| {
                    let req = match decode(payload, check) {
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
                decode: decode_erased(check),
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
        let check = remote.check_request;
        let handler = Arc::new(handler);
        let erased = handler.clone();
        self.set_handler(
            name,
            FnEntry {
                direct: Arc::new(move |ctx, payload| match decode(payload, check) {
                    Ok(req) => Outcome::Ready(answer(
                        name,
                        std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx, req))),
                    )),
                    Err(reason) => Outcome::Bad(reason),
                }),
                decode: decode_erased(check),
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
            decode: decode_erased(remote.check),
            listeners: slot.as_ref().map(|e| e.listeners.clone()).unwrap_or_default(),
        };
        entry.listeners.push(listener);
        *slot = Some(Arc::new(entry));
        drop(events);
        self.changed();
    }

    /// Adds middleware for every remote this side receives.
    pub(crate) fn add_middleware(&self, middleware: Layer<C>) {
        write(&self.global).push(middleware);
        self.rebuild(None);
    }

    /// Adds middleware for one remote.
    #[track_caller]
    pub(crate) fn add_middleware_for(&self, name: &'static str, middleware: Layer<C>) {
        let id = self.declared_id(name);
        write(&self.per_remote)[id as usize].push(middleware);
        self.rebuild(Some(id));
    }

    fn rebuild(&self, only: Option<RemoteId>) {
        let global = read(&self.global).clone();
        let per_remote = read(&self.per_remote);
        let mut applied = write(&self.applied);
        for (id, own) in per_remote.iter().enumerate() {
            if only.is_some_and(|o| o as usize != id) {
                continue;
            }
            let (mut admit, mut chain) = (Vec::new(), Vec::new());
            for layer in global.iter().chain(own) {
                match layer {
                    Layer::Admit(a) => admit.push(a.clone()),
                    Layer::Wrap(w) => chain.push(w.clone()),
                }
            }
            if !admit.is_empty() || !chain.is_empty() {
                self.has_middleware.store(true, std::sync::atomic::Ordering::Release);
            }
            applied[id] = Applied {
                admit: admit.into(),
                chain: chain.into(),
            };
        }
    }

    /// The peer left: every admission check forgets it.
    pub(crate) fn peer_left(&self, ctx: &C) {
        let mut seen: Vec<Layer<C>> = read(&self.global).clone();
        for own in read(&self.per_remote).iter() {
            seen.extend(own.iter().cloned());
        }
        for layer in seen {
            if let Layer::Admit(admit) = layer {
                catch_user("Admit::disconnected", None, || admit.disconnected(ctx));
            }
        }
    }

    pub(crate) fn on_bad_request(&self, hook: impl Fn(&C, &BadInput) + Send + Sync + 'static) {
        write(&self.bad_request).push(Arc::new(hook));
    }

    pub(crate) fn on_bad_response(&self, hook: impl Fn(&C, &BadInput) + Send + Sync + 'static) {
        write(&self.bad_response).push(Arc::new(hook));
    }

    fn report(&self, hooks: &RwLock<Vec<BadInputHook<C>>>, ctx: &C, remote: &'static str, reason: String) {
        let bad = BadInput { remote, reason };
        for hook in read(hooks).clone() {
            catch_user("bad input hook", Some(remote), || hook(ctx, &bad));
        }
    }

    pub(crate) fn report_bad_request(&self, ctx: &C, remote: RemoteId, reason: String) {
        let name = self.protocol.name(remote);
        tracing::warn!(remote = name, %reason, "bad request dropped");
        self.report(&self.bad_request, ctx, name, reason);
    }

    /// Runs the admit hooks of the middleware applying to `remote`.
    /// `None` when no middleware is registered at all: the common case costs
    /// one atomic load instead of a lock and a reference count.
    fn admit(&self, ctx: &C, remote: RemoteId, size: usize) -> Result<Option<Applied<C>>, Reject> {
        if !self.has_middleware.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(None);
        }
        let applied = read(&self.applied)[remote as usize].clone();
        let name = self.protocol.name(remote);
        for admit in applied.admit.iter() {
            admit_guarded(&**admit, ctx, name, size)?;
        }
        Ok(Some(applied))
    }

    /// Handles one request from the peer for function `remote`.
    pub(crate) fn handle_request(
        &self,
        snapshot: &mut Snapshot<C>,
        ctx: C,
        remote: RemoteId,
        payload: &[u8],
    ) -> Outcome {
        let name = self.protocol.name(remote);
        self.refresh(snapshot);
        let Some(entry) = snapshot.functions.get(remote as usize).and_then(Option::as_ref) else {
            tracing::debug!(remote = name, "no handler registered");
            return Outcome::Ready((Status::Unprocessed, Vec::new()));
        };
        let applied = match self.admit(&ctx, remote, payload.len()) {
            Ok(Some(applied)) if !applied.chain.is_empty() => applied,
            Ok(_) => return (entry.direct)(ctx, payload),
            Err(reject) => return Outcome::Ready(reject.into_answer(name)),
        };
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
        let applied = match self.admit(ctx, remote, payload.len()) {
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
        let entry = entry.clone();
        let Some(applied) = applied else {
            if !behind {
                deliver(&entry, ctx, &*args, name);
                return None;
            }
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

    /// Decodes and checks a call's raw result.
    pub(crate) fn finish_call<D, Req, Resp: Payload>(
        &self,
        ctx: &C,
        remote: &Function<D, Req, Resp>,
        result: Result<Reply, FunctionError>,
    ) -> Result<Resp, FunctionError> {
        decode(result?.as_bytes(), remote.check_response).map_err(|reason| {
            tracing::warn!(remote = remote.name, %reason, "bad response dropped");
            self.report(&self.bad_response, ctx, remote.name, reason);
            FunctionError::InvalidResult
        })
    }

    /// Encodes `req` and sends it as a call of `remote` to the peer behind
    /// `conn`; the returned call resolves to the answer, which
    /// [`finish_call`](Self::finish_call) decodes.
    ///
    /// Split from the decoding so a caller's future holds only the pending
    /// call across its await, not a chain of nested futures each holding the
    /// arguments.
    pub(crate) fn start_call<D: Dir, Req: Payload, Resp: Payload>(
        &self,
        conn: Option<Arc<Conn>>,
        ctx: &C,
        remote: &Function<D, Req, Resp>,
        req: &Req,
        timeout: Duration,
    ) -> Result<PendingCall, FunctionError> {
        let conn = conn.ok_or(FunctionError::Disconnected)?;
        let id = self.protocol.id(remote.name).ok_or_else(|| {
            tracing::error!(
                remote = remote.name,
                "called a remote that is not declared in the Protocol"
            );
            FunctionError::Unprocessed
        })?;
        let send = |payload: &[u8]| {
            self.admit_outgoing(ctx, remote.name, payload.len()).map_err(|reject| {
                let (status, message) = reject.into_answer(remote.name);
                FunctionError::from_status(status, &message)
            })?;
            conn.call(id, payload, timeout)
        };
        with_encoded(req, send).map_err(|e| {
            tracing::error!(remote = remote.name, error = %e, "could not encode the request");
            FunctionError::BadRequest
        })?
    }

    /// Runs the local handler of `remote` as if `req` came from the network:
    /// the same encoding, decoding, checks, middleware and error kinds,
    /// without a timeout.
    pub(crate) async fn predict<D, Req: Payload, Resp: Payload>(
        &self,
        ctx: C,
        remote: Function<D, Req, Resp>,
        req: &Req,
    ) -> Result<Resp, FunctionError> {
        let id = self.protocol.id(remote.name).ok_or(FunctionError::Unprocessed)?;
        let payload = encode(req).map_err(|_| FunctionError::BadRequest)?;
        let (status, bytes) = match self.handle_request(&mut Snapshot::new(), ctx.clone(), id, &payload) {
            Outcome::Ready(answer) => answer,
            Outcome::Pending(fut) => fut.await,
            Outcome::Bad(reason) => {
                self.report_bad_request(&ctx, id, reason);
                (Status::BadRequest, Vec::new())
            }
        };
        let result = match status {
            Status::Ok => Ok(Reply::Shared(Bytes::from(bytes))),
            other => Err(FunctionError::from_status(other, &bytes)),
        };
        self.finish_call(&ctx, &remote, result)
    }

    /// Encodes an event for sending.
    pub(crate) fn encode_event<D, T: Payload>(
        &self,
        remote: &Event<D, T>,
        value: &T,
    ) -> Result<(RemoteId, Vec<u8>), EventError> {
        let id = self.protocol.id(remote.name).ok_or_else(|| {
            tracing::error!(
                remote = remote.name,
                "fired a remote that is not declared in the Protocol"
            );
            EventError::Encode(format!("remote {:?} is not declared", remote.name))
        })?;
        Ok((id, encode(value).map_err(EventError::Encode)?))
    }

    /// Hands `value` to this side's listeners as if it came from the network.
    pub(crate) fn predict_event<D, T: Payload>(
        &self,
        ctx: &C,
        remote: Event<D, T>,
        value: &T,
    ) -> Result<(), EventError> {
        let (id, payload) = self.encode_event(&remote, value)?;
        if let Some(rest) = self.handle_event(&mut Snapshot::new(), ctx, id, &payload, false) {
            run_soon(rest);
        }
        Ok(())
    }
}

fn deliver<C>(entry: &EventEntry<C>, ctx: &C, args: &(dyn Any + Send), name: &'static str) {
    for listener in &entry.listeners {
        catch_user("event listener", Some(name), || listener(ctx, args));
    }
}

/// A middleware's `admit`; one that panics refuses (the caller sees
/// `Unprocessed`, as for a handler that panics).
fn admit_guarded<C: 'static>(
    middleware: &dyn Admit<C>,
    peer: &C,
    remote: &'static str,
    size: usize,
) -> Result<(), Reject> {
    catch_user("Admit::admit", Some(remote), || middleware.admit(peer, remote, size))
        .unwrap_or_else(|| Err(Reject::internal("middleware panicked")))
}
