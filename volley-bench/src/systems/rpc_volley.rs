//! volley over TCP, WebSocket or QUIC: a synchronous handler (run inline on
//! the connection task).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use volley::{Client, ClientConfig, ClientEvent, ClientFn, Protocol, Server, ServerConfig, ServerFn};

use super::Caller;

pub const ADD_ONE: ServerFn<u32, u32> = ServerFn::new("AddOne");
pub const CLIENT_ADD_ONE: ClientFn<u32, u32> = ClientFn::new("ClientAddOne");
pub const NEWS: ClientEvent<Vec<u8>> = ClientEvent::new("News");

/// The default in-flight limits (64 each way) protect a game server from one
/// player; the pipelined scenario keeps 256 calls in flight on one connection.
fn session() -> volley::SessionConfig {
    volley::SessionConfig::default()
        .with_max_incoming_calls(1024)
        .with_max_outgoing_calls(1024)
}

pub fn protocol() -> Protocol {
    Protocol::builder()
        .remote(ADD_ONE)
        .remote(CLIENT_ADD_ONE)
        .remote(NEWS)
        .build()
}

pub async fn serve() -> (Server, SocketAddr) {
    let server = Server::new(protocol(), ServerConfig::default().with_session(session()));
    server.on_request_sync(ADD_ONE, |_, x: u32| Ok(x.wrapping_add(1)));
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    (server, addr)
}

/// A client that also answers the server's calls and counts events.
pub async fn client(addr: SocketAddr) -> Client {
    let client = Client::new(protocol(), ClientConfig::default().with_session(session()));
    client.on_request_sync(CLIENT_ADD_ONE, |_, x: u32| Ok(x.wrapping_add(1)));
    client.connect_tcp(addr).await.unwrap();
    client
}

/// The transports volley is measured over besides TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    WebSocket,
    Quic,
    WebTransport,
    /// TCP with resume on at both ends (a reconnect policy, a grace period):
    /// every frame kept until acknowledged.
    ResumableTcp,
}

/// The grace period of the resumable rows.
const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A self-signed certificate for "localhost", made once: the server's TLS
/// configuration and a client configuration that trusts it.
fn certificates() -> &'static (
    Arc<volley::transport::tls::rustls::ServerConfig>,
    Arc<volley::transport::tls::rustls::ClientConfig>,
) {
    use volley::transport::tls::rustls;
    static CERTS: std::sync::OnceLock<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)> =
        std::sync::OnceLock::new();
    CERTS.get_or_init(|| volley::transport::tls::self_signed(&["localhost"]).expect("a certificate for localhost"))
}

/// A server like [`serve`]'s over another transport.
pub async fn serve_on(wire: Wire) -> SocketAddr {
    let session = match wire {
        Wire::ResumableTcp => session().with_resume_grace(GRACE),
        _ => session(),
    };
    let server = Server::new(protocol(), ServerConfig::default().with_session(session));
    server.on_request_sync(ADD_ONE, |_, x: u32| Ok(x.wrapping_add(1)));
    let addr = match wire {
        Wire::ResumableTcp => server.listen_tcp("127.0.0.1:0").await.unwrap(),
        Wire::WebSocket => server.listen_ws("127.0.0.1:0", "/volley").await.unwrap(),
        Wire::Quic => server
            .listen_quic("127.0.0.1:0", certificates().0.clone())
            .await
            .unwrap(),
        Wire::WebTransport => server
            .listen_webtransport("127.0.0.1:0", "/volley", certificates().0.clone())
            .await
            .unwrap(),
    };
    // As with `serve`'s TCP listener, the listener task keeps the server.
    addr
}

/// A caller over another transport.
pub async fn connect_on(wire: Wire, addr: SocketAddr) -> Arc<dyn Caller> {
    let config = match wire {
        Wire::ResumableTcp => ClientConfig::default()
            .with_session(session().with_resume_grace(GRACE))
            .with_reconnect(volley::ReconnectPolicy::default()),
        _ => ClientConfig::default().with_session(session()),
    };
    let client = Client::new(protocol(), config);
    match wire {
        Wire::ResumableTcp => client.connect_tcp(addr).await.unwrap(),
        Wire::WebSocket => client.connect_ws(addr, "/volley").await.unwrap(),
        Wire::Quic => client
            .connect_quic(addr, "localhost", certificates().1.clone())
            .await
            .unwrap(),
        Wire::WebTransport => client
            .connect_webtransport(
                &format!("https://localhost:{}/volley", addr.port()),
                certificates().1.clone(),
            )
            .await
            .unwrap(),
    }
    Arc::new(VolleyCaller(client))
}

struct VolleyCaller(Client);

impl VolleyCaller {
    fn add_one(&self, x: u32) -> impl Future<Output = u32> + '_ {
        self.0.invoke(ADD_ONE, x).map(Result::unwrap)
    }
}

impl Caller for VolleyCaller {
    fn sequential(&self, n: usize) -> BoxFuture<'_, Vec<Duration>> {
        Box::pin(super::time_calls(n, |x| self.add_one(x)))
    }

    fn pipelined(&self, n: usize, inflight: usize) -> BoxFuture<'_, ()> {
        Box::pin(super::keep_in_flight(n, inflight, |x| self.add_one(x)))
    }
}

pub async fn connect(addr: SocketAddr) -> Arc<dyn Caller> {
    Arc::new(VolleyCaller(client(addr).await))
}
