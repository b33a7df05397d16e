//! What can stop a node from joining its cluster. Once it has joined, game
//! code sees volley's own errors only (`EventError`, `FunctionError`,
//! `PlayerError`): a broker outage is their `Unreachable`.

use crate::broker::BrokerError;

/// Why [`NatsAdapter::connect`](crate::NatsAdapter::connect) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The cluster's name is not one broker subject token.
    #[error("cluster name {0:?}: use 1 to 64 letters, digits, '-' and '_'")]
    InvalidName(String),
    /// The broker could not be reached, or refused what joining needs
    /// (connecting, subscribing).
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    /// Sixteen random node numbers were all taken (or the broker did not
    /// say in time whether they were).
    #[error("no free node number after 16 tries")]
    NoFreeNodeNumber,
}
