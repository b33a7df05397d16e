//! What both sides share above the connection: the registry of handlers and
//! listeners for the remotes this side receives, the bad-input hooks, and the
//! typed path of a call (encode → send → decode → check), which `predict`
//! reuses without the network.
//!
//! `C` is what a handler is given about the peer: the calling
//! [`Player`](crate::Player) on the server, `()` on a client.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use volley_proto::{RemoteId, Status};

use crate::conn::Conn;
use crate::error::{EventError, FunctionError, Reject};
use crate::locks::{read, write};
use crate::remote::{Check, Dir, Event, Function, Payload, Protocol};

/// A handler's answer: the status and the encoded result or rejection message.
pub(crate) type Answer = (Status, Vec<u8>);

/// What a function handler gives the driver for one request.
pub(crate) enum Outcome {
    /// Finished already (synchronous handler, or a failure before it ran).
    Ready(Answer),
    /// An async handler to run as its own task.
    Pending(Pin<Box<dyn Future<Output = Answer> + Send>>),
    /// The request did not decode or failed its check; the reason is logged
    /// and given to the bad-request hook, the caller gets `BadRequest`.
    Bad(String),
}

type FnHandler<C> = Arc<dyn Fn(C, &[u8]) -> Outcome + Send + Sync>;
type Listener<C> = Arc<dyn Fn(&C, &[u8]) -> Result<(), String> + Send + Sync>;
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

pub(crate) struct Endpoint<C> {
    pub(crate) protocol: Protocol,
    functions: RwLock<Vec<Option<FnHandler<C>>>>,
    listeners: RwLock<Vec<Vec<Listener<C>>>>,
    bad_request: RwLock<Vec<BadInputHook<C>>>,
    bad_response: RwLock<Vec<BadInputHook<C>>>,
}

pub(crate) fn encode<T: Payload>(value: &T) -> Result<Vec<u8>, String> {
    bitcode::serialize(value).map_err(|e| e.to_string())
}

fn decode<T: Payload>(bytes: &[u8], check: Option<Check<T>>) -> Result<T, String> {
    let value: T = bitcode::deserialize(bytes).map_err(|e| format!("does not decode: {e}"))?;
    match check {
        Some(check) => check(&value)
            .map(|()| value)
            .map_err(|e| format!("fails validation: {e}")),
        None => Ok(value),
    }
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
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            tracing::error!(remote, panic = %detail, "handler panicked");
            (Status::Unprocessed, Vec::new())
        }
    }
}

impl<C: Clone + Send + Sync + 'static> Endpoint<C> {
    pub(crate) fn new(protocol: Protocol) -> Self {
        let n = protocol.len();
        Self {
            protocol,
            functions: RwLock::new(vec![None; n]),
            listeners: RwLock::new(vec![Vec::new(); n]),
            bad_request: RwLock::new(Vec::new()),
            bad_response: RwLock::new(Vec::new()),
        }
    }

    /// The wire id of a remote this endpoint was built with.
    ///
    /// # Panics
    ///
    /// If the remote is not in the protocol: registering a handler for an
    /// undeclared remote is a mistake to fix in code, so it fails at start-up.
    fn declared_id(&self, name: &'static str) -> RemoteId {
        self.protocol
            .id(name)
            .unwrap_or_else(|| panic!("remote {name:?} is not declared in this volley Protocol"))
    }

    fn set_handler(&self, name: &'static str, handler: FnHandler<C>) {
        let id = self.declared_id(name);
        if write(&self.functions)[id as usize].replace(handler).is_some() {
            tracing::warn!(
                remote = name,
                "handler replaced: a function has one handler, the new one wins"
            );
        }
    }

    /// Registers an async handler: each request runs as its own task, which is
    /// aborted if the caller cancels or disconnects.
    pub(crate) fn on_request<D, Req, Resp, F, Fut>(&self, remote: Function<D, Req, Resp>, handler: F)
    where
        Req: Payload,
        Resp: Payload,
        F: Fn(C, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Reject>> + Send + 'static,
    {
        let name = remote.name;
        let check = remote.check_request;
        self.set_handler(
            name,
            Arc::new(move |ctx, payload| {
                let req = match decode(payload, check) {
                    Ok(req) => req,
                    Err(reason) => return Outcome::Bad(reason),
                };
                // Building the future runs user code too; a panic there is the handler's.
                match std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx, req))) {
                    Ok(fut) => Outcome::Pending(Box::pin(
                        AssertUnwindSafe(fut).catch_unwind().map(move |r| answer(name, r)),
                    )),
                    Err(panic) => Outcome::Ready(answer::<Resp>(name, Err(panic))),
                }
            }),
        );
    }

    /// Registers a synchronous handler, run inline on the connection's task:
    /// the fastest path, for handlers that do not wait on anything.
    pub(crate) fn on_request_sync<D, Req, Resp, F>(&self, remote: Function<D, Req, Resp>, handler: F)
    where
        Req: Payload,
        Resp: Payload,
        F: Fn(C, Req) -> Result<Resp, Reject> + Send + Sync + 'static,
    {
        let name = remote.name;
        let check = remote.check_request;
        self.set_handler(
            name,
            Arc::new(move |ctx, payload| match decode(payload, check) {
                Ok(req) => Outcome::Ready(answer(
                    name,
                    std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx, req))),
                )),
                Err(reason) => Outcome::Bad(reason),
            }),
        );
    }

    /// Adds a listener; every listener of an event sees every valid firing.
    pub(crate) fn on_event<D, T, F>(&self, remote: Event<D, T>, listener: F)
    where
        T: Payload,
        F: Fn(C, T) + Send + Sync + 'static,
    {
        let id = self.declared_id(remote.name);
        let check = remote.check;
        let name = remote.name;
        write(&self.listeners)[id as usize].push(Arc::new(move |ctx, payload| {
            let value = decode(payload, check)?;
            if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| listener(ctx.clone(), value))) {
                let _ = answer::<()>(name, Err(panic)); // logs it
            }
            Ok(())
        }));
    }

    pub(crate) fn on_bad_request(&self, hook: impl Fn(&C, &BadInput) + Send + Sync + 'static) {
        write(&self.bad_request).push(Arc::new(hook));
    }

    pub(crate) fn on_bad_response(&self, hook: impl Fn(&C, &BadInput) + Send + Sync + 'static) {
        write(&self.bad_response).push(Arc::new(hook));
    }

    fn report(&self, hooks: &RwLock<Vec<BadInputHook<C>>>, ctx: &C, remote: &'static str, reason: String) {
        let bad = BadInput { remote, reason };
        for hook in read(hooks).iter() {
            hook(ctx, &bad);
        }
    }

    pub(crate) fn report_bad_request(&self, ctx: &C, remote: RemoteId, reason: String) {
        let name = self.protocol.name(remote);
        tracing::warn!(remote = name, %reason, "bad request dropped");
        self.report(&self.bad_request, ctx, name, reason);
    }

    /// Runs the handler of `remote` for one request from the peer.
    pub(crate) fn handle_request(&self, ctx: C, remote: RemoteId, payload: &[u8]) -> Outcome {
        let handler = read(&self.functions).get(remote as usize).cloned().flatten();
        match handler {
            Some(handler) => handler(ctx, payload),
            None => {
                tracing::debug!(remote = self.protocol.name(remote), "no handler registered");
                Outcome::Ready((Status::Unprocessed, Vec::new()))
            }
        }
    }

    /// Hands one event from the peer to each listener; a payload that does not
    /// decode or check is dropped and reported once.
    pub(crate) fn handle_event(&self, ctx: &C, remote: RemoteId, payload: &[u8]) {
        let listeners = read(&self.listeners).get(remote as usize).cloned().unwrap_or_default();
        for listener in &listeners {
            if let Err(reason) = listener(ctx, payload) {
                return self.report_bad_request(ctx, remote, reason);
            }
        }
    }

    /// Decodes and checks a call's raw result.
    fn finish_call<D, Req, Resp: Payload>(
        &self,
        ctx: &C,
        remote: &Function<D, Req, Resp>,
        result: Result<Bytes, FunctionError>,
    ) -> Result<Resp, FunctionError> {
        decode(&result?, remote.check_response).map_err(|reason| {
            tracing::warn!(remote = remote.name, %reason, "bad response dropped");
            self.report(&self.bad_response, ctx, remote.name, reason);
            FunctionError::InvalidResult
        })
    }

    /// Calls `remote` on the peer behind `conn`.
    pub(crate) async fn call<D: Dir, Req: Payload, Resp: Payload>(
        &self,
        conn: Option<Arc<Conn>>,
        ctx: &C,
        remote: Function<D, Req, Resp>,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, FunctionError> {
        let conn = conn.ok_or(FunctionError::Disconnected)?;
        let id = self.protocol.id(remote.name).ok_or_else(|| {
            tracing::error!(
                remote = remote.name,
                "called a remote that is not declared in the Protocol"
            );
            FunctionError::Unprocessed
        })?;
        let payload = encode(req).map_err(|e| {
            tracing::error!(remote = remote.name, error = %e, "could not encode the request");
            FunctionError::BadRequest
        })?;
        let result = conn.call(id, &payload, timeout)?.await;
        self.finish_call(ctx, &remote, result)
    }

    /// Runs the local handler of `remote` as if `req` came from the network:
    /// the same encoding, decoding, checks and error kinds, without a timeout.
    pub(crate) async fn predict<D, Req: Payload, Resp: Payload>(
        &self,
        ctx: C,
        remote: Function<D, Req, Resp>,
        req: &Req,
    ) -> Result<Resp, FunctionError> {
        let id = self.protocol.id(remote.name).ok_or(FunctionError::Unprocessed)?;
        let payload = encode(req).map_err(|_| FunctionError::BadRequest)?;
        let (status, bytes) = match self.handle_request(ctx.clone(), id, &payload) {
            Outcome::Ready(answer) => answer,
            Outcome::Pending(fut) => fut.await,
            Outcome::Bad(reason) => {
                self.report_bad_request(&ctx, id, reason);
                (Status::BadRequest, Vec::new())
            }
        };
        let result = match status {
            Status::Ok => Ok(Bytes::from(bytes)),
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
        self.handle_event(ctx, id, &payload);
        Ok(())
    }
}
