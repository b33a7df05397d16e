//! Catching panics in user code (handlers, listeners, hooks, middleware), so
//! that a bug in a game's callback never takes a connection's task down.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a panic said, for the log.
pub(crate) fn panic_detail(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Runs the user callback `f`; a panic is logged with what panicked
/// (`callback`, and the remote's name where there is one) and turned into
/// `None`.
pub(crate) fn catch_user<R>(callback: &'static str, remote: Option<&'static str>, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(panic) => {
            tracing::error!(callback, remote, panic = %panic_detail(&*panic), "user callback panicked");
            None
        }
    }
}
