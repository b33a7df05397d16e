//! Where a call's result is left for its caller.
//!
//! tokio's oneshot channel would do, but on a pipelined connection it cost
//! more per call than the rest of the caller's side together: each poll of
//! its receiver also takes part in tokio's cooperative budget, and its state
//! machine is built for cases a call never meets. A call needs less: the
//! driver leaves one result, once; the caller takes it. One small mutex does
//! that, held by either side only for a few loads and stores.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use volley_proto::{CallId, FrameBytes};

use crate::error::FunctionError;
use crate::locks::lock;

/// How a call ended, as its caller sees it. A small answer is held inline
/// ([`FrameBytes`]): the caller then does not drop a view of the read buffer
/// on its own thread, which would move the buffer's reference count, touched
/// by the driver for every frame, between cores on every call.
pub(crate) type CallResult = Result<FrameBytes, FunctionError>;

#[derive(Default)]
struct Slot {
    result: Option<CallResult>,
    /// The caller's waker, once it has polled and found nothing.
    waker: Option<Waker>,
    /// The completer went away without a result (the connection's state was
    /// dropped).
    abandoned: bool,
    /// The call's id, once the call is in the session.
    id: Option<CallId>,
    /// The caller dropped its future before the call ended.
    cancelled: bool,
}

impl Slot {
    /// The call's end, if it has come: its result, or `Disconnected` if the
    /// completer went away without one.
    fn take_end(&mut self) -> Option<CallResult> {
        if let Some(result) = self.result.take() {
            return Some(result);
        }
        self.abandoned.then_some(Err(FunctionError::Disconnected))
    }
}

/// A new slot for a call, outside any connection's kept ones.
#[cfg(test)]
pub(crate) fn completion() -> (Completer, Completion) {
    let slot = Arc::new(Mutex::new(Slot::default()));
    (Completer(Some(slot.clone())), Completion(slot))
}

/// Slots of calls that ended, kept for the connection's next calls: in the
/// steady state a call allocates nothing.
#[derive(Default)]
pub(crate) struct Slots(Vec<Arc<Mutex<Slot>>>);

impl Slots {
    /// A slot for a call, without its id (the session gives it one later,
    /// [`Completer::assign`]): the driver keeps the [`Completer`], the
    /// caller awaits the [`Completion`]. A kept slot if there is one: kept
    /// slots are clean ([`keep`](Self::keep)), so it is handed out without
    /// taking its lock.
    ///
    /// `waker`, if given, is left in the slot before anyone else holds it
    /// (no lock), to be woken when the call ends: its caller need not poll
    /// the call before its answer can be there, which for a call's future
    /// (`Invocation`) was a second poll of every call, only to leave the
    /// waker.
    pub(crate) fn completion(&mut self, waker: Option<&Waker>) -> (Completer, Completion) {
        let mut slot = self.0.pop().unwrap_or_default();
        if let Some(waker) = waker {
            // Alone with it: a kept slot is kept only once nothing else holds
            // it, and a new one is new.
            match Arc::get_mut(&mut slot) {
                Some(alone) => alone.get_mut().unwrap_or_else(PoisonError::into_inner).waker = Some(waker.clone()),
                None => lock(&slot).waker = Some(waker.clone()),
            }
        }
        (Completer(Some(slot.clone())), Completion(slot))
    }

    /// Keeps the slot of a call whose caller is done with it, if nothing
    /// else holds it any more (the completer may still be letting go of
    /// it: then it is freed as usual), up to `most`: the connection's limit
    /// of calls pending. A pipelined caller gives back as many as one read
    /// of answers ended and starts as many calls again, so the steady state
    /// allocates nothing; a quiet connection gives them all back
    /// ([`release`](Self::release)), so an idle one holds none.
    pub(crate) fn keep(&mut self, done: &Completion, most: usize) {
        if self.0.len() >= most || Arc::strong_count(&done.0) != 1 {
            return;
        }
        *lock(&done.0) = Slot::default();
        self.0.push(done.0.clone());
    }

    /// A quiet connection gives them back.
    pub(crate) fn release(&mut self) {
        self.0 = Vec::new();
    }
}

/// The driver's end: leaves the result and wakes the caller.
pub(crate) struct Completer(Option<Arc<Mutex<Slot>>>);

impl Completer {
    /// Records the id the session gave the call; `false` if the caller has
    /// already given up on it (then the call must be cancelled).
    pub(crate) fn assign(&self, id: CallId) -> bool {
        let Some(slot) = &self.0 else {
            return false;
        };
        let mut slot = lock(slot);
        slot.id = Some(id);
        !slot.cancelled
    }

    /// Whether the caller has given up on the call.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_none_or(|slot| lock(slot).cancelled)
    }

    pub(crate) fn complete(mut self, result: CallResult) {
        if let Some(slot) = self.0.take() {
            Self::finish(slot, Some(result));
        }
    }

    /// Stores the result (or marks the slot abandoned), lets go of the slot,
    /// then wakes the caller. Letting go first leaves the caller the only
    /// holder when it wakes, so its slot can serve the connection's next
    /// call ([`Slots::keep`]); woken first, on another thread, it often
    /// found the slot still shared and it was freed.
    fn finish(slot: Arc<Mutex<Slot>>, result: Option<CallResult>) {
        let waker = {
            let mut slot = lock(&slot);
            match result {
                Some(result) => slot.result = Some(result),
                None => slot.abandoned = true,
            }
            slot.waker.take()
        };
        drop(slot);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            Self::finish(slot, None);
        }
    }
}

/// The caller's end: resolves to the result, or to
/// [`FunctionError::Disconnected`] if the completer went away without one.
pub(crate) struct Completion(Arc<Mutex<Slot>>);

impl Completion {
    /// The caller gives up: returns the call's id if the call is already in
    /// the session (and is to be cancelled there); otherwise whoever moves
    /// it there will find it cancelled and drop it.
    pub(crate) fn cancel(&self) -> Option<CallId> {
        let mut slot = lock(&self.0);
        slot.cancelled = true;
        slot.id
    }

    /// Leaves `waker` to be woken once the call ends, without polling;
    /// `false` if it has ended already (then nothing will wake it).
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        let mut slot = lock(&self.0);
        if slot.result.is_some() || slot.abandoned {
            return false;
        }
        slot.waker = Some(waker.clone());
        true
    }

    /// The call's end if it has come, leaving whatever waker it holds.
    pub(crate) fn try_take(&self) -> Option<CallResult> {
        lock(&self.0).take_end()
    }
}

impl Future for Completion {
    type Output = CallResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CallResult> {
        let mut slot = lock(&self.0);
        if let Some(end) = slot.take_end() {
            return Poll::Ready(end);
        }
        match &slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waker that counts how often it is woken.
    fn counting_waker() -> (Waker, Arc<std::sync::atomic::AtomicUsize>) {
        struct Count(Arc<std::sync::atomic::AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        (Waker::from(Arc::new(Count(count.clone()))), count)
    }

    fn poll(completion: &mut Completion) -> Poll<CallResult> {
        Pin::new(completion).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn the_result_left_is_the_result_taken() {
        let (completer, mut completion) = completion();
        assert!(poll(&mut completion).is_pending());
        completer.complete(Ok(FrameBytes::from(&b"x"[..])));
        let Poll::Ready(Ok(reply)) = poll(&mut completion) else {
            panic!("no reply");
        };
        assert_eq!(&*reply, b"x");
    }

    #[test]
    fn a_cancel_sees_the_id_assigned_before_it_and_an_assign_sees_the_cancel_before_it() {
        let (completer, caller) = completion();
        assert!(!completer.is_cancelled());
        assert!(completer.assign(3));
        assert_eq!(caller.cancel(), Some(3));
        assert!(completer.is_cancelled());
        let (completer, caller) = completion();
        assert_eq!(caller.cancel(), None);
        assert!(!completer.assign(4));
    }

    #[test]
    fn a_slot_is_kept_only_once_nothing_else_holds_it_and_comes_back_clean() {
        let mut slots = Slots::default();
        let (completer, mut first) = slots.completion(None);
        assert!(completer.assign(1));
        assert!(poll(&mut first).is_pending());
        // The completer still holds it: not kept.
        slots.keep(&first, 64);
        assert_eq!(slots.0.len(), 0);
        completer.complete(Err(FunctionError::Timeout));
        assert_eq!(poll(&mut first), Poll::Ready(Err(FunctionError::Timeout)));
        slots.keep(&first, 64);
        assert_eq!(slots.0.len(), 1);
        let kept = Arc::as_ptr(&first.0);
        drop(first);
        // The next call gets it, with its own id and nothing of the last.
        let (completer, mut second) = slots.completion(None);
        assert_eq!(Arc::as_ptr(&second.0), kept);
        assert!(poll(&mut second).is_pending());
        assert!(completer.assign(2));
        assert_eq!(second.cancel(), Some(2));
        // At most as many as the connection may have calls pending.
        let done: Vec<_> = (0..64 + 5)
            .map(|_| {
                let (completer, completion) = completion();
                completer.complete(Err(FunctionError::Timeout));
                completion
            })
            .collect();
        for completion in &done {
            slots.keep(completion, 64);
        }
        assert_eq!(slots.0.len(), 64);
    }

    #[test]
    fn a_waker_left_without_polling_fires_once_at_the_end_and_taking_does_not_wait() {
        let (waker, count) = counting_waker();
        let fired = || count.load(std::sync::atomic::Ordering::SeqCst);
        let (completer, completion) = completion();
        assert!(completion.register(&waker));
        assert_eq!(completion.try_take(), None);
        assert_eq!(fired(), 0);
        completer.complete(Err(FunctionError::Timeout));
        assert_eq!(fired(), 1);
        assert!(!completion.register(&waker), "ended: nothing would fire");
        assert_eq!(completion.try_take(), Some(Err(FunctionError::Timeout)));
        let (completer, abandoned) = super::completion();
        drop(completer);
        assert!(!abandoned.register(&waker));
        assert_eq!(abandoned.try_take(), Some(Err(FunctionError::Disconnected)));
    }

    #[test]
    fn a_waker_given_with_the_slot_fires_at_the_end_without_a_poll_new_or_kept() {
        let (waker, count) = counting_waker();
        let fired = || count.load(std::sync::atomic::Ordering::SeqCst);
        let mut slots = Slots::default();
        // A new slot, then the same slot kept.
        for round in 1..=2 {
            let (completer, mut completion) = slots.completion(Some(&waker));
            assert_eq!(fired(), round - 1);
            completer.complete(Err(FunctionError::Timeout));
            assert_eq!(fired(), round, "woken without having been polled");
            assert_eq!(poll(&mut completion), Poll::Ready(Err(FunctionError::Timeout)));
            slots.keep(&completion, 4);
            assert_eq!(slots.0.len(), 1);
        }
        // Without one, nothing fires.
        let (completer, _completion) = slots.completion(None);
        completer.complete(Err(FunctionError::Timeout));
        assert_eq!(fired(), 2);
    }

    #[test]
    fn a_completer_dropped_unused_means_disconnected() {
        let (completer, mut completion) = completion();
        drop(completer);
        assert_eq!(poll(&mut completion), Poll::Ready(Err(FunctionError::Disconnected)));
    }

    #[test]
    fn completing_wakes_the_caller_that_polled() {
        let (completer, completion) = completion();
        let woke = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(completion)
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        completer.complete(Err(FunctionError::Timeout));
        assert_eq!(woke.join().unwrap(), Err(FunctionError::Timeout));
    }
}
