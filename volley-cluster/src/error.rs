//! What can go wrong with the cluster itself.

/// A cluster operation that could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The node is not connected to the broker now (it reconnects by itself);
    /// local traffic goes on.
    #[error("the broker is unreachable")]
    BrokerUnavailable,
    /// The broker refused or failed the operation.
    #[error("broker error: {0}")]
    Broker(String),
    /// The message is larger than the broker takes: nothing was sent, to
    /// any node (this one included).
    #[error("a message of {len} bytes is over the broker's limit of {max}")]
    TooLarge {
        /// The message's size.
        len: usize,
        /// The broker's limit.
        max: usize,
    },
    /// The value could not be encoded.
    #[error("could not encode: {0}")]
    Encode(String),
    /// No node answered for this player: it is connected nowhere.
    #[error("player not connected anywhere in the cluster")]
    NotConnected,
    /// The event could not be queued for the player (see the error).
    #[error(transparent)]
    Event(volley::EventError),
}
