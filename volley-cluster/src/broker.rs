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
    /// A fresh subject to receive answers on.
    fn new_inbox(&self) -> String;
    /// Whether the broker is reachable now.
    fn is_connected(&self) -> bool;
    /// Sends what is queued, then closes the connection for good.
    fn close(&self) -> BoxFuture<'_, ()>;
}
