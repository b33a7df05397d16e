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
