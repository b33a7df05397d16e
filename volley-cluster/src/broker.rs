//! What volley-cluster needs from a message broker: publish, request with a
//! reply, subscribe to a subject, and whether it is connected. NATS
//! ([`NatsBroker`](crate::NatsBroker)) is the first; another broker (Redis)
//! implements this trait and nothing else changes.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::Stream;

/// A message delivered to a subscription.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The subject it was published to.
    pub subject: String,
    /// Where to answer, for a request.
    pub reply: Option<String>,
    /// Its bytes.
    pub payload: Bytes,
    /// The broker's own answer to a request nobody subscribed to (NATS:
    /// status 503, no payload): the node asked is not there.
    pub no_responders: bool,
}

/// Messages for one subscription; dropping it unsubscribes.
pub type Subscription = Pin<Box<dyn Stream<Item = Inbound> + Send>>;

/// Why a broker operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// Not connected to the broker now.
    #[error("not connected to the broker")]
    Unavailable,
    /// Nobody subscribes to the request's subject.
    #[error("no responders")]
    NoResponders,
    /// No answer within the timeout.
    #[error("timed out")]
    TimedOut,
    /// The message is larger than the broker takes
    /// ([`Broker::max_payload`]).
    #[error("a message of {len} bytes is over the broker's limit of {max}")]
    TooLarge {
        /// The message's size.
        len: usize,
        /// The broker's limit.
        max: usize,
    },
    /// Anything else, as the broker client said it.
    #[error("{0}")]
    Other(String),
}

/// A message broker, as volley-cluster uses it.
pub trait Broker: Send + Sync + 'static {
    /// Publishes `payload` to `subject`, with a subject to answer to.
    fn publish(&self, subject: String, reply: Option<String>, payload: Bytes)
        -> BoxFuture<'_, Result<(), BrokerError>>;
    /// Publishes `payload` to `subject` and waits for one answer.
    fn request(&self, subject: String, payload: Bytes, timeout: Duration) -> BoxFuture<'_, Result<Bytes, BrokerError>>;
    /// Subscribes to `subject` (which may end in a wildcard the broker
    /// understands).
    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, BrokerError>>;
    /// Returns once the broker has processed everything this client sent
    /// before (a subscription included: a message published to its subject
    /// from anywhere after this returns reaches it).
    fn flush(&self) -> BoxFuture<'_, Result<(), BrokerError>>;
    /// A fresh subject to receive answers on.
    fn new_inbox(&self) -> String;
    /// Whether the broker is reachable now.
    fn is_connected(&self) -> bool;
    /// The largest message the broker takes, in bytes (NATS: the server's
    /// `max_payload`, 1 MiB by default). Larger ones fail
    /// [`BrokerError::TooLarge`] before anything is sent.
    fn max_payload(&self) -> usize;
    /// Sends what is queued, then closes the connection for good.
    fn close(&self) -> BoxFuture<'_, ()>;
}
