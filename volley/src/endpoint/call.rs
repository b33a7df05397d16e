//! The typed path of an outgoing call (encode → admit → send → decode →
//! check), and `predict`, which runs the same path against this side's own
//! handler without the network.

use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use volley_proto::{FrameBytes, RemoteId, Status};

use super::{Endpoint, Outcome, Snapshot};
use crate::checks::{Check, Checks};
use crate::conn::{Conn, PendingCall};
use crate::error::{EventError, FunctionError};
use crate::inline::run_soon;
use crate::payload::{decode, encode, with_encoded};
use crate::remote::{Dir, Event, Function, Payload};

impl<C: Clone + Send + Sync + 'static> Endpoint<C> {
    /// Decodes and checks the raw result of a call of function `name`,
    /// whose declaration carries the check `declared`.
    pub(crate) fn finish_call<Resp: Payload>(
        &self,
        ctx: &C,
        name: &'static str,
        declared: Option<Check<Resp>>,
        result: Result<FrameBytes, FunctionError>,
    ) -> Result<Resp, FunctionError> {
        self.decode_answer(ctx, name, &self.protocol.response_checks(name, declared), result)
    }

    /// Decodes and checks the raw result of a call of function `name`.
    pub(crate) fn decode_answer<Resp: Payload>(
        &self,
        ctx: &C,
        name: &'static str,
        checks: &Checks<Resp>,
        result: Result<FrameBytes, FunctionError>,
    ) -> Result<Resp, FunctionError> {
        decode(&result?, checks).map_err(|reason| {
            tracing::warn!(remote = name, %reason, "bad response dropped");
            self.report_bad_response(ctx, name, reason);
            FunctionError::InvalidResult
        })
    }

    /// Encodes `req` and sends it as a call of `remote` to the peer behind
    /// `conn`; the returned call resolves to the answer, which
    /// [`finish_call`](Self::finish_call) decodes. `waker` is woken when the
    /// call ends: it need not be polled before.
    ///
    /// Split from the decoding so a caller's future
    /// ([`Invocation`](super::Invocation)) holds, while it waits, only the
    /// pending call and what decoding takes, not the arguments.
    pub(crate) fn start_call<D: Dir, Req: Payload, Resp: Payload>(
        &self,
        conn: Option<Arc<Conn>>,
        ctx: &C,
        remote: &Function<D, Req, Resp>,
        req: &Req,
        timeout: Duration,
        waker: &Waker,
    ) -> Result<PendingCall, FunctionError> {
        let conn = conn.ok_or(FunctionError::Disconnected)?;
        let id = self.function_id(remote)?;
        let sent = with_encoded(req, |payload| {
            self.send_call(conn, ctx, id, remote.name, payload, timeout, Some(waker))
        });
        // Matched, not `map_err(..)?`: that copied the pending call through
        // two more results on the stack, and reading back the halves of
        // those copies stalled the core (`perf annotate`, pipelined calls).
        match sent {
            Ok(call) => call,
            Err(e) => Err(encode_failed(remote.name, e)),
        }
    }

    /// The wire id of a function being called.
    pub(crate) fn function_id<D, Req, Resp>(&self, remote: &Function<D, Req, Resp>) -> Result<RemoteId, FunctionError> {
        self.protocol.id(remote.name).ok_or_else(|| {
            tracing::error!(
                remote = remote.name,
                "called a remote that is not declared in the Protocol"
            );
            FunctionError::Unprocessed
        })
    }

    /// Encodes a request once, for calls to many peers.
    pub(crate) fn encode_request<Req: Payload>(&self, name: &'static str, req: &Req) -> Result<Vec<u8>, FunctionError> {
        encode(req).map_err(|e| encode_failed(name, e))
    }

    /// Sends an encoded request for function `id` (named `name`) to the peer
    /// behind `conn`, through outgoing middleware; `waker` is woken when it
    /// ends ([`Conn::call`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_call(
        &self,
        conn: Arc<Conn>,
        ctx: &C,
        id: RemoteId,
        name: &'static str,
        payload: &[u8],
        timeout: Duration,
        waker: Option<&Waker>,
    ) -> Result<PendingCall, FunctionError> {
        self.chains.admit_outgoing(ctx, name, payload.len()).map_err(|reject| {
            let (status, message) = reject.into_answer(name);
            FunctionError::from_status(status, &message)
        })?;
        conn.call(id, payload, timeout, waker)
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
            Status::Ok => Ok(FrameBytes::from(bytes)),
            other => Err(FunctionError::from_status(other, &bytes)),
        };
        self.finish_call(&ctx, remote.name, remote.check_response, result)
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

/// A request that could not be encoded: a bug in its `Serialize`, logged.
fn encode_failed(name: &'static str, error: String) -> FunctionError {
    tracing::error!(remote = name, %error, "could not encode the request");
    FunctionError::BadRequest
}
