//! TLS over TCP, with rustls (feature `tls`).
//!
//! Certificates are always verified: the client trusts exactly the roots in
//! the [`rustls::ClientConfig`] it is given (a self-signed server certificate
//! is trusted by adding that certificate as a root, never by turning
//! verification off). Both ends set `TCP_NODELAY`.
//!
//! ```no_run
//! # async fn demo(server: volley::Server, client: volley::Client,
//! #   server_config: std::sync::Arc<volley::transport::tls::rustls::ServerConfig>,
//! #   client_config: std::sync::Arc<volley::transport::tls::rustls::ClientConfig>) -> Result<(), Box<dyn std::error::Error>> {
//! let addr = server.listen_tls("0.0.0.0:7778", server_config).await?;
//! client.connect_tls(addr, "game.example.com", client_config).await?;
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

use super::{tcp, Transport};

/// The rustls version volley is built with, to build configurations.
pub use rustls;

impl Transport for server::TlsStream<TcpStream> {
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.get_ref().0.peer_addr().ok()
    }
}

impl Transport for client::TlsStream<TcpStream> {
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.get_ref().0.peer_addr().ok()
    }
}

/// Completes the server side of the TLS handshake on an accepted socket.
pub async fn accept(stream: TcpStream, config: Arc<rustls::ServerConfig>) -> io::Result<server::TlsStream<TcpStream>> {
    TlsAcceptor::from(config).accept(stream).await
}

/// Opens a TCP connection and completes the TLS handshake, verifying that the
/// server's certificate is valid for `server_name` under `config`'s roots.
pub async fn connect(
    addr: impl ToSocketAddrs,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> io::Result<client::TlsStream<TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stream = tcp::connect(addr).await?;
    TlsConnector::from(config).connect(name, stream).await
}
