//! volley over TCP: a synchronous handler (run inline on the connection task).

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::future::BoxFuture;
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
    client.on_request_sync(CLIENT_ADD_ONE, |x: u32| Ok(x.wrapping_add(1)));
    client.connect_tcp(addr).await.unwrap();
    client
}

struct VolleyCaller(Client);

impl Caller for VolleyCaller {
    fn call(&self, x: u32) -> BoxFuture<'static, u32> {
        let client = self.0.clone();
        Box::pin(async move { client.invoke(ADD_ONE, x).await.unwrap() })
    }
}

pub async fn connect(addr: SocketAddr) -> Arc<dyn Caller> {
    Arc::new(VolleyCaller(client(addr).await))
}
