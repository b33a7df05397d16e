//! Transports: how a connection's bytes move. Each is a small adapter behind
//! one narrow trait; the session core never knows which one it runs over.
//!
//! | transport | module | notes |
//! |---|---|---|
//! | TCP | [`tcp`] | the default; `TCP_NODELAY` on both ends |
//! | in-process memory | [`memory`] | for tests, single-player and listen servers |
//! | TLS over TCP | `tls` (feature `tls`) | rustls; certificates always verified |
//! | WebSocket | `websocket` (feature `websocket`) | binary messages, a chosen path; over TLS with `tls` |
//! | QUIC | `quic` (feature `quic`) | one stream for reliable traffic, datagrams for unreliable events |
//! | WebTransport | `webtransport` (feature `webtransport`) | HTTP/3 sessions on a path, as QUIC: one stream, datagrams |

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite};

pub mod memory;
#[cfg(feature = "quic")]
pub mod quic;
pub mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "websocket")]
pub mod websocket;
#[cfg(feature = "webtransport")]
pub mod webtransport;

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

    /// Splits the transport into its read and write sides, which the
    /// connection uses from different tasks. The default shares the
    /// transport behind a small lock; a transport with halves of its own
    /// (TCP) returns those.
    fn split(self) -> (ReadSide, WriteSide)
    where
        Self: Sized,
    {
        let (read, write) = tokio::io::split(self);
        (Box::pin(read), Box::pin(write))
    }

    /// The transport's unreliable datagram channel, if it has one (QUIC).
    /// Unreliable events then travel as datagrams; without one they travel
    /// on the stream. Called once, when the connection starts.
    fn take_datagrams(&mut self) -> Option<Datagrams> {
        None
    }
}

/// A transport's read side.
pub type ReadSide = Pin<Box<dyn AsyncRead + Send>>;
/// A transport's write side.
pub type WriteSide = Pin<Box<dyn AsyncWrite + Send>>;

/// An unreliable, unordered datagram channel beside a transport's stream.
pub struct Datagrams {
    /// Largest datagram the path takes.
    pub max_size: usize,
    /// Sends one datagram without waiting; it may be lost.
    pub send: Box<dyn FnMut(Bytes) -> io::Result<()> + Send>,
    /// The datagrams received, and an error if the peer breaks the
    /// transport's rules (over QUIC, opens a stream beyond volley's one),
    /// which ends the connection as a protocol violation.
    pub recv: Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>,
}

impl fmt::Debug for Datagrams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Datagrams")
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

/// Whether a browser page from `origin` may connect, given the server's
/// allow-list ([`ServerConfig::allowed_origins`](crate::ServerConfig::allowed_origins)):
/// without a list, or without an `Origin` header (not a browser), yes.
#[cfg(any(feature = "websocket", feature = "webtransport"))]
pub(crate) fn origin_allowed(allowed: Option<&[String]>, origin: Option<&[u8]>) -> bool {
    match (allowed, origin) {
        (Some(allowed), Some(origin)) => allowed.iter().any(|a| a.as_bytes() == origin),
        _ => true,
    }
}
