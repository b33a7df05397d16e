//! Hostile peers over QUIC and WebTransport, written with quinn and
//! web-transport-quinn directly: a stream beyond the one volley uses, and a
//! datagram before the hello. Each connection ends at once as a protocol
//! violation, with a goodbye that says why, and an honest client is served
//! beside it.

#![cfg(feature = "webtransport")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use volley::proto::{Message, PROTOCOL_VERSION};
use volley::transport::tls::rustls;
use volley::*;

/// Far below the handshake deadline: the violation, not the deadline, ends it.
const PROMPTLY: Duration = Duration::from_secs(2);

fn frame(msg: Message<&[u8]>) -> Vec<u8> {
    let mut bytes = Vec::new();
    msg.encode(&mut bytes);
    bytes
}

fn hello() -> Vec<u8> {
    frame(Message::Hello {
        version: PROTOCOL_VERSION,
        remotes_hash: protocol().hash(),
        token: &b""[..],
    })
}

fn event() -> Vec<u8> {
    frame(Message::Event {
        remote: 0,
        payload: &b""[..],
    })
}

/// What the server wrote on the stream until it ended, read within
/// [`PROMPTLY`] of `since`.
async fn until_closed(recv: &mut (impl tokio::io::AsyncRead + Unpin), since: Instant) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(PROMPTLY, async {
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = recv.read(&mut buf).await {
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "still open after {:?}", since.elapsed());
    String::from_utf8_lossy(&got).into_owned()
}

/// The player was dropped at once for opening `what`, saying so.
async fn dropped_for_opening(server: &Server, recv: &mut (impl tokio::io::AsyncRead + Unpin), what: &str) {
    let said = until_closed(recv, Instant::now()).await;
    assert!(said.contains(&format!("opened {what}")), "{said:?}");
    eventually("the player is gone", || server.player_count() == 0).await;
    assert_eq!(server.figures().disconnects.get("ProtocolViolation"), Some(&1));
}

/// The connection was dropped at once for its early datagram, before its
/// player joined, and counted so.
async fn dropped_before_joining(server: &Server, recv: &mut (impl tokio::io::AsyncRead + Unpin), since: Instant) {
    let said = until_closed(recv, since).await;
    assert!(said.contains("datagram before the handshake ended"), "{said:?}");
    eventually("the refusal is counted", || {
        server
            .figures()
            .refused
            .contains_key("closed before joining: ProtocolViolation")
    })
    .await;
}

/// The server still serves an honest client over `connect`.
async fn still_serves(server: &Server, dial: impl std::future::Future<Output = Result<(), ConnectError>>) {
    dial.await.unwrap();
    wait_players(server, 1).await;
}

fn quic_client_config(config: &Arc<rustls::ClientConfig>, alpn: &[u8]) -> quinn::ClientConfig {
    let mut config = (**config).clone();
    config.alpn_protocols = vec![alpn.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(config)).unwrap();
    quinn::ClientConfig::new(Arc::new(crypto))
}

async fn raw_quic(addr: std::net::SocketAddr, config: &Arc<rustls::ClientConfig>) -> quinn::Connection {
    let mut endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).unwrap();
    endpoint.set_default_client_config(quic_client_config(config, transport::quic::ALPN));
    endpoint.connect(addr, "localhost").unwrap().await.unwrap()
}

/// `server` listening for WebTransport, and a raw session to it (not
/// volley's client), with the client's TLS settings for a real client
/// after it.
async fn webtransport_peer(
    server: &Server,
) -> (
    std::net::SocketAddr,
    Arc<rustls::ClientConfig>,
    web_transport_quinn::Session,
) {
    let (server_tls, client_tls) = tls_configs(true);
    let addr = server
        .listen_webtransport("127.0.0.1:0", "/volley", server_tls)
        .await
        .unwrap();
    let endpoint = web_transport_quinn::quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).unwrap();
    let client =
        web_transport_quinn::Client::new(endpoint, quic_client_config(&client_tls, transport::webtransport::ALPN));
    let url = url::Url::parse(&format!("https://localhost:{}/volley", addr.port())).unwrap();
    (addr, client_tls, client.connect(url).await.unwrap())
}

#[tokio::test]
async fn a_quic_peer_that_opens_a_second_stream_is_dropped() {
    let (server_tls, client_tls) = tls_configs(true);
    let (server, _, _) = server_with(ServerConfig::default());
    let addr = server.listen_quic("127.0.0.1:0", server_tls).await.unwrap();
    let conn = raw_quic(addr, &client_tls).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&hello()).await.unwrap();
    wait_players(&server, 1).await;

    let (mut stray, _) = conn.open_bi().await.unwrap();
    stray.write_all(b"x").await.unwrap();
    dropped_for_opening(&server, &mut recv, "a second bidirectional stream").await;

    let (client, _probe) = client_with(ClientConfig::default());
    still_serves(&server, client.connect_quic(addr, "localhost", client_tls)).await;
}

#[tokio::test]
async fn a_quic_peer_that_sends_a_datagram_before_its_hello_is_dropped() {
    let (server_tls, client_tls) = tls_configs(true);
    let (server, _, _) = server_with(ServerConfig::default());
    let addr = server.listen_quic("127.0.0.1:0", server_tls).await.unwrap();
    let conn = raw_quic(addr, &client_tls).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    // The first byte of a hello: the stream is open, the handshake is not.
    send.write_all(&hello()[..1]).await.unwrap();
    let since = Instant::now();
    conn.send_datagram(event().into()).unwrap();
    dropped_before_joining(&server, &mut recv, since).await;
}

#[tokio::test]
async fn a_webtransport_peer_that_opens_a_second_stream_is_dropped() {
    let (server, _, _) = server_with(ServerConfig::default());
    let (addr, client_tls, session) = webtransport_peer(&server).await;
    let (mut send, mut recv) = session.open_bi().await.unwrap();
    send.write_all(&hello()).await.unwrap();
    wait_players(&server, 1).await;

    let mut stray = session.open_uni().await.unwrap();
    stray.write_all(b"x").await.unwrap();
    dropped_for_opening(&server, &mut recv, "a unidirectional stream").await;

    let (client, _probe) = client_with(ClientConfig::default());
    let url = format!("https://localhost:{}/volley", addr.port());
    still_serves(&server, client.connect_webtransport(&url, client_tls)).await;
}

#[tokio::test]
async fn a_webtransport_peer_that_sends_a_datagram_before_its_hello_is_dropped() {
    let (server, _, _) = server_with(ServerConfig::default());
    let (_, _, session) = webtransport_peer(&server).await;
    let (mut send, mut recv) = session.open_bi().await.unwrap();
    send.write_all(&hello()[..1]).await.unwrap();
    let since = Instant::now();
    session.send_datagram(event().into()).unwrap();
    dropped_before_joining(&server, &mut recv, since).await;
}
