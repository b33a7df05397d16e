//! The calls of one call to many players, polled only once their answer is
//! in.
//!
//! `FuturesUnordered` would do, but it wakes its owner at every answer: a
//! caller waiting for every answer of a room of 1,000 was woken, and its
//! task run, a thousand times. Here, while the owner takes answers one by
//! one, each call's waker records which call it was, and the owner is woken
//! at every answer. Once it has said it waits for them all
//! ([`CallSet::wait_for_all`]), every call is polled with one waker that
//! only counts down: the owner is woken once, when the last answer is in,
//! and then takes them all in the order the calls were made. (The group's
//! deadline, polled with the owner's own waker, wakes it then.) That waker
//! costs nothing per call, where a waker of its own cost each call an
//! allocation, and each answer a lock of the list both cores write to.

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

impl Shared {
    /// A call's answer is in: wakes the owner if it waits for each answer,
    /// or if this was the last.
    fn answered(&self) {
        // A call's waker fires once (when its answer is left for it), and
        // only after a poll that counted it: never below zero.
        let left = self.waiting.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 || !self.all_at_once.load(Ordering::Acquire) {
            self.owner.wake();
        }
    }
}

/// The waker of every call once the owner waits for them all: counts down.
impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.answered();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.answered();
    }
}

/// One call's waker, while the owner takes answers one by one: says which
/// call is done.
struct CallWaker {
    place: usize,
    shared: Arc<Shared>,
}

impl Wake for CallWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.shared.finished).push(self.place);
        self.shared.answered();
    }
}

/// One player's call, with the player's place in the group.
pub(super) struct Call {
    pub(super) index: usize,
    pub(super) call: PendingCall,
}

/// The calls still owed an answer.
#[derive(Default)]
pub(super) struct CallSet {
    calls: Vec<Option<Call>>,
    /// Each call's own waker, made at its first poll while the owner takes
    /// answers one by one.
    wakers: Vec<Option<Waker>>,
    /// Every call's waker once the owner waits for them all.
    all_waker: Option<Waker>,
    /// Calls not polled yet start here.
    unpolled: usize,
    /// Calls whose waker fired, taken from `shared` in one lock.
    due: VecDeque<usize>,
    /// Waiting for them all, the calls not yet found answered start here.
    unswept: usize,
    live: usize,
    shared: Arc<Shared>,
}

impl CallSet {
    pub(super) fn push(&mut self, call: Call) {
        self.calls.push(Some(call));
        self.wakers.push(None);
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
    pub(super) fn wait_for_all(&mut self) {
        self.shared.all_at_once.store(true, Ordering::Release);
        self.all_waker = Some(Waker::from(self.shared.clone()));
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
        if self.all_waker.is_some() {
            return self.sweep();
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

    /// Waiting for them all: once every call polled has had its answer,
    /// takes them in the order they were made.
    fn sweep(&mut self) -> Poll<Option<(usize, CallResult)>> {
        // Read after the owner's waker was registered: an answer counted
        // down after this read wakes it.
        if self.shared.waiting.load(Ordering::Acquire) != 0 {
            return Poll::Pending;
        }
        while self.unswept < self.calls.len() {
            let place = self.unswept;
            if self.calls[place].is_none() {
                self.unswept += 1;
                continue;
            }
            let Some(done) = self.poll_call(place) else {
                // Not answered after all (its poll counted it, and its
                // waker will wake the owner): looked at again then.
                return Poll::Pending;
            };
            self.unswept += 1;
            return Poll::Ready(Some(done));
        }
        Poll::Pending
    }

    /// Polls the call at `place`; its result if it has ended (it then
    /// leaves the set).
    fn poll_call(&mut self, place: usize) -> Option<(usize, CallResult)> {
        let Some(entry) = self.calls.get_mut(place).and_then(Option::as_mut) else {
            // Taken meanwhile (the deadline passed): a late waker's record.
            return None;
        };
        let waker = match &self.all_waker {
            Some(waker) => waker,
            None => self.wakers[place].get_or_insert_with(|| {
                Waker::from(Arc::new(CallWaker {
                    place,
                    shared: self.shared.clone(),
                }))
            }),
        };
        // Counted before the poll: a `Pending` leaves a waker to fire once.
        self.shared.waiting.fetch_add(1, Ordering::AcqRel);
        let mut cx = Context::from_waker(waker);
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
