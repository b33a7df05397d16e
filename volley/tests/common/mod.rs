//! What the integration tests share: one protocol with every kind of remote,
//! and helpers to start a server and clients on loopback TCP.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use volley::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    pub item: String,
    pub gold: u32,
}

fn at_most_1000_gold(p: &Purchase) -> Result<(), String> {
    if p.gold <= 1000 {
        Ok(())
    } else {
        Err(format!("{} gold is more than anyone has", p.gold))
    }
}

fn even(n: &u32) -> Result<(), String> {
    if n % 2 == 0 {
        Ok(())
    } else {
        Err(format!("{n} is odd"))
    }
}

// client → server
pub const BUY: ServerFn<Purchase, u32> = ServerFn::new("Buy").with_request_check(at_most_1000_gold);
pub const ECHO: ServerFn<String, String> = ServerFn::new("Echo");
pub const SLOW: ServerFn<u64, u64> = ServerFn::new("Slow");
pub const QUICK_TIMEOUT: ServerFn<u64, u64> = ServerFn::new("QuickTimeout").with_timeout(Duration::from_millis(200));
pub const UNHANDLED: ServerFn<(), ()> = ServerFn::new("Unhandled");
pub const PANICS: ServerFn<bool, ()> = ServerFn::new("Panics");
/// Declared here with an even-number response check; handled with any number.
pub const NUMBER: ServerFn<u32, u32> = ServerFn::new("Number").with_response_check(even);
pub const CHAT: ServerEvent<String> = ServerEvent::new("Chat");

// server → client
pub const PROMPT: ClientFn<String, bool> = ClientFn::new("Prompt");
pub const CLIENT_SLOW: ClientFn<u64, u64> = ClientFn::new("ClientSlow");
pub const CLIENT_UNHANDLED: ClientFn<(), ()> = ClientFn::new("ClientUnhandled");
pub const CLIENT_PANICS: ClientFn<(), ()> = ClientFn::new("ClientPanics");
pub const ANNOUNCE: ClientEvent<String> = ClientEvent::new("Announce");

pub fn protocol() -> Protocol {
    protocol_without_buy().remote(BUY).build()
}

/// Every remote of [`protocol`] but `BUY`, to add another `Buy` to.
pub fn protocol_without_buy() -> volley::remote::ProtocolBuilder {
    Protocol::builder()
        .remote(ECHO)
        .remote(SLOW)
        .remote(QUICK_TIMEOUT)
        .remote(UNHANDLED)
        .remote(PANICS)
        .remote(NUMBER)
        .remote(CHAT)
        .remote(PROMPT)
        .remote(CLIENT_SLOW)
        .remote(CLIENT_UNHANDLED)
        .remote(CLIENT_PANICS)
        .remote(ANNOUNCE)
}

/// Sends `()` when dropped: proves a handler's future was dropped (cancelled)
/// rather than left running.
pub struct DropSignal(pub Option<mpsc::UnboundedSender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// What the test server's handlers observed.
#[derive(Clone, Default)]
pub struct Observed {
    pub bad_requests: Arc<Mutex<Vec<(PlayerId, BadInput)>>>,
    pub bad_responses: Arc<Mutex<Vec<(PlayerId, BadInput)>>>,
    pub chats: Arc<Mutex<Vec<(PlayerId, String)>>>,
}

/// A server with the standard handlers; `slow_dropped` receives one `()` for
/// each `SLOW` handler that was cancelled before finishing.
pub fn server_with(config: ServerConfig) -> (Server, Observed, mpsc::UnboundedReceiver<()>) {
    let server = Server::new(protocol(), config);
    let observed = Observed::default();
    let (dropped_tx, dropped_rx) = mpsc::unbounded_channel();

    server.on_request_sync(BUY, |_player, p: Purchase| {
        if p.gold < 10 {
            return Err(Reject::new(format!("a {} costs 10 gold", p.item)));
        }
        Ok(p.gold - 10)
    });
    server.on_request(ECHO, |player: Player, s: String| async move {
        Ok(format!("{}:{s}", player.id().0))
    });
    server.on_request(SLOW, move |_player, millis: u64| {
        let guard = DropSignal(Some(dropped_tx.clone()));
        async move {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            std::mem::forget(guard);
            Ok(millis)
        }
    });
    server.on_request(QUICK_TIMEOUT, |_player, millis: u64| async move {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(millis)
    });
    server.on_request_sync(PANICS, |_player, sync: bool| {
        if sync {
            panic!("secret detail: database password is hunter2");
        }
        Err(Reject::internal("secret detail: disk full"))
    });
    server.on_request_sync(NUMBER, |_player, n: u32| Ok(n));
    let chats = observed.chats.clone();
    server.on_event(CHAT, move |player, line| {
        chats.lock().unwrap().push((player.id(), line))
    });
    let bad = observed.bad_requests.clone();
    server.on_bad_request(move |player, input| bad.lock().unwrap().push((player.id(), input.clone())));
    let bad = observed.bad_responses.clone();
    server.on_bad_response(move |player, input| bad.lock().unwrap().push((player.id(), input.clone())));
    (server, observed, dropped_rx)
}

pub async fn tcp_server(config: ServerConfig) -> (Server, SocketAddr, Observed, mpsc::UnboundedReceiver<()>) {
    let (server, observed, dropped) = server_with(config);
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    (server, addr, observed, dropped)
}

/// What a test client's handlers observed.
pub struct ClientProbe {
    pub announcements: mpsc::UnboundedReceiver<String>,
    pub slow_dropped: mpsc::UnboundedReceiver<()>,
}

/// A client with the standard handlers.
pub fn client_with(config: ClientConfig) -> (Client, ClientProbe) {
    let client = Client::new(protocol(), config);
    client.on_request_sync(PROMPT, |_, q: String| Ok(q.ends_with('?')));
    let (dropped_tx, slow_dropped) = mpsc::unbounded_channel();
    client.on_request(CLIENT_SLOW, move |_, millis: u64| {
        let guard = DropSignal(Some(dropped_tx.clone()));
        async move {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            std::mem::forget(guard);
            Ok(millis)
        }
    });
    client.on_request(CLIENT_PANICS, |_, ()| async move {
        if true {
            panic!("client secret");
        }
        Ok(())
    });
    let (tx, announcements) = mpsc::unbounded_channel();
    client.on_event(ANNOUNCE, move |_, s| {
        let _ = tx.send(s);
    });
    (
        client,
        ClientProbe {
            announcements,
            slow_dropped,
        },
    )
}

pub async fn tcp_client(addr: SocketAddr) -> (Client, ClientProbe) {
    let (client, probe) = client_with(ClientConfig::default());
    client.connect_tcp(addr).await.unwrap();
    (client, probe)
}

/// Waits until `server` lists `n` players (joining finishes on the server's
/// task, just after the client's `connect` returns).
pub async fn wait_players(server: &Server, n: usize) -> Vec<Player> {
    for _ in 0..500 {
        if server.player_count() == n {
            return server.players();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("expected {n} players, have {}", server.player_count());
}

/// Waits for something a background task will do, failing after 5 s.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Waits until `found` gives a value, failing after 10 s.
pub async fn wait_for<T>(mut found: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "waited 10 s in vain");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Receives one message, failing after 5 s.
pub async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("timed out waiting for a message")
        .expect("channel closed")
}

/// A self-signed certificate for "localhost": the server's configuration, and
/// a client configuration that trusts it (or, with `trusting` false, nothing).
#[cfg(feature = "tls")]
pub fn tls_configs(
    trusting: bool,
) -> (
    std::sync::Arc<volley::transport::tls::rustls::ServerConfig>,
    std::sync::Arc<volley::transport::tls::rustls::ClientConfig>,
) {
    use std::sync::Arc;
    use volley::transport::tls::rustls;
    let (server, trusting_client) = volley::transport::tls::self_signed(&["localhost"]).unwrap();
    if trusting {
        return (server, trusting_client);
    }
    let nothing = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    (server, Arc::new(nothing))
}

/// Collects every log line written while it is the default subscriber
/// (`tracing_subscriber::fmt().with_writer(move || logs.clone())`).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A client's hello for `protocol`, with an empty token, as a frame: for
/// hand-written peers.
pub fn hello_frame(protocol: &Protocol) -> Vec<u8> {
    let mut hello = Vec::new();
    volley::proto::Message::Hello {
        version: volley::proto::PROTOCOL_VERSION,
        remotes_hash: protocol.hash(),
        token: &b""[..],
    }
    .encode(&mut hello);
    hello
}
