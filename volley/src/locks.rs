//! Lock helpers that survive poisoning.
//!
//! volley's registries are updated by single pushes or assignments, so a panic
//! in some other code holding a guard cannot leave them half-written; carrying
//! on is safe, and better than failing every later call on the server.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(debug_assertions)]
use std::time::{Duration, Instant};

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Longest a debug build lets a named lock be held before logging it.
#[cfg(debug_assertions)]
const HOLD_WARNING: Duration = Duration::from_millis(5);

/// A lock held for a stated purpose (quinn's `lock(purpose)` is the model):
/// the purpose names the call site in the code, and a debug build logs a
/// lock held longer than 5 ms with it. A release build keeps only the guard.
pub(crate) struct Held<'a, T> {
    guard: MutexGuard<'a, T>,
    #[cfg(debug_assertions)]
    purpose: &'static str,
    #[cfg(debug_assertions)]
    since: Instant,
}

#[cfg(test)]
thread_local! {
    /// The purposes of the named locks this thread takes, once a unit test
    /// starts recording them ([`record_locks`]).
    static TAKEN: std::cell::RefCell<Option<Vec<&'static str>>> = const { std::cell::RefCell::new(None) };
}

/// Starts recording the purposes of the named locks this thread takes, and
/// returns those recorded since the last call.
#[cfg(test)]
pub(crate) fn record_locks() -> Vec<&'static str> {
    TAKEN.with(|taken| taken.borrow_mut().replace(Vec::new()).unwrap_or_default())
}

/// Takes `mutex` for `purpose`, surviving poisoning like [`lock`].
pub(crate) fn lock_for<'a, T>(mutex: &'a Mutex<T>, purpose: &'static str) -> Held<'a, T> {
    #[cfg(not(debug_assertions))]
    let _ = purpose;
    #[cfg(test)]
    TAKEN.with(|taken| taken.borrow_mut().as_mut().map(|taken| taken.push(purpose)));
    Held {
        guard: lock(mutex),
        #[cfg(debug_assertions)]
        purpose,
        #[cfg(debug_assertions)]
        since: Instant::now(),
    }
}

impl<T> Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for Held<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(debug_assertions)]
impl<T> Drop for Held<'_, T> {
    fn drop(&mut self) {
        let held = self.since.elapsed();
        if held > HOLD_WARNING {
            tracing::debug!(purpose = self.purpose, ?held, "connection lock held long");
        }
    }
}
