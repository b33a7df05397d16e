//! QUIC, with quinn (feature `quic`): remote functions and reliable events on
//! one bidirectional stream, unreliable events as QUIC datagrams (dropped, never
//! queued behind reliable traffic). Encrypted always; certificates verified
//! against the roots of the rustls configuration given.
//!
//! Both ends negotiate the application protocol [`ALPN`] (`volley/3`), as RFC
//! 9001 §8.1 expects; it replaces any ALPN list in the configuration given. A
//! peer that offers another protocol, or none, is refused in the TLS
//! handshake (alert 120, "no application protocol").

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Datagrams, Transport};

/// The ALPN protocol id volley speaks over QUIC: `volley/3`. The number
/// follows [`PROTOCOL_VERSION`](crate::proto::PROTOCOL_VERSION).
pub const ALPN: &[u8] = b"volley/3";

/// One QUIC connection's stream (and datagrams) as a transport.
#[derive(Debug)]
pub struct QuicTransport {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    conn: quinn::Connection,
    /// A client's endpoint lives as long as its connection.
    _endpoint: Option<quinn::Endpoint>,
}

impl AsyncRead for QuicTransport {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicTransport {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.send).poll_write(cx, buf).map_err(io::Error::other)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_shutdown(cx)
    }
}

impl Transport for QuicTransport {
    fn peer_addr(&self) -> Option<SocketAddr> {
        Some(self.conn.remote_address())
    }

    fn take_datagrams(&mut self) -> Option<Datagrams> {
        let max_size = self.conn.max_datagram_size()?;
        let (sender, receiver, watched) = (self.conn.clone(), self.conn.clone(), self.conn.clone());
        let datagrams = futures_util::stream::unfold(receiver, |conn| async move {
            conn.read_datagram().await.ok().map(|datagram| (datagram, conn))
        });
        let stray = async move {
            tokio::select! {
                Ok(_) = watched.accept_bi() => Some("a second bidirectional stream"),
                Ok(_) = watched.accept_uni() => Some("a unidirectional stream"),
                else => None,
            }
        };
        Some(Datagrams {
            max_size,
            send: Box::new(move |datagram| sender.send_datagram(datagram).map_err(io::Error::other)),
            recv: arrivals(datagrams, stray),
        })
    }
}

/// The peer's datagrams, then an error once `stray` finds a stream the peer
/// opened beyond volley's one (a volley peer never does; a hostile one could
/// open them by the thousand to tie up the connection).
pub(crate) fn arrivals(
    datagrams: impl futures_util::Stream<Item = bytes::Bytes> + Send + 'static,
    stray: impl std::future::Future<Output = Option<&'static str>> + Send + 'static,
) -> std::pin::Pin<Box<dyn futures_util::Stream<Item = io::Result<bytes::Bytes>> + Send>> {
    use futures_util::StreamExt;
    let stray = futures_util::stream::once(stray).filter_map(|opened| async move {
        opened.map(|what| {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the peer opened {what}; volley uses one"),
            ))
        })
    });
    Box::pin(futures_util::stream::select(datagrams.map(Ok), stray))
}

/// A QUIC server endpoint on `addr` with this TLS configuration (TLS 1.3).
pub fn server_endpoint(addr: SocketAddr, config: Arc<rustls::ServerConfig>) -> io::Result<quinn::Endpoint> {
    endpoint_speaking(addr, config, ALPN)
}

/// A QUIC server endpoint on `addr` whose only application protocol is
/// `alpn` (volley's, or HTTP/3's for WebTransport).
pub(crate) fn endpoint_speaking(
    addr: SocketAddr,
    config: Arc<rustls::ServerConfig>,
    alpn: &[u8],
) -> io::Result<quinn::Endpoint> {
    let mut config = (*config).clone();
    config.alpn_protocols = vec![alpn.to_vec()];
    let crypto =
        QuicServerConfig::try_from(Arc::new(config)).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    quinn::Endpoint::server(quinn::ServerConfig::with_crypto(Arc::new(crypto)), addr)
}

/// A client endpoint for reaching `addr`, and the connection settings that
/// offer only `alpn` and verify the server against `config`'s roots.
pub(crate) fn client_speaking(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    alpn: &[u8],
) -> io::Result<(quinn::Endpoint, quinn::ClientConfig)> {
    let mut config = (*config).clone();
    config.alpn_protocols = vec![alpn.to_vec()];
    let crypto =
        QuicClientConfig::try_from(Arc::new(config)).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    Ok((
        quinn::Endpoint::client(local)?,
        quinn::ClientConfig::new(Arc::new(crypto)),
    ))
}

/// The first address `addr` resolves to.
pub(crate) async fn resolve(addr: impl tokio::net::ToSocketAddrs) -> io::Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the address resolved to nothing"))
}

/// Completes an incoming connection and takes the stream its client opens.
pub async fn accept(incoming: quinn::Incoming) -> io::Result<QuicTransport> {
    let conn = incoming.await.map_err(io::Error::other)?;
    let (send, recv) = conn.accept_bi().await.map_err(io::Error::other)?;
    Ok(QuicTransport {
        send,
        recv,
        conn,
        _endpoint: None,
    })
}

/// Connects to `addr` (the first address it resolves to), verifying the
/// certificate for `server_name` against `config`'s roots, and opens the
/// connection's stream.
pub async fn connect(
    addr: impl tokio::net::ToSocketAddrs,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> io::Result<QuicTransport> {
    let addr = resolve(addr).await?;
    let (mut endpoint, client_config) = client_speaking(addr, config, ALPN)?;
    endpoint.set_default_client_config(client_config);
    let conn = endpoint
        .connect(addr, server_name)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .await
        .map_err(io::Error::other)?;
    let (send, recv) = conn.open_bi().await.map_err(io::Error::other)?;
    Ok(QuicTransport {
        send,
        recv,
        conn,
        _endpoint: Some(endpoint),
    })
}
