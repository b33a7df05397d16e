//! Running a future inline when it need not wait: handlers and middleware
//! that finish at once run on the connection's task, with no task hop.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls `fut` once, inline: its output if it finished without waiting,
/// otherwise the future itself, to be run as a task (which polls it again
/// with a real waker, as the `Future` contract allows).
pub(crate) fn poll_once<T>(
    mut fut: Pin<Box<dyn Future<Output = T> + Send>>,
) -> Result<T, Pin<Box<dyn Future<Output = T> + Send>>> {
    match fut.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop())) {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => Err(fut),
    }
}

/// Runs `fut` inline if it finishes without waiting, else as its own task.
pub(crate) fn run_soon(fut: Pin<Box<dyn Future<Output = ()> + Send>>) {
    if let Err(fut) = poll_once(fut) {
        tokio::spawn(fut);
    }
}

/// Runs `step` once with a context that never wakes anything, outside
/// tokio's cooperative budget.
///
/// For I/O a caller does on the spot, whose fallback is waking the driver:
/// tokio's resources refuse (`Pending`) once the polling task has used its
/// budget of 128 operations, so a task that starts calls to many players in
/// one poll (a call to a room of 1,000) had all but its first 128 written by
/// their drivers, a task wake-up each.
pub(crate) fn unbudgeted<R>(step: impl FnOnce(&mut Context<'_>) -> R) -> R {
    let mut step = Some(step);
    let once = std::future::poll_fn(|cx| Poll::Ready(step.take().map(|step| step(cx))));
    let mut once = std::pin::pin!(tokio::task::coop::unconstrained(once));
    match once.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop())) {
        Poll::Ready(Some(output)) => output,
        // A `poll_fn` that is ready at once, polled once.
        Poll::Ready(None) | Poll::Pending => unreachable!("polled once, ready at once"),
    }
}
