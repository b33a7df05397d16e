//! The hand-off between the handles that queue work for a connection and the
//! driver task that does it: when a handle must wake the driver, and why no
//! wake-up is lost.
//!
//! The rule, in two halves:
//!
//! 1. A handle queues its work under one of the connection's *work locks*
//!    (the session's or the outbox's), releases it, and only then calls
//!    [`Wakeup::wake`].
//! 2. The driver marks itself busy as it starts ([`driver_starts`]), and
//!    clears that only in [`sleep`], which it calls while holding *every*
//!    work lock, after finding no work under them.
//!
//! Why nothing is lost: if `wake` sees the driver busy, the `sleep` that will
//! clear it takes the work lock our handle has released, so that `sleep`'s
//! last look for work comes after our work was queued and sees it. If `wake`
//! sees it not busy, the waker `sleep` stored before clearing the flag is
//! there to take (or another handle took it, and the driver it woke looks for
//! work under the same locks before it can sleep again).
//!
//! A handle that sees the driver busy never touches the waker's lock: a busy
//! driver is the common case under load, and waking a task from inside its
//! own poll would reschedule it as a yield and wake another worker thread
//! for nothing.
//!
//! `tests/wakeup.rs` of the `volley-net-loom` crate checks this file, as it
//! is, under every interleaving `loom` finds.
//!
//! [`driver_starts`]: Wakeup::driver_starts
//! [`sleep`]: Wakeup::sleep

use std::task::Waker;

#[cfg(loom)]
use loom::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex,
};
#[cfg(not(loom))]
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex,
};

/// The driver's busy flag and its waker while it sleeps, plus a hint that
/// calls wait in the outbox.
#[derive(Debug)]
pub(crate) struct Wakeup {
    /// The driver is polling: set as it starts, cleared only by
    /// [`sleep`](Self::sleep).
    busy: AtomicBool,
    /// Calls wait in the outbox: lets the driver skip the outbox's lock in a
    /// round that has nothing to take. Only a hint; `sleep`'s caller looks in
    /// the outbox itself.
    queued: AtomicBool,
    /// The driver's waker, stored by `sleep`, taken by the `wake` that wakes
    /// it.
    waker: Mutex<Option<Waker>>,
}

impl Default for Wakeup {
    fn default() -> Self {
        Self::new()
    }
}

impl Wakeup {
    pub(crate) fn new() -> Self {
        Self {
            busy: AtomicBool::new(false),
            queued: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }

    /// The driver starts a poll: work queued from now on is its to find.
    pub(crate) fn driver_starts(&self) {
        self.busy.store(true, Ordering::Release);
    }

    /// Whether the driver is polling (and will find new work itself).
    pub(crate) fn driver_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Wakes the driver if it sleeps. Call after releasing the work lock the
    /// work was queued under.
    pub(crate) fn wake(&self) {
        // Checked before the lock: a busy driver is the common case.
        if self.driver_busy() {
            return;
        }
        let waker = {
            let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
            if self.driver_busy() {
                None
            } else {
                slot.take()
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The driver goes to sleep: stores its waker and stops counting as busy.
    ///
    /// The caller holds every work lock and found no work under them; that
    /// is what makes a handle's `wake` safe to skip while the driver is busy.
    pub(crate) fn sleep(&self, waker: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some(stored) if stored.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
        self.busy.store(false, Ordering::Release);
    }

    /// Calls were put in the outbox (call under the outbox's lock).
    pub(crate) fn mark_queued(&self) {
        self.queued.store(true, Ordering::Release);
    }

    /// Whether calls may wait in the outbox (read without its lock).
    pub(crate) fn calls_queued(&self) -> bool {
        self.queued.load(Ordering::Acquire)
    }

    /// The driver takes the outbox whole (call under the outbox's lock).
    pub(crate) fn clear_queued(&self) {
        self.queued.store(false, Ordering::Relaxed);
    }
}
