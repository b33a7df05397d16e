//! The errors of volley's typed API.

use std::fmt;

use volley_proto::{CloseReason, RefuseCode, Status};

/// Why a remote function call did not return a result.
///
/// Every variant's message can be shown to a player as is: none carries
/// internal detail from the other side except [`FunctionError::Rejected`],
/// whose text the handler chose to send.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum FunctionError {
    /// No answer arrived within the timeout; the receiver was told to cancel.
    #[error("the request timed out")]
    Timeout,
    /// The call was cancelled before it finished: the receiver's middleware
    /// dropped it, or it was shutting the handler down.
    #[error("the request was cancelled")]
    Cancelled,
    /// The receiver could not decode the request, or it failed validation.
    #[error("the request was not valid")]
    BadRequest,
    /// The answer could not be decoded, or it failed validation at the caller.
    #[error("the response was not valid")]
    InvalidResult,
    /// The receiver has no handler for this function, or the handler failed
    /// (panicked or returned an internal error; the detail stays in its log).
    #[error("the request could not be processed")]
    Unprocessed,
    /// The handler refused on purpose, with this message.
    #[error("{0}")]
    Rejected(String),
    /// Not connected, or the connection was lost before the answer came.
    #[error("not connected, or the connection was lost before the answer came")]
    Disconnected,
    /// The receiver is at its limit of calls in flight for this peer (or the
    /// caller at its limit of pending calls, or with more than
    /// `max_transmit_queue` bytes of calls waiting to be sent); nothing was
    /// queued. Retry later.
    #[error("too many requests at once; try again shortly")]
    Overloaded,
    /// The receiver's rate limit for this remote is used up (see
    /// [`RateLimit`](crate::middleware::RateLimit)); slow down.
    #[error("too many requests; slow down")]
    RateLimited,
    /// The request (at the caller) or the answer (at the receiver, which logs
    /// it) was too large for one frame (`max_frame_len`, 1 MiB by default),
    /// or for a cluster's broker; it was not sent.
    #[error("the request or its answer was too large to send")]
    TooLarge,
    /// The player is connected to another node of a cluster, and the
    /// cluster's broker is unreachable now (it reconnects by itself); the
    /// call was not sent.
    #[error("the player's node cannot be reached now")]
    Unreachable,
}

impl FunctionError {
    /// The error a caller sees for a non-`Ok` status from the receiver.
    pub(crate) fn from_status(status: Status, payload: &[u8]) -> Self {
        match status {
            Status::Rejected => Self::Rejected(String::from_utf8_lossy(payload).into_owned()),
            Status::BadRequest => Self::BadRequest,
            Status::Cancelled => Self::Cancelled,
            Status::Overloaded => Self::Overloaded,
            Status::RateLimited => Self::RateLimited,
            Status::TooLarge => Self::TooLarge,
            // `Unprocessed`, and any status a newer peer may add.
            _ => Self::Unprocessed,
        }
    }
}

/// What a handler or middleware returns instead of a result.
///
/// [`Reject::new`] is a deliberate refusal: the caller gets
/// [`FunctionError::Rejected`] with exactly that message. Any other error,
/// converted with `?` or [`Reject::internal`], is logged by the receiver and
/// reaches the caller only as [`FunctionError::Unprocessed`], so no internal
/// detail crosses the wire. Middleware can also drop a call
/// ([`Reject::drop_request`], the caller gets [`FunctionError::Cancelled`]) or
/// refuse it for load ([`Reject::overloaded`], [`Reject::rate_limited`]).
///
/// ```
/// use volley::Reject;
///
/// fn buy(gold: u32, price: u32) -> Result<u32, Reject> {
///     if gold < price {
///         return Err(Reject::new("not enough gold"));
///     }
///     let left: u32 = (gold - price).to_string().parse()?; // an internal error, if any
///     Ok(left)
/// }
/// assert_eq!(buy(1, 5).unwrap_err().message(), Some("not enough gold"));
/// ```
pub struct Reject(RejectKind);

enum RejectKind {
    Public(String),
    Internal(Box<dyn std::error::Error + Send + Sync>),
    Dropped,
    Overloaded,
    RateLimited,
}

impl Reject {
    /// A refusal whose message the caller receives.
    pub fn new(message: impl Into<String>) -> Self {
        Self(RejectKind::Public(message.into()))
    }

    /// An internal failure: logged here, `Unprocessed` at the caller.
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(RejectKind::Internal(error.into()))
    }

    /// Drops the call unanswered by a handler: the caller gets
    /// [`FunctionError::Cancelled`]; an event is discarded.
    pub fn drop_request() -> Self {
        Self(RejectKind::Dropped)
    }

    /// Too much at once: the caller gets [`FunctionError::Overloaded`].
    pub fn overloaded() -> Self {
        Self(RejectKind::Overloaded)
    }

    /// Too much too fast: the caller gets [`FunctionError::RateLimited`].
    pub fn rate_limited() -> Self {
        Self(RejectKind::RateLimited)
    }

    /// The message sent to the caller, if this is a deliberate refusal.
    pub fn message(&self) -> Option<&str> {
        match &self.0 {
            RejectKind::Public(m) => Some(m),
            _ => None,
        }
    }

    /// The status and payload to answer with; internal errors are logged.
    pub(crate) fn into_answer(self, remote: &str) -> (Status, Vec<u8>) {
        match self.0 {
            RejectKind::Public(m) => (Status::Rejected, m.into_bytes()),
            RejectKind::Internal(e) => {
                tracing::error!(remote, error = %e, "handler failed");
                (Status::Unprocessed, Vec::new())
            }
            RejectKind::Dropped => (Status::Cancelled, Vec::new()),
            RejectKind::Overloaded => (Status::Overloaded, Vec::new()),
            RejectKind::RateLimited => (Status::RateLimited, Vec::new()),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Reject {
    fn from(error: E) -> Self {
        Self::internal(error)
    }
}

impl fmt::Debug for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            RejectKind::Public(m) => f.debug_tuple("Reject").field(m).finish(),
            RejectKind::Internal(e) => f.debug_tuple("Reject::internal").field(&e.to_string()).finish(),
            RejectKind::Dropped => f.write_str("Reject::drop_request"),
            RejectKind::Overloaded => f.write_str("Reject::overloaded"),
            RejectKind::RateLimited => f.write_str("Reject::rate_limited"),
        }
    }
}

/// Why a client could not connect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The transport could not be opened.
    #[error("could not reach the server: {0}")]
    Io(#[from] std::io::Error),
    /// The server refused this client; `message` says why in words.
    #[error("the server refused the connection: {message}")]
    Refused {
        /// Why, for programs.
        code: RefuseCode,
        /// Why, for people.
        message: String,
    },
    /// The connection ended during the handshake.
    #[error("the connection closed during the handshake: {0}")]
    Closed(CloseReason),
    /// This client is already connected.
    #[error("already connected")]
    AlreadyConnected,
}

impl From<CloseReason> for ConnectError {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::Refused { code, message } => Self::Refused { code, message },
            other => Self::Closed(other),
        }
    }
}

/// Why an event could not be fired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The receiver is not connected.
    #[error("not connected")]
    Disconnected,
    /// The argument could not be encoded.
    #[error("could not encode the event: {0}")]
    Encode(String),
    /// An unreliable event was dropped: the connection's output is backed up.
    #[error("not sent: unreliable event dropped, the connection is backed up")]
    Dropped,
    /// This side's outgoing middleware refused to send it.
    #[error("not sent: refused by outgoing middleware")]
    Refused,
    /// The encoded argument is over the largest frame the peer accepts, or
    /// over the size limit of an unreliable event, or over a cluster
    /// broker's limit (then nobody got it).
    #[error("event of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Encoded size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// It had to reach other nodes of a cluster, and the cluster's broker is
    /// unreachable now (it reconnects by itself): nobody got it.
    #[error("not sent: the cluster's other nodes cannot be reached now")]
    Unreachable,
}
