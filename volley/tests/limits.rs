//! What is too large to send, and codes from a newer peer.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use volley::proto::{codec::decode_frame, Message, Status};
use volley::*;

const BIG: ServerFn<u32, String> = ServerFn::new("Big");

#[tokio::test]
async fn requests_and_answers_too_large_for_a_frame_fail_with_too_large() {
    let protocol = || Protocol::builder().remote(BIG).remote(ECHO).build();
    let server = Server::new(protocol(), ServerConfig::default());
    server.on_request_sync(BIG, |_, len: u32| Ok("x".repeat(len as usize)));
    server.on_request_sync(ECHO, |_, s: String| Ok(s));
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    let client = Client::new(protocol(), ClientConfig::default());
    client.connect_tcp(addr).await.unwrap();
    // A request over the limit fails at once, nothing sent.
    let huge = "y".repeat(2 << 20);
    assert_eq!(client.invoke(ECHO, huge).await, Err(FunctionError::TooLarge));
    // An answer over the limit: the receiver logs it, the caller gets TooLarge.
    assert_eq!(client.invoke(BIG, 2 << 20).await, Err(FunctionError::TooLarge));
    // The connection is fine, and just under the limit passes.
    assert_eq!(client.invoke(BIG, 1000).await.map(|s| s.len()), Ok(1000));
    assert!(client.is_connected());
}

/// A server from a newer version: answers with a status this version does
/// not know, then says goodbye with an unknown code.
#[tokio::test]
async fn unknown_codes_from_a_newer_peer_end_the_call_not_the_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = bytes::BytesMut::new();
        // The next message but the client's pings, which it sends when it
        // likes (one right after the handshake, racing the first calls).
        let next = async |socket: &mut tokio::net::TcpStream, buf: &mut bytes::BytesMut| loop {
            match decode_frame(buf, 1 << 20).unwrap() {
                Some(Message::Ping { .. }) => continue,
                Some(msg) => return msg,
                None => assert!(socket.read_buf(buf).await.unwrap() > 0),
            }
        };
        assert!(matches!(next(&mut socket, &mut buf).await, Message::Hello { .. }));
        let mut out = Vec::new();
        Message::<&[u8]>::Welcome { player: 1 }.encode(&mut out);
        socket.write_all(&out).await.unwrap();
        let Message::Request { id, .. } = next(&mut socket, &mut buf).await else {
            panic!("expected a request")
        };
        // Status 200: a newer peer's. Response-with-status is tag 6.
        socket.write_all(&[3, 6, id as u8, 200]).await.unwrap();
        let Message::Request { id, .. } = next(&mut socket, &mut buf).await else {
            panic!("expected a second request")
        };
        let mut out = Vec::new();
        let answer = postcard::to_allocvec(&"fine".to_string()).unwrap();
        Message::Response {
            id,
            status: Status::Ok,
            payload: &answer[..],
        }
        .encode(&mut out);
        // Goodbye (tag 10) with code 77 and no message.
        out.extend_from_slice(&[2, 10, 77]);
        socket.write_all(&out).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let client = Client::new(protocol(), ClientConfig::default());
    client.connect_tcp(addr).await.unwrap();
    assert_eq!(client.invoke(ECHO, "a".into()).await, Err(FunctionError::Unprocessed));
    assert_eq!(client.invoke(ECHO, "b".into()).await, Ok("fine".to_string()));
    eventually("goodbye", || !client.is_connected()).await;
    assert!(matches!(
        client.close_reason(),
        Some(CloseReason::Remote {
            code: GoodbyeCode::Unknown,
            ..
        })
    ));
    server.await.unwrap();
}

/// A server that pauses reading a flooding player receives nothing more
/// from it (bar what was already read) while the client's writes stall;
/// resumed, it gets every event the client managed to send, in order.
#[tokio::test]
async fn a_paused_player_is_not_read_until_resumed() {
    let (server, addr, observed, _) = tcp_server(ServerConfig::default()).await;
    let (client, _) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();
    assert!(player.pause_reading());
    assert!(!player.pause_reading(), "held already");
    // Fire until the client cannot queue more (its transport and outbox
    // full): a bounded flood.
    let line = "x".repeat(200);
    let mut sent = 0usize;
    for _ in 0..200_000 {
        match client.fire(CHAT, line.clone()) {
            Ok(()) => sent += 1,
            Err(_) => break,
        }
        if sent % 1000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let while_paused = observed.chats.lock().unwrap().len();
    assert!(while_paused < 100, "{while_paused} events read while paused");
    assert!(sent > 1000, "only {sent} sent");
    assert!(player.resume_reading());
    eventually("every event sent", || observed.chats.lock().unwrap().len() == sent).await;
}
