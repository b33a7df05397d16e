//! Logging each call.

use std::fmt;
use std::time::Instant;

use super::{BoxFuture, CallResult, Middleware, Next, Request};

/// Logs each call or event at `debug` level with its remote, size, how long
/// the handler took and how it ended; refusals at `info`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Trace;

impl<C: fmt::Debug + Send + 'static> Middleware<C> for Trace {
    fn call(&self, req: Request<C>, next: Next<C>) -> BoxFuture<CallResult> {
        let (remote, size, peer) = (req.remote(), req.size(), format!("{:?}", req.peer()));
        let started = Instant::now();
        let fut = next.run(req);
        Box::pin(async move {
            let result = fut.await;
            let micros = started.elapsed().as_micros() as u64;
            match &result {
                Ok(_) => tracing::debug!(remote, size, micros, peer, "handled"),
                Err(reject) => tracing::info!(remote, size, micros, peer, ?reject, "refused"),
            }
            result
        })
    }
}
