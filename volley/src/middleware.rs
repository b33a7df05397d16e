//! Middleware: code that runs between the wire and a handler or listener, on
//! the receiving side.
//!
//! A middleware has two hooks, both optional:
//!
//! - [`admit`](Middleware::admit) runs first, **before the payload is decoded**,
//!   on the connection's task. It sees the peer, the remote and the payload's
//!   size, and is where cheap limits belong ([`RateLimit`]): a refused call
//!   costs no decoding.
//! - [`call`](Middleware::call) wraps the handler after decoding and
//!   validation, like a tower layer. It sees the decoded arguments
//!   ([`Request::args`]), and may change them, pass them on with
//!   [`Next::run`], answer itself (`Ok(Response::new(value))`), reject with a
//!   message (`Err(Reject::new(..))`), or drop the call
//!   (`Err(Reject::drop_request())`: the caller gets
//!   [`FunctionError::Cancelled`](crate::FunctionError::Cancelled)). For an
//!   event, the "handler" is the event's listeners and the response is `()`.
//!
//! On the sending side, [`Server::middleware_outgoing`](crate::Server::middleware_outgoing)
//! and [`Client::middleware_outgoing`](crate::Client::middleware_outgoing) run
//! the `admit` hook of a middleware before each call or event leaves (a
//! refusal fails the call at once); there is no sending-side `call` hook, as
//! the caller can wrap its own future.
//!
//! **Order**: global middleware ([`Server::middleware`](crate::Server::middleware))
//! wraps per-remote middleware ([`Server::middleware_for`](crate::Server::middleware_for)),
//! which wraps the handler; within each list, the first registered is the
//! outermost. `admit` hooks run in the same order, before any `call` hook.
//!
//! The async closure form is [`from_fn`]:
//!
//! ```
//! use volley::middleware::{from_fn, Next, Request};
//! use volley::{Player, Reject};
//!
//! let banned = from_fn(|req: Request<Player>, next: Next<Player>| async move {
//!     if req.peer().id().0 == 13 {
//!         return Err(Reject::new("you are banned"));
//!     }
//!     next.run(req).await
//! });
//! # let _ = banned;
//! ```
//!
//! Remotes with no `call` middleware keep the fast path: the handler runs on
//! the connection's task with no boxing. A `call` chain that finishes without
//! waiting also completes inline; one that waits runs as its own task.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Reject;
use crate::locks::lock;
use crate::server::{Player, PlayerId};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A decoded call or event on its way to the handler.
pub struct Request<C> {
    peer: C,
    remote: &'static str,
    size: usize,
    args: Box<dyn Any + Send>,
}

impl<C> Request<C> {
    pub(crate) fn new(peer: C, remote: &'static str, size: usize, args: Box<dyn Any + Send>) -> Self {
        Self {
            peer,
            remote,
            size,
            args,
        }
    }

    /// Who sent it: the [`Player`] on the server, `()` on a client.
    pub fn peer(&self) -> &C {
        &self.peer
    }

    /// The remote's declared name.
    pub fn remote(&self) -> &'static str {
        self.remote
    }

    /// Size of the encoded arguments in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The decoded arguments, if they are a `T` (the remote's request type).
    pub fn args<T: 'static>(&self) -> Option<&T> {
        self.args.downcast_ref()
    }

    /// The decoded arguments, to change them before the handler sees them.
    pub fn args_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.args.downcast_mut()
    }

    pub(crate) fn into_parts(self) -> (C, Box<dyn Any + Send>) {
        (self.peer, self.args)
    }
}

impl<C: fmt::Debug> fmt::Debug for Request<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("peer", &self.peer)
            .field("remote", &self.remote)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A handler's result, or a middleware's own answer: a value of the remote's
/// response type (`()` for events).
pub struct Response(Box<dyn Any + Send>);

impl Response {
    /// Wraps a value; it must be the remote's response type, or the caller
    /// gets [`FunctionError::Unprocessed`](crate::FunctionError::Unprocessed)
    /// and the mismatch is logged.
    pub fn new<T: Send + 'static>(value: T) -> Self {
        Self(Box::new(value))
    }

    /// The value, if it is a `T`.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }

    /// The value, to change it on its way back.
    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.0.downcast_mut()
    }

    pub(crate) fn into_inner(self) -> Box<dyn Any + Send> {
        self.0
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Response(..)")
    }
}

/// What a `call` hook returns.
pub type CallResult = Result<Response, Reject>;

pub(crate) type Terminal<C> = Arc<dyn Fn(Request<C>) -> BoxFuture<CallResult> + Send + Sync>;

/// The rest of the chain: the inner middleware and then the handler.
pub struct Next<C> {
    chain: Arc<[Arc<dyn Middleware<C>>]>,
    index: usize,
    terminal: Terminal<C>,
}

impl<C: Send + 'static> Next<C> {
    pub(crate) fn new(chain: Arc<[Arc<dyn Middleware<C>>]>, terminal: Terminal<C>) -> Self {
        Self {
            chain,
            index: 0,
            terminal,
        }
    }

    /// Passes the request on.
    pub fn run(mut self, req: Request<C>) -> BoxFuture<CallResult> {
        match self.chain.get(self.index).cloned() {
            Some(middleware) => {
                self.index += 1;
                middleware.call(req, self)
            }
            None => (self.terminal)(req),
        }
    }
}

impl<C> fmt::Debug for Next<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &(self.chain.len() - self.index))
            .finish()
    }
}

/// Runs between the wire and a handler; see the [module docs](self).
/// `C` is the peer type: [`Player`] on the server, `()` on a client.
pub trait Middleware<C>: Send + Sync + 'static {
    /// Before decoding: admit the call or event, or refuse it. Runs on the
    /// connection's task; keep it cheap and non-blocking.
    fn admit(&self, peer: &C, remote: &'static str, size: usize) -> Result<(), Reject> {
        let _ = (peer, remote, size);
        Ok(())
    }

    /// Whether [`call`](Self::call) does anything; `false` keeps the handler
    /// on the fast path. Implementations that override `call` return `true`.
    fn wraps_calls(&self) -> bool {
        false
    }

    /// Around the handler, after decoding.
    fn call(&self, req: Request<C>, next: Next<C>) -> BoxFuture<CallResult>
    where
        C: Send + 'static,
    {
        next.run(req)
    }

    /// The peer disconnected: forget anything kept about it.
    fn disconnected(&self, peer: &C) {
        let _ = peer;
    }
}

/// Middleware from an async closure; see [`from_fn`].
pub struct FromFn<F>(F);

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromFn")
    }
}

/// Makes middleware from `|request, next| async move { .. next.run(request).await }`.
pub fn from_fn<C, F, Fut>(f: F) -> FromFn<F>
where
    F: Fn(Request<C>, Next<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CallResult> + Send + 'static,
{
    FromFn(f)
}

impl<C, F, Fut> Middleware<C> for FromFn<F>
where
    C: Send + 'static,
    F: Fn(Request<C>, Next<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CallResult> + Send + 'static,
{
    fn wraps_calls(&self) -> bool {
        true
    }

    fn call(&self, req: Request<C>, next: Next<C>) -> BoxFuture<CallResult> {
        Box::pin((self.0)(req, next))
    }
}

/// A token bucket: `rate` tokens a second, holding at most `burst`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            last: now,
        }
    }

    /// Refills for the time passed, then takes `cost` if there is that much.
    pub(crate) fn take(&mut self, cost: f64, rate: f64, burst: f64, now: Instant) -> bool {
        self.refill(rate, burst, now);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Takes `cost` even into debt; returns how long until the bucket is
    /// back above zero (zero if it still is).
    pub(crate) fn charge(&mut self, cost: f64, rate: f64, burst: f64, now: Instant) -> Duration {
        self.refill(rate, burst, now);
        self.tokens -= cost;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
    }
}

/// A cap on the bytes a peer may send per second, enforced as it is read:
/// once the peer is over budget, volley stops reading from its connection
/// until the budget refills. The peer's sends then back up in its own socket
/// buffer (TCP flow control), so a client sending huge payloads at a high
/// rate is slowed to the budget and costs the server neither memory nor
/// decoding; other players are not affected. Set it with
/// [`ServerConfig::with_receive_budget`](crate::ServerConfig::with_receive_budget);
/// off by default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ByteBudget {
    /// Sustained bytes per second.
    pub per_second: f64,
    /// Bytes that may arrive at once after a quiet spell.
    pub burst: f64,
}

impl ByteBudget {
    /// `per_second` bytes a second on average, bursts of up to four seconds' worth.
    ///
    /// # Panics
    ///
    /// If `per_second` is zero: nothing could ever be read.
    #[track_caller]
    pub fn per_second(per_second: u64) -> Self {
        assert!(per_second > 0, "ByteBudget::per_second(0): nothing could ever be read");
        Self {
            per_second: per_second as f64,
            burst: per_second as f64 * 4.0,
        }
    }

    /// Sets the burst, in bytes. [`ServerConfig::validate`](crate::ServerConfig::validate)
    /// refuses one smaller than the largest frame.
    ///
    /// # Panics
    ///
    /// If `burst` is zero.
    #[track_caller]
    pub fn with_burst(mut self, burst: u64) -> Self {
        assert!(burst > 0, "ByteBudget::with_burst(0): nothing could ever be read");
        self.burst = burst as f64;
        self
    }
}

/// Per-player rate limit, for each remote separately: a token bucket per
/// (player, remote). A call over the limit is answered
/// [`FunctionError::RateLimited`](crate::FunctionError::RateLimited) at once,
/// before its payload is decoded; an event over the limit is dropped.
///
/// Default: 30 calls or events a second, bursts of up to 60.
#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<(PlayerId, &'static str), TokenBucket>>,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::per_second(30.0).with_burst(60.0)
    }
}

impl RateLimit {
    /// `per_second` on average, bursts of twice that.
    ///
    /// # Panics
    ///
    /// If `per_second` is not a positive, finite number.
    #[track_caller]
    pub fn per_second(per_second: f64) -> Self {
        assert!(
            per_second > 0.0 && per_second.is_finite(),
            "RateLimit::per_second({per_second}): must be positive and finite"
        );
        Self {
            per_second,
            burst: per_second * 2.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the largest burst.
    ///
    /// # Panics
    ///
    /// If `burst` is under one (no call could pass) or not finite.
    #[track_caller]
    pub fn with_burst(mut self, burst: f64) -> Self {
        assert!(
            burst >= 1.0 && burst.is_finite(),
            "RateLimit::with_burst({burst}): must be at least 1 and finite"
        );
        self.burst = burst;
        self
    }
}

impl Middleware<Player> for RateLimit {
    fn admit(&self, peer: &Player, remote: &'static str, _size: usize) -> Result<(), Reject> {
        let now = crate::conn::now();
        let mut buckets = lock(&self.buckets);
        let bucket = buckets
            .entry((peer.id(), remote))
            .or_insert_with(|| TokenBucket::full(self.burst, now));
        if bucket.take(1.0, self.per_second, self.burst, now) {
            Ok(())
        } else {
            tracing::debug!(remote, "rate limited");
            Err(Reject::rate_limited())
        }
    }

    fn disconnected(&self, peer: &Player) {
        let mut buckets = lock(&self.buckets);
        buckets.retain(|(id, _), _| *id != peer.id());
    }
}

/// Per-player limit on calls of one remote running at once (apply it with
/// [`Server::middleware_for`](crate::Server::middleware_for)); more are
/// answered [`FunctionError::Overloaded`](crate::FunctionError::Overloaded).
/// The session's `max_incoming_calls` (default 64) already bounds all of a
/// player's calls together; this bounds an expensive remote more tightly.
#[derive(Debug)]
pub struct ConcurrencyLimit {
    max: usize,
    running: Arc<Mutex<HashMap<PlayerId, usize>>>,
}

impl ConcurrencyLimit {
    /// At most `max` at once per player.
    ///
    /// # Panics
    ///
    /// If `max` is zero: no call could ever run.
    #[track_caller]
    pub fn new(max: usize) -> Self {
        assert!(max > 0, "ConcurrencyLimit::new(0): no call could ever run");
        Self {
            max,
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// Gives a running slot back when the call ends, however it ends.
struct Slot {
    running: Arc<Mutex<HashMap<PlayerId, usize>>>,
    player: PlayerId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = lock(&self.running);
        if let Some(n) = running.get_mut(&self.player) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.player);
            }
        }
    }
}

impl Middleware<Player> for ConcurrencyLimit {
    fn wraps_calls(&self) -> bool {
        true
    }

    fn call(&self, req: Request<Player>, next: Next<Player>) -> BoxFuture<CallResult> {
        let player = req.peer().id();
        {
            let mut running = lock(&self.running);
            let n = running.entry(player).or_insert(0);
            if *n >= self.max {
                return Box::pin(async { Err(Reject::overloaded()) });
            }
            *n += 1;
        }
        let slot = Slot {
            running: self.running.clone(),
            player,
        };
        let fut = next.run(req);
        Box::pin(async move {
            let result = fut.await;
            drop(slot);
            result
        })
    }
}

/// Logs each call or event at `debug` level with its remote, size, how long
/// the handler took and how it ended; refusals at `info`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Trace;

impl<C: fmt::Debug + Send + 'static> Middleware<C> for Trace {
    fn wraps_calls(&self) -> bool {
        true
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_its_rate_up_to_its_burst() {
        let start = Instant::now();
        let mut b = TokenBucket::full(2.0, start);
        assert!(b.take(1.0, 10.0, 2.0, start));
        assert!(b.take(1.0, 10.0, 2.0, start));
        assert!(!b.take(1.0, 10.0, 2.0, start));
        // 0.1 s at 10/s gives one token back.
        assert!(b.take(1.0, 10.0, 2.0, start + Duration::from_millis(100)));
        // A long pause refills to the burst, not beyond.
        let later = start + Duration::from_secs(60);
        assert!(b.take(2.0, 10.0, 2.0, later));
        assert!(!b.take(1.0, 10.0, 2.0, later));
        // Charging into debt says how long to wait.
        assert_eq!(b.charge(5.0, 10.0, 2.0, later), Duration::from_millis(500));
    }
}
