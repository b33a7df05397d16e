//! The calls of one call to many players, polled only once their answer is
//! in.
//!
//! `FuturesUnordered` would do, but it wakes its owner at every answer: a
//! caller waiting for every answer of a room of 1,000 was woken, and its
//! task run, a thousand times. Here every call is given the set's waker as
//! it joins the set, which counts answers down. A caller that waits for them
//! all ([`CallSet::wait_for_all`]) is woken once every [`SWEEP_EVERY`]
//! answers and when the last is in, and takes them in the order the calls
//! were made, as far as they have come: no call is polled, and no call costs
//! an allocation. (The group's deadline, polled with the owner's own waker,
//! wakes it then.) A caller taking answers one by one needs to know which
//! call ended: at its first poll each call gets a waker of its own, which
//! records its place and wakes the owner at each answer.

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
    /// Calls whose own waker fired (their answer is in), by place, in order.
    finished: Mutex<Vec<usize>>,
    owner: AtomicWaker,
    /// Calls holding one of the set's wakers that has not fired yet. A call
    /// holds one waker at a time (a poll with its own replaces the set's),
    /// and fires it once, when its answer is left for it.
    waiting: AtomicUsize,
    /// Wake the owner only every [`SWEEP_EVERY`] answers and when
    /// `waiting` drops to zero.
    all_at_once: AtomicBool,
}

/// Waiting for every answer, the owner is woken each time this many more
/// are in, and takes those that have come in order so far: taking an answer
/// reads lines the answering connection wrote, on another core, and a
/// thousand of them taken after the last was in made a tail of their own.
/// 16: sixty-two wake-ups for a room of 1,000, and at most 16 answers
/// left to take once the last is in (`volley-bench --rooms-only 8`, seven
/// runs each, alternating: against raw TCP 0.778 with 16, 0.757 with 64,
/// 0.773 with 4).
const SWEEP_EVERY: usize = 16;

impl Shared {
    /// A call's answer is in: wakes the owner if it takes answers one by
    /// one, or if this was the last or closes a batch of [`SWEEP_EVERY`].
    fn answered(&self) {
        // Counted before its waker was left with the call: never below zero.
        let left = self.waiting.fetch_sub(1, Ordering::AcqRel) - 1;
        if left % SWEEP_EVERY == 0 || !self.all_at_once.load(Ordering::Acquire) {
            self.owner.wake();
        }
    }
}

/// The set's waker, which every call is given as it joins: counts down.
impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.answered();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.answered();
    }
}

/// One call's own waker, once the owner takes answers one by one: says
/// which call is done.
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
pub(super) struct CallSet {
    calls: Vec<Option<Call>>,
    /// Each call's own waker, made at its first poll.
    wakers: Vec<Option<Waker>>,
    /// The waker every call is given as it joins.
    set_waker: Waker,
    /// Taking answers one by one, the calls not polled yet start here.
    unpolled: usize,
    /// Calls whose waker fired, taken from `shared` in one lock.
    due: VecDeque<usize>,
    /// Waiting for them all, the calls not yet taken start here.
    unswept: usize,
    live: usize,
    shared: Arc<Shared>,
}

impl CallSet {
    /// A set with room for `calls` calls.
    pub(super) fn with_capacity(calls: usize) -> Self {
        let shared = Arc::new(Shared::default());
        Self {
            calls: Vec::with_capacity(calls),
            wakers: Vec::with_capacity(calls),
            set_waker: Waker::from(shared.clone()),
            unpolled: 0,
            due: VecDeque::new(),
            unswept: 0,
            live: 0,
            shared,
        }
    }

    /// Adds a call just made, leaving the set's waker with it while its
    /// state is still in this core's cache.
    pub(super) fn push(&mut self, call: Call) {
        // Counted first: the waker may fire as soon as it is left.
        self.shared.waiting.fetch_add(1, Ordering::AcqRel);
        if !call.call.register(&self.set_waker) {
            // Ended already: nothing will fire.
            self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
        }
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

    /// From now on the owner is woken once every [`SWEEP_EVERY`] answers and
    /// when every call has its answer (or by its own deadline), not at each.
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
        // Set by this owner: its own store is what it reads.
        if self.shared.all_at_once.load(Ordering::Relaxed) {
            return self.sweep();
        }
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

    /// Waiting for them all: takes the answers in the order the calls were
    /// made, as far as they have come.
    fn sweep(&mut self) -> Poll<Option<(usize, CallResult)>> {
        while self.unswept < self.calls.len() {
            let place = self.unswept;
            let Some(entry) = self.calls[place].as_mut() else {
                self.unswept += 1;
                continue;
            };
            // Not ended yet: the waker it holds fires when it does, and the
            // count it takes down reaches zero, or the end of a batch, at
            // that answer or a later one, which wakes the owner (the owner's
            // waker was registered before this look); or the deadline does.
            let Some(result) = entry.call.try_take() else {
                return Poll::Pending;
            };
            let index = entry.index;
            self.calls[place] = None;
            self.live -= 1;
            self.unswept += 1;
            return Poll::Ready(Some((index, result)));
        }
        Poll::Pending
    }

    /// Polls the call at `place` with its own waker; its result if it has
    /// ended (it then leaves the set).
    fn poll_call(&mut self, place: usize) -> Option<(usize, CallResult)> {
        let Some(entry) = self.calls.get_mut(place).and_then(Option::as_mut) else {
            // Taken meanwhile (the deadline passed): a late waker's record.
            return None;
        };
        let waker = self.wakers[place].get_or_insert_with(|| {
            Waker::from(Arc::new(CallWaker {
                place,
                shared: self.shared.clone(),
            }))
        });
        let mut cx = Context::from_waker(waker);
        match Pin::new(&mut entry.call).poll(&mut cx) {
            Poll::Ready(result) => {
                let index = entry.index;
                self.calls[place] = None;
                self.live -= 1;
                Some((index, result))
            }
            Poll::Pending => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use super::{Shared, SWEEP_EVERY};

    struct CountWakes(AtomicUsize);
    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Waiting for every answer, an owner that is back waiting after each
    /// wake-up is woken once per [`SWEEP_EVERY`] answers, not at each (the
    /// rooms tests cannot tell: their owner's wake-ups run together).
    #[test]
    fn an_owner_waiting_for_all_is_woken_once_per_batch() {
        const CALLS: usize = 200;
        let shared = Shared::default();
        shared.all_at_once.store(true, Ordering::Release);
        shared.waiting.store(CALLS, Ordering::Release);
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        for _ in 0..CALLS {
            shared.owner.register(&waker);
            shared.answered();
        }
        assert_eq!(wakes.0.load(Ordering::SeqCst), CALLS.div_ceil(SWEEP_EVERY));
        // Taking answers one by one wakes at each.
        shared.all_at_once.store(false, Ordering::Release);
        shared.waiting.store(CALLS, Ordering::Release);
        wakes.0.store(0, Ordering::SeqCst);
        for _ in 0..CALLS {
            shared.owner.register(&waker);
            shared.answered();
        }
        assert_eq!(wakes.0.load(Ordering::SeqCst), CALLS);
    }
}
