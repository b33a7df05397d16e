//! Where a client's connection stands, kept for whoever watches it (a game
//! loop showing "reconnecting…", the Bevy plugin's states).

/// Where a [`Client`](crate::Client)'s connection stands; see
/// [`Client::status`](crate::Client::status) and
/// [`Client::watch_status`](crate::Client::watch_status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientStatus {
    /// No connection, and none being made or tried again.
    #[default]
    Disconnected,
    /// A connect call is opening the transport or in its handshake.
    Connecting,
    /// The handshake finished; the connection is open.
    Connected,
    /// The connection was lost and the client is trying to get it back, by
    /// resuming the same player or redialing by its
    /// [`ReconnectPolicy`](crate::ReconnectPolicy).
    Reconnecting,
}
