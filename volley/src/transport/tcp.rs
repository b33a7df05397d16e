//! TCP, the default transport.
//!
//! Both ends set `TCP_NODELAY`: volley already coalesces everything queued
//! between two writes into one, so Nagle's algorithm would only add latency to
//! a lone message.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use super::Transport;

impl Transport for TcpStream {
    fn peer_addr(&self) -> Option<SocketAddr> {
        TcpStream::peer_addr(self).ok()
    }

    /// TCP's own halves: no lock between the reading and the writing side.
    fn split(self) -> (super::ReadSide, super::WriteSide) {
        let (read, write) = self.into_split();
        (Box::pin(read), Box::pin(write))
    }
}

/// Opens a TCP connection with `TCP_NODELAY` set.
pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Binds a listener.
pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Accepts one connection with `TCP_NODELAY` set.
pub async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, addr) = listener.accept().await?;
    stream.set_nodelay(true)?;
    Ok((stream, addr))
}
