//! Limits per peer: calls per second for each remote ([`RateLimit`]), calls
//! of one remote at once ([`ConcurrencyLimit`]). Their state lives in each
//! connection's [`PeerState`].

use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use super::{Admit, BoxFuture, CallResult, Middleware, Next, Request};
use crate::budget::TokenBucket;
use crate::error::Reject;
use crate::locks::lock;
use crate::peer::{Peer, PeerState};

/// Per-peer rate limit, for each remote separately: a token bucket per
/// (peer, remote). A call over the limit is answered
/// [`FunctionError::RateLimited`](crate::FunctionError::RateLimited) at once,
/// before its payload is decoded; an event over the limit is dropped. An
/// [`Admit`]: register it with `admit` or `admit_for`.
///
/// Default: 30 calls or events a second, bursts of up to 60.
#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    burst: f64,
    /// The buckets of a peer without a [`PeerState`] (a client's one server).
    own: Mutex<Buckets>,
}

type Buckets = FxHashMap<&'static str, TokenBucket>;

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
            burst: (per_second * 2.0).max(1.0),
            own: Mutex::default(),
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

    fn take(&self, buckets: &mut Buckets, remote: &'static str) -> bool {
        let now = crate::clock::now();
        let bucket = buckets
            .entry(remote)
            .or_insert_with(|| TokenBucket::full(self.burst, now));
        bucket.take(1.0, self.per_second, self.burst, now)
    }
}

impl<C: Peer> Admit<C> for RateLimit {
    fn admit(&self, peer: &C, remote: &'static str, _size: usize) -> Result<(), Reject> {
        let admitted = match peer.state() {
            Some(state) => state.with(self, |buckets: &mut Buckets| self.take(buckets, remote)),
            None => self.take(&mut lock(&self.own), remote),
        };
        if admitted {
            Ok(())
        } else {
            tracing::debug!(remote, "rate limited");
            Err(Reject::rate_limited())
        }
    }

    fn disconnected(&self, peer: &C) {
        if peer.state().is_none() {
            lock(&self.own).clear();
        }
    }
}

/// Per-peer limit on calls running at once (apply it to an expensive remote
/// with `middleware_for`); more are answered
/// [`FunctionError::Overloaded`](crate::FunctionError::Overloaded). The
/// session's `max_incoming_calls` (default 64) already bounds all of a peer's
/// calls together; this bounds one remote more tightly.
#[derive(Debug)]
pub struct ConcurrencyLimit {
    max: usize,
    /// Calls running for a peer without a [`PeerState`]; its address also
    /// names this limit in the peers' states.
    own: Arc<Mutex<usize>>,
}

impl ConcurrencyLimit {
    /// At most `max` at once per peer.
    ///
    /// # Panics
    ///
    /// If `max` is zero: no call could ever run.
    #[track_caller]
    pub fn new(max: usize) -> Self {
        assert!(max > 0, "ConcurrencyLimit::new(0): no call could ever run");
        Self {
            max,
            own: Arc::default(),
        }
    }
}

/// Counts one running call of a peer; the count goes down when the call
/// ends, however it ends.
struct Slot<C: Peer> {
    peer: C,
    own: Arc<Mutex<usize>>,
}

impl<C: Peer> Slot<C> {
    fn running(state: Option<&PeerState>, own: &Arc<Mutex<usize>>, change: impl FnOnce(&mut usize) -> bool) -> bool {
        match state {
            Some(state) => state.with(&**own, change),
            None => change(&mut lock(own)),
        }
    }
}

impl<C: Peer> Drop for Slot<C> {
    fn drop(&mut self) {
        Self::running(self.peer.state(), &self.own, |n| {
            *n -= 1;
            true
        });
    }
}

impl<C: Peer> Middleware<C> for ConcurrencyLimit {
    fn call(&self, req: Request<C>, next: Next<C>) -> BoxFuture<CallResult> {
        let peer = req.peer().clone();
        let entered = Slot::<C>::running(peer.state(), &self.own, |n| {
            let room = *n < self.max;
            *n += usize::from(room);
            room
        });
        if !entered {
            return Box::pin(async { Err(Reject::overloaded()) });
        }
        let slot = Slot {
            peer,
            own: self.own.clone(),
        };
        let fut = next.run(req);
        Box::pin(async move {
            let result = fut.await;
            drop(slot);
            result
        })
    }
}
