//! Transports: how a connection's bytes move. Each is a small adapter behind
//! one narrow trait; the session core never knows which one it runs over.
//!
//! | transport | module | notes |
//! |---|---|---|
//! | TCP | [`tcp`] | the default; `TCP_NODELAY` on both ends |
//! | in-process memory | [`memory`] | for tests, single-player and listen servers |
//! | TLS over TCP | `tls` (feature `tls`) | rustls; certificates always verified |
//! | WebSocket | `websocket` (feature `websocket`) | binary messages, a chosen path |

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

pub mod memory;
pub mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "websocket")]
pub mod websocket;

/// A reliable, ordered byte stream to one peer.
///
/// volley frames its own messages on top, so any stream works: implement this
/// for your type (its two I/O traits are tokio's) and hand it to
/// [`Server::serve`](crate::Server::serve) or
/// [`Client::connect`](crate::Client::connect).
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The peer's address, if the transport has one; shown in logs and by
    /// [`Player::remote_addr`](crate::Player::remote_addr).
    fn peer_addr(&self) -> Option<SocketAddr> {
        None
    }
}
