//! WebTransport over HTTP/3 (feature `webtransport`): how browsers reach
//! QUIC. A session on a URL path; remote functions and reliable events on one
//! bidirectional stream the client opens, unreliable events as WebTransport
//! datagrams, one Event frame per datagram, exactly as over plain QUIC.
//!
//! Built on `web-transport-quinn` (maintained with the moq project, on the
//! quinn volley already uses for QUIC) rather than `wtransport`, which
//! brings its own QUIC configuration layer: one quinn, one rustls, one set
//! of settings. The HTTP/3 handshake (SETTINGS, the extended CONNECT) is the
//! crate's; volley answers the request: another path is refused with 404.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Datagrams, Transport};

/// The ALPN of HTTP/3, which WebTransport sessions ride on: `h3`.
pub const ALPN: &[u8] = b"h3";

/// The URL path the server serves sessions on unless told otherwise.
pub const DEFAULT_PATH: &str = "/volley";

/// How long a refused session's connection stays up for its response to
/// reach the client (which then closes it) before the server closes it.
const REFUSAL_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// One WebTransport session's stream (and datagrams) as a transport.
pub struct WebTransport {
    send: web_transport_quinn::SendStream,
    recv: web_transport_quinn::RecvStream,
    session: web_transport_quinn::Session,
    peer: SocketAddr,
    /// A client's endpoint lives as long as its session.
    _endpoint: Option<quinn::Endpoint>,
}

impl std::fmt::Debug for WebTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebTransport").field("peer", &self.peer).finish()
    }
}

impl AsyncRead for WebTransport {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for WebTransport {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.send).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Only the stream: closing the session here too would let its close
        // capsule overtake what the peer has not read yet (a browser drops
        // a stream's unread data, the goodbye with it, when the session
        // closes). The session closes when the transport goes, after the
        // driver has read the peer's end or its linger is over.
        Pin::new(&mut self.send).poll_shutdown(cx)
    }
}

impl Drop for WebTransport {
    fn drop(&mut self) {
        // With a close capsule the peer reads as a clean end (rather than a
        // connection that just stops).
        self.session.close(0, b"");
    }
}

impl Transport for WebTransport {
    fn peer_addr(&self) -> Option<SocketAddr> {
        Some(self.peer)
    }

    fn take_datagrams(&mut self) -> Option<Datagrams> {
        let max_size = self.session.max_datagram_size();
        if max_size == 0 {
            return None;
        }
        let (sender, receiver, watched) = (self.session.clone(), self.session.clone(), self.session.clone());
        let datagrams = futures_util::stream::unfold(receiver, |session| async move {
            session.read_datagram().await.ok().map(|datagram| (datagram, session))
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
            recv: super::quic::arrivals(datagrams, stray),
        })
    }
}

/// A QUIC endpoint for HTTP/3 on `addr` with this TLS configuration.
pub fn server_endpoint(addr: SocketAddr, config: Arc<rustls::ServerConfig>) -> io::Result<quinn::Endpoint> {
    super::quic::endpoint_speaking(addr, config, ALPN)
}

/// Completes an incoming connection's HTTP/3 handshake and its session
/// request: a request for another path than `path` is refused with 404, one
/// from a browser page of an origin not in `origins` (when set) with 403.
/// Then takes the stream the client opens.
pub async fn accept(
    incoming: quinn::Incoming,
    path: Arc<str>,
    origins: Option<Arc<[String]>>,
) -> io::Result<WebTransport> {
    let conn = incoming.await.map_err(io::Error::other)?;
    let peer = conn.remote_address();
    let request = web_transport_quinn::Request::accept(conn.clone())
        .await
        .map_err(io::Error::other)?;
    let asked = request.url.path().to_string();
    if asked != *path {
        refuse(request, http::StatusCode::NOT_FOUND, &conn).await;
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("session for path {asked:?} refused (404): volley serves {path:?}"),
        ));
    }
    let origin = request.headers.get("origin").map(|o| o.as_bytes().to_vec());
    if !super::origin_allowed(origins.as_deref(), origin.as_deref()) {
        refuse(request, http::StatusCode::FORBIDDEN, &conn).await;
        let origin = String::from_utf8_lossy(origin.as_deref().unwrap_or_default()).into_owned();
        tracing::info!(%origin, "WebTransport session from an origin not allowed: refused (403)");
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "origin not allowed"));
    }
    let session = request.ok().await.map_err(io::Error::other)?;
    let (send, recv) = session.accept_bi().await.map_err(io::Error::other)?;
    Ok(WebTransport {
        send,
        recv,
        session,
        peer,
        _endpoint: None,
    })
}

/// Answers a session request with `status`, and lets the answer reach the
/// client before the connection ends: dropped at once, it would take the
/// response with it, and the client would see a reset instead.
///
/// Answered with `respond`, not `reject`: the session `respond` gives back
/// holds the HTTP/3 control streams until the linger ends, where `reject`
/// ends them at once. Their end could reach the client before the response
/// (in one packet, read first), and a client that sees a control stream end
/// drops the connection as HTTP/3 says, the response unread (aioquic did,
/// one run in three).
async fn refuse(request: web_transport_quinn::Request, status: http::StatusCode, conn: &quinn::Connection) {
    let answered = request.respond(status).await;
    if answered.is_ok() {
        let _ = tokio::time::timeout(REFUSAL_LINGER, conn.closed()).await;
    }
    conn.close(quinn::VarInt::from_u32(0), b"session refused");
    drop(answered);
}

/// Opens a session at `url` (`https://host:port/path`), verifying the
/// server's certificate against `config`'s roots, and opens its stream.
pub async fn connect(url: &str, config: Arc<rustls::ClientConfig>) -> io::Result<WebTransport> {
    let url = url::Url::parse(url).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let host = url
        .host_str()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the URL has no host"))?
        .to_string();
    let addr = super::quic::resolve((host.as_str(), url.port().unwrap_or(443))).await?;
    let (endpoint, client_config) = super::quic::client_speaking(addr, config, ALPN)?;
    let client = web_transport_quinn::Client::new(endpoint.clone(), client_config);
    let session = client.connect(url).await.map_err(io::Error::other)?;
    let (send, recv) = session.open_bi().await.map_err(io::Error::other)?;
    Ok(WebTransport {
        send,
        recv,
        session,
        peer: addr,
        _endpoint: Some(endpoint),
    })
}
