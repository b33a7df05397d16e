//! WebSocket, with tokio-tungstenite (feature `websocket`): the transport a
//! browser or any engine can open.
//!
//! volley's frames travel in binary WebSocket messages; everything a
//! connection writes between two flushes goes in one message. Text messages
//! are a protocol error; pings are answered by tungstenite. Both ends set
//! `TCP_NODELAY`.
//!
//! Closing follows RFC 6455 §7.1.1: the side that closes sends a Close frame
//! with a status code (1000 for a normal close, 1003 after a text message,
//! 1009 after a message too large) and keeps the TCP connection open until
//! the peer's Close arrives (at most [`CLOSE_LINGER`](crate::CLOSE_LINGER)),
//! so the peer's reply never meets a reset.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::{tcp, Transport};

/// A WebSocket connection seen as a byte stream, over plain TCP (`S` =
/// `TcpStream`) or TLS (feature `tls`, `wss://`).
#[derive(Debug)]
pub struct WsTransport<S = TcpStream> {
    ws: WebSocketStream<S>,
    /// The rest of the last binary message, not read yet.
    pending: Bytes,
    peer: Option<SocketAddr>,
    /// The code our Close frame will carry: why we are closing.
    close_code: CloseCode,
    /// Our Close frame is queued.
    close_sent: bool,
}

/// The streams a WebSocket can run over, and how each names its peer.
pub trait WsStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The peer's address.
    fn peer(&self) -> Option<SocketAddr>;
}

impl WsStream for TcpStream {
    fn peer(&self) -> Option<SocketAddr> {
        self.peer_addr().ok()
    }
}

#[cfg(feature = "tls")]
impl WsStream for tokio_rustls::server::TlsStream<TcpStream> {
    fn peer(&self) -> Option<SocketAddr> {
        self.get_ref().0.peer_addr().ok()
    }
}

#[cfg(feature = "tls")]
impl WsStream for tokio_rustls::client::TlsStream<TcpStream> {
    fn peer(&self) -> Option<SocketAddr> {
        self.get_ref().0.peer_addr().ok()
    }
}

impl<S: WsStream> WsTransport<S> {
    fn new(ws: WebSocketStream<S>) -> Self {
        let peer = ws.get_ref().peer();
        Self {
            ws,
            pending: Bytes::new(),
            peer,
            close_code: CloseCode::Normal,
            close_sent: false,
        }
    }
}

fn io_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl<S: WsStream> AsyncRead for WsTransport<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.pending = data,
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(Message::Text(_))) => {
                    self.close_code = CloseCode::Unsupported;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text message on a volley WebSocket",
                    )));
                }
                // Pings and pongs: tungstenite answers pings itself.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if matches!(e, tungstenite::Error::Capacity(_)) {
                        self.close_code = CloseCode::Size;
                    }
                    return Poll::Ready(Err(io_error(e)));
                }
            }
        }
    }
}

impl<S: WsStream> AsyncWrite for WsTransport<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io_error)?;
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
    }

    /// Sends our Close frame, with the code that says why; the connection's
    /// task then reads until the peer's Close (the end of the stream) before
    /// dropping the socket.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.close_sent {
            // Already closed by the peer: nothing to send.
            if ready!(Pin::new(&mut self.ws).poll_ready(cx)).is_ok() {
                let frame = CloseFrame {
                    code: self.close_code,
                    reason: "".into(),
                };
                let _ = Pin::new(&mut self.ws).start_send(Message::Close(Some(frame)));
            }
            self.close_sent = true;
        }
        Pin::new(&mut self.ws).poll_close(cx).map_err(io_error)
    }
}

impl<S: WsStream> Transport for WsTransport<S> {
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }
}

/// Completes the server side of the WebSocket upgrade on an accepted stream
/// (TCP, or TLS for `wss://`), refusing (HTTP 404) any other path than `path`
/// and, with an allow-list of `origins`, (HTTP 403) a browser page from any
/// other origin.
///
/// The allow-list guards against pages of other sites opening a WebSocket to
/// the game from a player's browser; a request without an `Origin` header
/// (not from a browser) passes, since any program can send whatever origin
/// it likes.
pub async fn accept<S: WsStream>(stream: S, path: &str, origins: Option<&[String]>) -> io::Result<WsTransport<S>> {
    // The shape of this callback is tungstenite's, large error type included.
    #[allow(clippy::result_large_err)]
    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let refuse = |status, why: &str| {
            let mut refusal = ErrorResponse::new(Some(why.into()));
            *refusal.status_mut() = status;
            Err(refusal)
        };
        if request.uri().path() != path {
            return refuse(tungstenite::http::StatusCode::NOT_FOUND, "no volley endpoint here");
        }
        let origin = request.headers().get("origin");
        if !super::origin_allowed(origins, origin.map(|o| o.as_bytes())) {
            tracing::info!(origin = ?origin, "WebSocket upgrade from an origin not allowed: refused");
            return refuse(tungstenite::http::StatusCode::FORBIDDEN, "origin not allowed");
        }
        Ok(response)
    };
    let ws = tokio_tungstenite::accept_hdr_async(stream, check)
        .await
        .map_err(io_error)?;
    Ok(WsTransport::new(ws))
}

/// Opens a TCP connection to `addr` and upgrades it to a WebSocket at `path`.
pub async fn connect(addr: impl ToSocketAddrs, path: &str) -> io::Result<WsTransport> {
    let stream = tcp::connect(addr).await?;
    let url = format!("ws://{}{path}", stream.peer_addr()?);
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await.map_err(io_error)?;
    Ok(WsTransport::new(ws))
}

/// Opens a TLS connection to `addr` (verifying the certificate for
/// `server_name` against `config`'s roots) and upgrades it to a WebSocket at
/// `path`: `wss://`.
#[cfg(feature = "tls")]
pub async fn connect_secure(
    addr: impl ToSocketAddrs,
    server_name: &str,
    config: std::sync::Arc<rustls::ClientConfig>,
    path: &str,
) -> io::Result<WsTransport<tokio_rustls::client::TlsStream<TcpStream>>> {
    let stream = super::tls::connect(addr, server_name, config).await?;
    let url = format!("wss://{server_name}{path}");
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await.map_err(io_error)?;
    Ok(WsTransport::new(ws))
}
