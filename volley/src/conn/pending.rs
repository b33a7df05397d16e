//! A call on the wire, as its caller's future.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::Conn;
use crate::completion::{CallResult, Completion};

/// A call on the wire. Dropping it before it resolves cancels the call at the
/// peer, whose handler is stopped.
#[must_use = "a call is cancelled when its future is dropped"]
pub(crate) struct PendingCall {
    pub(super) conn: Arc<Conn>,
    pub(super) seq: u64,
    /// Taken only as the call is dropped, to keep its slot.
    pub(super) rx: Option<Completion>,
    pub(super) done: bool,
    /// For the figures: the remote called, and when.
    pub(super) remote: volley_proto::RemoteId,
    /// When it was made, if it is one of the calls timed.
    pub(super) started: Option<std::time::Instant>,
    /// Its `tracing` span, if a subscriber wants `debug`: boxed, as it
    /// rarely is, to keep the call (which its caller's future holds, and
    /// moves) small.
    pub(super) span: Option<Box<tracing::Span>>,
}

impl Future for PendingCall {
    type Output = CallResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CallResult> {
        let result = std::task::ready!(Pin::new(self.rx()).poll(cx));
        Poll::Ready(self.ended(result))
    }
}

impl PendingCall {
    fn rx(&mut self) -> &mut Completion {
        self.rx
            .as_mut()
            .expect("a call's slot is taken only when the call is dropped")
    }

    /// Leaves `waker` to be woken once the call ends, without polling;
    /// `false` if it has ended already.
    pub(crate) fn register(&self, waker: &std::task::Waker) -> bool {
        self.rx.as_ref().is_some_and(|rx| rx.register(waker))
    }

    /// The call's result if it has ended, counted as a poll's would be;
    /// `None` leaves the waker it holds to fire.
    pub(crate) fn try_take(&mut self) -> Option<CallResult> {
        let result = self.rx().try_take()?;
        Some(self.ended(result))
    }

    /// The call has ended with `result`: counted once, and its slot kept
    /// for the connection's next call when this is dropped.
    fn ended(&mut self, result: CallResult) -> CallResult {
        self.done = true;
        self.count_end(&result);
        result
    }

    /// Ends the call at its caller's own deadline (a group call's, which
    /// can pass before the session's): counted as a timeout, like one the
    /// session ends, then cancelled at the peer, like a dropped call.
    pub(crate) fn time_out(self) {
        self.count_end(&Err(crate::error::FunctionError::Timeout));
    }

    /// Counts how the call ended, in the figures and its span.
    fn count_end(&self, result: &CallResult) {
        let took = self.started.map(|at| crate::clock::now().saturating_duration_since(at));
        self.conn.figures.call_ended(self.remote, result, took);
        let kind = crate::figures::kind_of(result);
        self.conn.counters.ended(kind);
        crate::figures::record_end(self.span.as_deref(), kind, took);
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        let Some(rx) = self.rx.take() else {
            return;
        };
        if self.done {
            // Its result slot serves the connection's next call.
            self.conn.keep_slot(rx);
            return;
        }
        // Not sent yet: the driver will pass it by.
        if rx.give_up() {
            return;
        }
        let mut state = self.conn.lock("call dropped");
        // Claimed and given its id under this lock; none if the session
        // refused it.
        let Some(id) = rx.call_id() else {
            return;
        };
        // Still ours only if the call has not ended (ended calls leave the
        // table, and their id may already belong to a newer call).
        if state.waiters.remove_if(id, self.seq) {
            let cancelled = state.session.cancel(id);
            drop(state);
            self.conn.pending.fetch_sub(1, Ordering::AcqRel);
            if cancelled {
                self.conn.wake_driver();
            }
        }
    }
}
