//! The calls of one call to many players, polled only once their answer is
//! in.
//!
//! `FuturesUnordered` would do, but it wakes its owner at every answer: a
//! caller waiting for every answer of a room of 1,000 was woken, and its
//! task run, a thousand times. Here each call's waker records which call it
//! was; the owner is woken at every answer, or, once it has said it waits
//! for them all ([`CallSet::wait_for_all`]), only when the last one is in.
//! (The group's deadline, polled with the owner's own waker, wakes it then.)

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

use crate::completion::CallResult;
use crate::conn::PendingCall;
use crate::locks::lock;

/// What the calls' wakers and their owner share.
#[derive(Default)]
struct Shared {
    /// Calls whose waker fired (their answer is in), by place, in order.
    finished: Mutex<Vec<usize>>,
    owner: AtomicWaker,
    /// Calls left pending by their last poll whose waker has not fired yet.
    waiting: AtomicUsize,
    /// Wake the owner only when `waiting` drops to zero.
    all_at_once: AtomicBool,
}

/// One call's waker: says which call is done.
struct CallWaker {
    place: usize,
    shared: Arc<Shared>,
}

impl Wake for CallWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let shared = &self.shared;
        lock(&shared.finished).push(self.place);
        // A call's waker fires once (when its answer is left for it), and
        // only after a poll that counted it: never below zero.
        let left = shared.waiting.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 || !shared.all_at_once.load(Ordering::Acquire) {
            shared.owner.wake();
        }
    }
}

/// One player's call, with the player's place in the group.
pub(super) struct Call {
    pub(super) index: usize,
    pub(super) call: PendingCall,
}

/// The calls still owed an answer, each with its own waker.
#[derive(Default)]
pub(super) struct CallSet {
    calls: Vec<Option<Call>>,
    wakers: Vec<Waker>,
    /// Calls not polled yet start here.
    unpolled: usize,
    /// Calls whose waker fired, taken from `shared` in one lock.
    due: VecDeque<usize>,
    live: usize,
    shared: Arc<Shared>,
}

impl CallSet {
    pub(super) fn push(&mut self, call: Call) {
        let place = self.calls.len();
        let waker = Arc::new(CallWaker {
            place,
            shared: self.shared.clone(),
        });
        self.calls.push(Some(call));
        self.wakers.push(Waker::from(waker));
        self.live += 1;
    }

    /// Calls still owed an answer.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    pub(super) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// From now on the owner is woken once, when every call has its answer
    /// (or by its own deadline), not at each.
    pub(super) fn wait_for_all(&self) {
        self.shared.all_at_once.store(true, Ordering::Release);
    }

    /// Takes every call still owed an answer, in the order they were made.
    pub(super) fn take_all(&mut self) -> impl Iterator<Item = Call> {
        self.live = 0;
        self.due.clear();
        std::mem::take(&mut self.calls).into_iter().flatten()
    }

    /// The next call to have its answer: the player's place and the result.
    pub(super) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, CallResult)>> {
        if self.live == 0 {
            return Poll::Ready(None);
        }
        // Registered before looking, so an answer arriving after the look
        // wakes this poll's task.
        self.shared.owner.register(cx.waker());
        while self.unpolled < self.calls.len() {
            let place = self.unpolled;
            self.unpolled += 1;
            if let Some(done) = self.poll_call(place) {
                return Poll::Ready(Some(done));
            }
        }
        loop {
            if self.due.is_empty() {
                self.due.extend(lock(&self.shared.finished).drain(..));
            }
            let Some(place) = self.due.pop_front() else {
                return Poll::Pending;
            };
            if let Some(done) = self.poll_call(place) {
                return Poll::Ready(Some(done));
            }
        }
    }

    /// Polls the call at `place` with its own waker; its result if it has
    /// ended (it then leaves the set).
    fn poll_call(&mut self, place: usize) -> Option<(usize, CallResult)> {
        let Some(entry) = self.calls.get_mut(place).and_then(Option::as_mut) else {
            // Taken meanwhile (the deadline passed): a late waker's record.
            return None;
        };
        // Counted before the poll: a `Pending` leaves a waker to fire once.
        self.shared.waiting.fetch_add(1, Ordering::AcqRel);
        let mut cx = Context::from_waker(&self.wakers[place]);
        match Pin::new(&mut entry.call).poll(&mut cx) {
            Poll::Ready(result) => {
                // Ready at once: no waker was left, so none will fire.
                self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
                let index = entry.index;
                self.calls[place] = None;
                self.live -= 1;
                Some((index, result))
            }
            Poll::Pending => None,
        }
    }
}
