//! The receive budget: bytes a peer may send per second, enforced where the
//! connection reads (not middleware: it acts before any frame is decoded).

use std::time::{Duration, Instant};

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
