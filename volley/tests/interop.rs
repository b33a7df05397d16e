//! Peers volley did not write: a WebSocket client speaking raw frames after
//! the upgrade, browsers' Origin header, QUIC's ALPN.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use volley::proto::{GoodbyeCode, Message, PROTOCOL_VERSION};
use volley::*;

fn frame(msg: Message<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out);
    out
}

/// A WebSocket client that has said hello and been welcomed.
async fn joined_ws(addr: SocketAddr) -> WebSocketStream<TcpStream> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/volley"), stream)
        .await
        .unwrap();
    let hello = frame(Message::Hello {
        version: PROTOCOL_VERSION,
        remotes_hash: protocol().hash(),
        token: &[],
    });
    ws.send(WsMessage::Binary(hello.into())).await.unwrap();
    match ws.next().await {
        // The welcome, perhaps with the opening ping behind it.
        // (Length 2, tag 1, the player id: ids here are under 128.)
        Some(Ok(WsMessage::Binary(welcome))) => assert!(welcome.starts_with(&[2, 1]), "{welcome:?}"),
        other => panic!("expected a welcome, got {other:?}"),
    }
    ws
}

/// Reads raw bytes until a whole server Close frame (unmasked) has come;
/// returns its status code.
async fn server_close_code(tcp: &mut TcpStream) -> u16 {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        // Skip whole frames before the close (a binary goodbye, say).
        while got.len() >= 2 && got[0] != 0x88 {
            let len = (got[1] & 0x7f) as usize;
            if got.len() < 2 + len {
                break;
            }
            got.drain(..2 + len);
        }
        if got.len() >= 4 && got[0] == 0x88 {
            return u16::from_be_bytes([got[2], got[3]]);
        }
        let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf))
            .await
            .expect("no close frame from the server")
            .unwrap();
        assert!(n > 0, "the server closed without a Close frame");
        got.extend_from_slice(&buf[..n]);
    }
}

/// Holds back its Close reply for 300 ms: the server must keep the TCP
/// connection open meanwhile, then close it cleanly once the reply comes.
async fn reply_late_and_expect_a_clean_close(tcp: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "the server dropped the connection before our Close reply: {early:?}"
    );
    // A masked Close frame with code 1000.
    let mask = [1u8, 2, 3, 4];
    let close = [
        0x88,
        0x82,
        mask[0],
        mask[1],
        mask[2],
        mask[3],
        0x03 ^ mask[0],
        0xe8 ^ mask[1],
    ];
    tcp.write_all(&close).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut byte)).await;
    assert!(matches!(end, Ok(Ok(0))), "expected a clean end of stream, got {end:?}");
}

#[tokio::test]
async fn websocket_close_waits_for_the_peers_close_after_a_goodbye() {
    let (_server, _, _) = server_with(ServerConfig::default());
    let addr = _server.listen_ws("127.0.0.1:0", "/volley").await.unwrap();
    let mut ws = joined_ws(addr).await;
    let goodbye = frame(Message::Goodbye {
        code: GoodbyeCode::Normal,
        message: "bye".into(),
    });
    ws.send(WsMessage::Binary(goodbye.into())).await.unwrap();
    let tcp = ws.get_mut();
    assert_eq!(server_close_code(tcp).await, 1000);
    reply_late_and_expect_a_clean_close(tcp).await;
}

#[tokio::test]
async fn websocket_text_message_is_closed_with_1003_and_still_waits() {
    let (_server, _, _) = server_with(ServerConfig::default());
    let addr = _server.listen_ws("127.0.0.1:0", "/volley").await.unwrap();
    let mut ws = joined_ws(addr).await;
    ws.send(WsMessage::Text("hello?".into())).await.unwrap();
    let tcp = ws.get_mut();
    assert_eq!(server_close_code(tcp).await, 1003);
    reply_late_and_expect_a_clean_close(tcp).await;
}

/// With an allow-list, a browser page from another origin is refused
/// (HTTP 403) while the game's own origin and non-browser clients get in.
#[tokio::test]
async fn websocket_origins_outside_the_allow_list_are_refused() {
    let config = ServerConfig::default().with_allowed_origins(["https://game.example"]);
    let (server, _, _) = server_with(config);
    let addr = server.listen_ws("127.0.0.1:0", "/volley").await.unwrap();
    let upgrade = |origin: Option<&'static str>| async move {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{addr}/volley").into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        let stream = TcpStream::connect(addr).await.unwrap();
        tokio_tungstenite::client_async(request, stream).await.map(|_| ())
    };
    match upgrade(Some("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected HTTP 403, got {other:?}"),
    }
    upgrade(Some("https://game.example")).await.unwrap();
    upgrade(None).await.unwrap();
    // And volley's own client (no Origin header) plays as usual.
    let (client, _probe) = client_with(ClientConfig::default());
    client.connect_ws(addr, "/volley").await.unwrap();
    assert!(client.invoke(ECHO, "hi".into()).await.is_ok());
}

/// Opens a QUIC connection offering `alpn` and returns how it went.
async fn quic_handshake(
    addr: SocketAddr,
    client_config: &volley::transport::tls::rustls::ClientConfig,
    alpn: &[&[u8]],
) -> Result<(), String> {
    let mut config = client_config.clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(std::sync::Arc::new(config)).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
    let connecting = endpoint.connect(addr, "localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .map_err(|_| "timed out".to_string())?
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Both ends negotiate ALPN `volley/3`; a peer offering another protocol, or
/// none, is refused in the handshake with the TLS alert that says so.
#[tokio::test]
async fn quic_negotiates_the_volley_alpn_and_refuses_others() {
    let (server_config, client_config) = tls_configs(true);
    let (server, _, _) = server_with(ServerConfig::default());
    let addr = server.listen_quic("127.0.0.1:0", server_config).await.unwrap();
    assert_eq!(volley::transport::quic::ALPN, b"volley/3");
    quic_handshake(addr, &client_config, &[b"volley/3"]).await.unwrap();
    let other = quic_handshake(addr, &client_config, &[b"h3"]).await.unwrap_err();
    assert!(other.contains("120") || other.contains("protocol"), "{other}");
    let none = quic_handshake(addr, &client_config, &[]).await.unwrap_err();
    assert!(none.contains("120") || none.contains("protocol"), "{none}");
    println!("offering h3: {other}\noffering nothing: {none}");
    // volley's own client negotiates it, whatever ALPN its configuration held.
    let mut config = (*client_config).clone();
    config.alpn_protocols = vec![b"h3".to_vec()];
    let (client, _probe) = client_with(ClientConfig::default());
    client
        .connect_quic(addr, "localhost", std::sync::Arc::new(config))
        .await
        .unwrap();
    assert!(client.invoke(ECHO, "hi".into()).await.is_ok());
}

/// A WebSocket URL, as a browser game would give it.
#[tokio::test]
async fn a_client_connects_by_websocket_url() {
    let (server, _, _) = server_with(ServerConfig::default());
    let addr = server.listen_ws("127.0.0.1:0", "/volley").await.unwrap();
    let (client, _probe) = client_with(ClientConfig::default());
    client.connect_url(&format!("ws://{addr}/volley")).await.unwrap();
    assert!(client.invoke(ECHO, "hi".into()).await.is_ok());
    // Schemes are case-insensitive (RFC 3986).
    let (shouting, _probe) = client_with(ClientConfig::default());
    shouting.connect_url(&format!("WS://{addr}/volley")).await.unwrap();
    assert!(shouting.invoke(ECHO, "hi".into()).await.is_ok());
    let (other, _probe) = client_with(ClientConfig::default());
    let wrong = other.connect_url(&format!("http://{addr}/volley")).await.unwrap_err();
    assert!(wrong.to_string().contains("ws://"), "{wrong}");
    let missing = other.connect_url(&format!("ws://{addr}/elsewhere")).await.unwrap_err();
    assert!(matches!(missing, ConnectError::Io(_)), "{missing:?}");
}
