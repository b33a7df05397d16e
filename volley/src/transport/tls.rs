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

/// A fresh self-signed certificate for `names` (host names or IP
/// addresses), with the server configuration that presents it and a client
/// configuration that trusts exactly it (feature `self-signed`): for tests
/// and local development, where no authority signs a certificate. A browser
/// needs more for WebTransport (ECDSA P-256, valid at most 14 days; see
/// `Server::listen_webtransport`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// # let protocol = volley::Protocol::builder().build();
/// let (server_tls, client_tls) = volley::transport::tls::self_signed(&["localhost"])?;
/// let server = volley::Server::new(protocol.clone(), volley::ServerConfig::default());
/// let addr = server.listen_tls("127.0.0.1:0", server_tls).await?;
/// let client = volley::Client::new(protocol, volley::ClientConfig::default());
/// client.connect_tls(addr, "localhost", client_tls).await.expect("connected");
/// # Ok(()) }
/// ```
#[cfg(feature = "self-signed")]
pub fn self_signed(names: &[&str]) -> io::Result<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)> {
    let invalid = |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    let names = names.iter().map(|name| name.to_string()).collect::<Vec<_>>();
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| invalid(&e))?;
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .map_err(|e| invalid(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).map_err(|e| invalid(&e))?;
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((Arc::new(server), Arc::new(client)))
}
