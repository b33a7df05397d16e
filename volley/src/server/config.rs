//! The server's settings.

use std::time::Duration;

use volley_proto::{ConfigError, SessionConfig};

use crate::budget::ByteBudget;

/// Server settings. Every field is documented with its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Protocol limits and timers for each connection (frame size, handshake
    /// deadline, idle timeout, in-flight limits, write queue); see
    /// [`SessionConfig`] for each default.
    pub session: SessionConfig,
    /// Timeout of a server → client call whose remote declares none. Default: 10 s.
    pub default_timeout: Duration,
    /// Bytes per second each player may send; see [`ByteBudget`]. Default:
    /// none (no limit beyond the session's frame and in-flight limits).
    pub receive_budget: Option<ByteBudget>,
    /// Players connected at once; a client saying hello to a full server is
    /// refused ([`RefuseCode::Unavailable`](crate::RefuseCode::Unavailable), "server is full"). Default: 50,000.
    pub max_players: usize,
    /// Connections accepted but not yet joined (transport handshake, hello,
    /// authenticator) at once; past it, a new connection is closed at once,
    /// before anything is read from it. Default: 512.
    pub max_handshakes: usize,
    /// Origins (`https://game.example`) whose browser pages may open a
    /// WebSocket or a WebTransport session to this server; others get HTTP
    /// 403. Requests without an
    /// `Origin` header (not from a browser) pass. Default: none (any origin).
    pub allowed_origins: Option<Vec<String>>,
}

/// How long a player whose connection was lost is kept for its client to
/// resume it, unless set otherwise ([`ServerConfig::with_resume_grace`]): 5 s.
pub use volley_proto::DEFAULT_RESUME_GRACE;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default().with_resume_grace(DEFAULT_RESUME_GRACE),
            default_timeout: Duration::from_secs(10),
            receive_budget: None,
            max_players: 50_000,
            max_handshakes: 512,
            allowed_origins: None,
        }
    }
}

impl ServerConfig {
    /// Checks that every setting can work: the session's (see
    /// [`SessionConfig::validate`]), a non-zero `default_timeout`,
    /// `max_players` and `max_handshakes` (at most 2^61 - 1), and a receive budget of at least a
    /// byte a second with a burst of at least one frame.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.session.validate()?;
        let budget_bad = |check: fn(&ByteBudget, usize) -> bool| {
            self.receive_budget
                .is_some_and(|b| check(&b, self.session.max_frame_len))
        };
        let checks = [
            (self.default_timeout.is_zero(), "default_timeout", "is zero"),
            (self.max_players == 0, "max_players", "is zero"),
            (self.max_handshakes == 0, "max_handshakes", "is zero"),
            (
                self.max_handshakes > tokio::sync::Semaphore::MAX_PERMITS,
                "max_handshakes",
                "is over 2^61 - 1 (a tokio semaphore's limit)",
            ),
            (
                budget_bad(|b, _| !(b.per_second >= 1.0 && b.per_second.is_finite())),
                "receive_budget.per_second",
                "is under one byte a second",
            ),
            (
                budget_bad(|b, frame| !(b.burst >= frame as f64 && b.burst.is_finite())),
                "receive_budget.burst",
                "is smaller than session.max_frame_len (a largest frame could never be read)",
            ),
        ];
        ConfigError::first_of(checks)
    }

    /// Sets [`ServerConfig::max_players`].
    pub fn with_max_players(mut self, players: usize) -> Self {
        self.max_players = players;
        self
    }
    /// Sets [`ServerConfig::allowed_origins`].
    pub fn with_allowed_origins<S: Into<String>>(mut self, origins: impl IntoIterator<Item = S>) -> Self {
        self.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }
    /// Sets [`ServerConfig::max_handshakes`].
    pub fn with_max_handshakes(mut self, handshakes: usize) -> Self {
        self.max_handshakes = handshakes;
        self
    }
    /// How long a player whose connection was lost without a goodbye is
    /// kept (rooms, data, calls in flight) for its client to resume it
    /// (`session.resume_grace`; default [`DEFAULT_RESUME_GRACE`], 5 s). Only
    /// clients that ask are kept: volley's Rust client asks when it has a
    /// [`ReconnectPolicy`](crate::ReconnectPolicy). Zero turns resume off.
    pub fn with_resume_grace(mut self, grace: Duration) -> Self {
        self.session.resume_grace = grace;
        self
    }

    /// Sets [`ServerConfig::session`] (its `resume_grace` included: a
    /// [`SessionConfig::default`] has resume off).
    pub fn with_session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }
    /// Sets [`ServerConfig::default_timeout`].
    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }
    /// Sets [`ServerConfig::receive_budget`].
    pub fn with_receive_budget(mut self, budget: ByteBudget) -> Self {
        self.receive_budget = Some(budget);
        self
    }
}
