//! Where a call's result is left for its caller.
//!
//! tokio's oneshot channel would do, but on a pipelined connection it cost
//! more per call than the rest of the caller's side together: each poll of
//! its receiver also takes part in tokio's cooperative budget, and its state
//! machine is built for cases a call never meets. A call needs less: the
//! driver leaves one result, once; the caller takes it. One small mutex does
//! that, held by either side only for a few loads and stores; beside it, one
//! atomic word says whether the call was sent and with which id, or given
//! up before it was.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

/// A call's slot: its end behind a lock, and beside it one word for where
/// the call is on its way out. The driver takes a queued call with one
/// atomic operation on it ([`Completer::claim`]; it took two locks), and a
/// caller that gives up before that is never sent.
#[derive(Default)]
struct Shared {
    /// [`NOT_SENT`], [`GIVEN_UP`], [`SENDING`], or the call's id plus
    /// [`ID_BASE`].
    call: AtomicU64,
    end: Mutex<Slot>,
}

/// The call waits to be sent, and its caller still wants it.
const NOT_SENT: u64 = 0;
/// The caller gave up before the call was sent: it never will be.
const GIVEN_UP: u64 = 1;
/// The driver took the call to send it; its id follows, under the
/// connection's lock.
const SENDING: u64 = 2;
/// Added to a call's id in [`Shared::call`].
const ID_BASE: u64 = 3;

impl Shared {
    fn end(&self) -> std::sync::MutexGuard<'_, Slot> {
        lock(&self.end)
    }
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
    let slot = Arc::new(Shared::default());
    (Completer(Some(slot.clone())), Completion(slot))
}

/// Slots of calls that ended, kept for the connection's next calls: in the
/// steady state a call allocates nothing.
#[derive(Default)]
pub(crate) struct Slots(Vec<Arc<Shared>>);

impl Slots {
    /// A slot for a call, without its id (the session gives it one later,
    /// [`Completer::sent`]): the driver keeps the [`Completer`], the
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
                Some(alone) => alone.end.get_mut().unwrap_or_else(PoisonError::into_inner).waker = Some(waker.clone()),
                None => slot.end().waker = Some(waker.clone()),
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
    ///
    /// Taken by value: alone with the slot, it is cleaned through `&mut`
    /// and moved in. Through a shared reference it took the slot's lock and
    /// unlock, a new reference and the drop of the old: four atomic
    /// operations a call where one now checks that it is alone, on a line
    /// the driver had just written from the other core (pipelined calls,
    /// `volley-bench --profile pipelined`, medians of eight 3-s runs: 847 →
    /// 820 and 847 → 838 ns of CPU a call).
    pub(crate) fn keep(&mut self, mut done: Completion, most: usize) {
        if self.0.len() >= most {
            return;
        }
        let Some(alone) = Arc::get_mut(&mut done.0) else {
            return;
        };
        *alone.end.get_mut().unwrap_or_else(PoisonError::into_inner) = Slot::default();
        *alone.call.get_mut() = NOT_SENT;
        self.0.push(done.0);
    }

    /// A quiet connection gives them back.
    pub(crate) fn release(&mut self) {
        self.0 = Vec::new();
    }
}

/// The driver's end: leaves the result and wakes the caller.
pub(crate) struct Completer(Option<Arc<Shared>>);

impl Completer {
    /// Takes a queued call to send it; `false` if its caller gave up first
    /// (then it is not sent). Call under the connection's lock, and
    /// [`sent`](Self::sent) under the same lock once the session took it.
    pub(crate) fn claim(&self) -> bool {
        self.0.as_ref().is_some_and(|slot| {
            slot.call
                .compare_exchange(NOT_SENT, SENDING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// Records the id the session gave the call, under the connection's
    /// lock: a caller that gives up from now on reads it there and cancels
    /// the call ([`Completion::call_id`]). After [`claim`](Self::claim) for
    /// a queued call; alone for a call sent by its own caller, who cannot
    /// have given it up.
    pub(crate) fn sent(&self, id: CallId) {
        if let Some(slot) = &self.0 {
            slot.call.store(u64::from(id) + ID_BASE, Ordering::Release);
        }
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
    fn finish(slot: Arc<Shared>, result: Option<CallResult>) {
        let waker = {
            let mut slot = slot.end();
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
pub(crate) struct Completion(Arc<Shared>);

impl Completion {
    /// The caller gives up: `true` if the call was not sent and now never
    /// will be; `false` if the driver took it (then its id, under the
    /// connection's lock, says what to cancel: [`call_id`](Self::call_id)).
    pub(crate) fn give_up(&self) -> bool {
        match self
            .0
            .call
            .compare_exchange(NOT_SENT, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(GIVEN_UP) => true,
            Err(_) => false,
        }
    }

    /// The id the session gave the call, if it took it. Read under the
    /// connection's lock, where the driver claims a call and records its id.
    pub(crate) fn call_id(&self) -> Option<CallId> {
        let call = self.0.call.load(Ordering::Acquire);
        call.checked_sub(ID_BASE).and_then(|id| CallId::try_from(id).ok())
    }

    /// Leaves `waker` to be woken once the call ends, without polling;
    /// `false` if it has ended already (then nothing will wake it).
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        let mut slot = self.0.end();
        if slot.result.is_some() || slot.abandoned {
            return false;
        }
        slot.waker = Some(waker.clone());
        true
    }

    /// The call's end if it has come, leaving whatever waker it holds.
    pub(crate) fn try_take(&self) -> Option<CallResult> {
        self.0.end().take_end()
    }
}

impl Future for Completion {
    type Output = CallResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CallResult> {
        let mut slot = self.0.end();
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
    fn a_call_given_up_before_it_is_claimed_is_never_sent_and_one_claimed_tells_its_id() {
        let (completer, caller) = completion();
        assert_eq!(caller.call_id(), None);
        assert!(completer.claim());
        assert_eq!(caller.call_id(), None);
        completer.sent(3);
        assert!(!caller.give_up());
        assert_eq!(caller.call_id(), Some(3));
        let (completer, caller) = completion();
        assert!(caller.give_up());
        assert!(caller.give_up());
        assert!(!completer.claim());
        assert_eq!(caller.call_id(), None);
    }

    #[test]
    fn a_slot_is_kept_only_once_nothing_else_holds_it_and_comes_back_clean() {
        let mut slots = Slots::default();
        // The completer still holds it: not kept.
        let (held, given_up) = slots.completion(None);
        let shared = Arc::downgrade(&given_up.0);
        slots.keep(given_up, 64);
        assert_eq!(slots.0.len(), 0);
        drop(held);
        assert!(shared.upgrade().is_none(), "freed once the completer lets go");
        let (completer, mut first) = slots.completion(None);
        assert!(completer.claim());
        completer.sent(1);
        assert!(poll(&mut first).is_pending());
        completer.complete(Err(FunctionError::Timeout));
        assert_eq!(poll(&mut first), Poll::Ready(Err(FunctionError::Timeout)));
        let kept = Arc::as_ptr(&first.0);
        slots.keep(first, 64);
        assert_eq!(slots.0.len(), 1);
        // The next call gets it, with its own id and nothing of the last.
        let (completer, mut second) = slots.completion(None);
        assert_eq!(Arc::as_ptr(&second.0), kept);
        assert!(poll(&mut second).is_pending());
        assert_eq!(second.call_id(), None);
        assert!(completer.claim());
        completer.sent(2);
        assert_eq!(second.call_id(), Some(2));
        // One whose completer went away without a result comes back clean
        // too: its next call waits for its own end.
        drop(completer);
        assert_eq!(poll(&mut second), Poll::Ready(Err(FunctionError::Disconnected)));
        slots.keep(second, 64);
        let (_completer, mut third) = slots.completion(None);
        assert_eq!(Arc::as_ptr(&third.0), kept);
        assert!(poll(&mut third).is_pending());
        // At most as many as the connection may have calls pending.
        let done: Vec<_> = (0..64 + 5)
            .map(|_| {
                let (completer, completion) = completion();
                completer.complete(Err(FunctionError::Timeout));
                completion
            })
            .collect();
        for completion in done {
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
            slots.keep(completion, 4);
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
