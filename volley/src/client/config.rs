//! A client's settings, and how it reconnects.

use super::*;

/// Client settings. Every field is documented with its default.
///
/// Its `Debug` output shows the token's length, never the token.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Protocol limits and timers of the connection; see [`SessionConfig`].
    pub session: SessionConfig,
    /// Timeout of a call whose remote declares none. Default: 10 s.
    pub default_timeout: Duration,
    /// Credentials sent in the hello, for the server's authenticator.
    /// Default: empty.
    pub token: Vec<u8>,
    /// Whether and how to reconnect after losing an established connection
    /// made with any `connect_*` (TCP, TLS, WebSocket, WSS, QUIC: the
    /// transport it last connected with), not with [`Client::connect`].
    /// Default: none (stay disconnected).
    ///
    /// With a policy the client first *resumes*: within
    /// `session.resume_grace` (default 5 s) of a lost connection it redials
    /// with its resume token and, if the server still keeps its player, is
    /// the same player again, with every call and event in flight either
    /// way delivered once. Only if the server refuses (restarted, the grace
    /// period passed, resume off) does it join as a new player, as
    /// `on_disconnect` then says. A `session.resume_grace` of zero skips
    /// resuming.
    pub reconnect: Option<ReconnectPolicy>,
}

/// How a client reconnects after losing an established connection: after
/// `initial_delay`, then waits doubling up to `max_delay`, for at most
/// `max_attempts` attempts. Each wait is shortened by up to a quarter, at
/// random, so clients dropped together do not all return at once.
///
/// It reconnects when the connection was lost (transport closed or failed,
/// idle timeout) or the server shut down; not after [`Client::disconnect`], a
/// kick, a refusal or a protocol violation. Calls made while disconnected fail
/// at once with [`FunctionError::Disconnected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Wait before the first attempt. Default: 100 ms.
    pub initial_delay: Duration,
    /// Longest wait between attempts. Default: 5 s.
    pub max_delay: Duration,
    /// Attempts before giving up. Default: 10.
    pub max_attempts: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_attempts: 10,
        }
    }
}

impl ReconnectPolicy {
    /// Sets [`ReconnectPolicy::initial_delay`].
    pub fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }
    /// Sets [`ReconnectPolicy::max_delay`].
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }
    /// Sets [`ReconnectPolicy::max_attempts`].
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("session", &self.session)
            .field("default_timeout", &self.default_timeout)
            .field("token", &Redacted(self.token.len()))
            .field("reconnect", &self.reconnect)
            .finish()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            // Asked for only with a reconnect policy (resuming is redialing).
            session: SessionConfig::default().with_resume_grace(volley_proto::DEFAULT_RESUME_GRACE),
            default_timeout: Duration::from_secs(10),
            token: Vec::new(),
            reconnect: None,
        }
    }
}

impl ClientConfig {
    /// Checks that every setting can work: the session's (see
    /// [`SessionConfig::validate`]), a non-zero `default_timeout`, and a
    /// reconnect policy with at least one attempt and a `max_delay` not
    /// shorter than its `initial_delay`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.session.validate()?;
        let policy_bad = |check: fn(&ReconnectPolicy) -> bool| self.reconnect.as_ref().is_some_and(check);
        let checks = [
            (self.default_timeout.is_zero(), "default_timeout", "is zero"),
            (policy_bad(|p| p.max_attempts == 0), "reconnect.max_attempts", "is zero"),
            (
                policy_bad(|p| p.max_delay < p.initial_delay),
                "reconnect.max_delay",
                "is shorter than reconnect.initial_delay",
            ),
        ];
        ConfigError::first_of(checks)
    }

    /// Sets [`ClientConfig::session`].
    pub fn with_session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }
    /// Sets [`ClientConfig::default_timeout`].
    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }
    /// Sets [`ClientConfig::token`].
    pub fn with_token(mut self, token: impl Into<Vec<u8>>) -> Self {
        self.token = token.into();
        self
    }
    /// Sets [`ClientConfig::reconnect`].
    pub fn with_reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = Some(policy);
        self
    }
}
