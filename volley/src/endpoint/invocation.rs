//! An outgoing call as its caller's future (`Client::invoke`,
//! `Server::invoke`).
//!
//! Written out rather than as an `async fn`: one kept its arguments (the
//! remote with its checks, the request, the timeout, the handle) beside the
//! pending call for the whole call, 256 bytes for a call with a `u32` in
//! it. A caller copies that future whole each time it moves it (into a
//! `FuturesUnordered`, a `join_all`, a spawned task): at 256 calls in flight
//! its three copies into a `FuturesUnordered` made most of the benchmark's
//! largest user-space symbol, `memmove` (`perf` and callgrind, `volley-bench
//! --profile pipelined`). Here a call holds, once sent, only what decoding
//! its answer takes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::Endpoint;
use crate::checks::Check;
use crate::conn::{Conn, PendingCall};
use crate::error::FunctionError;
use crate::remote::{Dir, Function, Payload};

/// A call of `remote`: sent at its first poll, as an `async fn` would be,
/// then waiting for its answer. `conn` finds the connection then: a client
/// that reconnected in between calls on the new one.
pub(crate) struct Invocation<'a, C, F, D, Req, Resp> {
    endpoint: &'a Endpoint<C>,
    /// What the handlers and hooks are told about the peer.
    ctx: &'a C,
    stage: Stage<F, D, Req, Resp>,
}

enum Stage<F, D, Req, Resp> {
    Unsent {
        conn: F,
        remote: Function<D, Req, Resp>,
        req: Req,
        timeout: Duration,
    },
    Sent {
        call: PendingCall,
        name: &'static str,
        check: Option<Check<Resp>>,
    },
    Done,
}

impl<'a, C, F, D, Req, Resp> Invocation<'a, C, F, D, Req, Resp> {
    pub(crate) fn new(
        endpoint: &'a Endpoint<C>,
        ctx: &'a C,
        conn: F,
        remote: Function<D, Req, Resp>,
        req: Req,
        timeout: Duration,
    ) -> Self {
        Self {
            endpoint,
            ctx,
            stage: Stage::Unsent {
                conn,
                remote,
                req,
                timeout,
            },
        }
    }
}

// Nothing in it is ever pinned: the request is moved out to be encoded and
// the pending call is `Unpin`.
impl<C, F, D, Req, Resp> Unpin for Invocation<'_, C, F, D, Req, Resp> {}

impl<C, F, D, Req, Resp> Future for Invocation<'_, C, F, D, Req, Resp>
where
    C: Clone + Send + Sync + 'static,
    F: FnOnce() -> Option<Arc<Conn>>,
    D: Dir,
    Req: Payload,
    Resp: Payload,
{
    type Output = Result<Resp, FunctionError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Stage::Unsent { .. } = this.stage {
            let Stage::Unsent {
                conn,
                remote,
                req,
                timeout,
            } = std::mem::replace(&mut this.stage, Stage::Done)
            else {
                unreachable!("matched just above")
            };
            // The call holds this task's waker from before the driver can
            // see it, and wakes it when it ends (even if that is already
            // under way on another thread): no poll is needed until then.
            return match this
                .endpoint
                .start_call(conn(), this.ctx, &remote, &req, timeout, cx.waker())
            {
                Ok(call) => {
                    this.stage = Stage::Sent {
                        call,
                        name: remote.name,
                        check: remote.check_response,
                    };
                    Poll::Pending
                }
                Err(error) => Poll::Ready(Err(error)),
            };
        }
        let Stage::Sent { call, .. } = &mut this.stage else {
            panic!("an invocation polled after it returned its answer")
        };
        let result = std::task::ready!(Pin::new(call).poll(cx));
        let Stage::Sent { name, check, .. } = std::mem::replace(&mut this.stage, Stage::Done) else {
            unreachable!("matched just above")
        };
        Poll::Ready(this.endpoint.finish_call(this.ctx, name, check, result))
    }
}
