//! The reference behaviours, written once and run over every transport:
//! memory, TCP, and with features `tls` and `websocket` those too
//! (`cargo test -p volley-net --all-features --test conformance`). A new transport
//! is proven by one more `conformance!` line.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::sync::mpsc;
use volley::*;

/// A server, one connected client, and what their handlers observed.
struct Env {
    server: Server,
    client: Client,
    probe: ClientProbe,
    player: Player,
    observed: Observed,
    server_cancelled: mpsc::UnboundedReceiver<()>,
}

async fn finish(
    server: Server,
    observed: Observed,
    server_cancelled: mpsc::UnboundedReceiver<()>,
    client: Client,
    probe: ClientProbe,
) -> Env {
    let player = wait_players(&server, 1).await.pop().unwrap();
    Env {
        server,
        client,
        probe,
        player,
        observed,
        server_cancelled,
    }
}

async fn over_memory() -> Env {
    let (server, observed, cancelled) = server_with(ServerConfig::default());
    let (client, probe) = client_with(ClientConfig::default());
    client.connect(server.connect_memory()).await.unwrap();
    finish(server, observed, cancelled, client, probe).await
}

async fn over_tcp() -> Env {
    let (server, observed, cancelled) = server_with(ServerConfig::default());
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    let (client, probe) = client_with(ClientConfig::default());
    client.connect_tcp(addr).await.unwrap();
    finish(server, observed, cancelled, client, probe).await
}

#[cfg(feature = "tls")]
async fn over_tls() -> Env {
    let (server_config, client_config) = tls_configs(true);
    let (server, observed, cancelled) = server_with(ServerConfig::default());
    let addr = server.listen_tls("127.0.0.1:0", server_config).await.unwrap();
    let (client, probe) = client_with(ClientConfig::default());
    client.connect_tls(addr, "localhost", client_config).await.unwrap();
    finish(server, observed, cancelled, client, probe).await
}

#[cfg(all(feature = "websocket", feature = "tls"))]
async fn over_secure_websocket() -> Env {
    let (server_config, client_config) = tls_configs(true);
    let (server, observed, cancelled) = server_with(ServerConfig::default());
    let addr = server
        .listen_wss("127.0.0.1:0", "/volley", server_config)
        .await
        .unwrap();
    let (client, probe) = client_with(ClientConfig::default());
    client
        .connect_wss(addr, "/volley", "localhost", client_config)
        .await
        .unwrap();
    finish(server, observed, cancelled, client, probe).await
}

#[cfg(feature = "quic")]
async fn over_quic() -> Env {
    let (server_config, client_config) = tls_configs(true);
    let (server, observed, cancelled) = server_with(ServerConfig::default());
    let addr = server.listen_quic("127.0.0.1:0", server_config).await.unwrap();
    let (client, probe) = client_with(ClientConfig::default());
    // As a string, as every connect_* takes it.
    let named = format!("127.0.0.1:{}", addr.port());
    client.connect_quic(named, "localhost", client_config).await.unwrap();
    finish(server, observed, cancelled, client, probe).await
}

#[cfg(feature = "webtransport")]
async fn over_webtransport() -> Env {
    let (server_config, client_config) = tls_configs(true);
    let (server, observed, cancelled) = server_with(ServerConfig::default());
    let addr = server
        .listen_webtransport("127.0.0.1:0", "/volley", server_config)
        .await
        .unwrap();
    let (client, probe) = client_with(ClientConfig::default());
    let url = format!("https://localhost:{}/volley", addr.port());
    client.connect_webtransport(&url, client_config).await.unwrap();
    finish(server, observed, cancelled, client, probe).await
}

#[cfg(feature = "websocket")]
async fn over_websocket() -> Env {
    let (server, observed, cancelled) = server_with(ServerConfig::default());
    let addr = server.listen_ws("127.0.0.1:0", "/volley").await.unwrap();
    let (client, probe) = client_with(ClientConfig::default());
    client.connect_ws(addr, "/volley").await.unwrap();
    finish(server, observed, cancelled, client, probe).await
}

macro_rules! conformance {
    ($transport:ident, $setup:ident) => {
        mod $transport {
            use super::*;

            #[tokio::test]
            async fn calls_both_ways_with_results_and_rejections() {
                let e = $setup().await;
                // The client knows its player's id from the handshake.
                assert_eq!(e.client.player_id(), Some(e.player.id()));
                assert_eq!(
                    e.client
                        .invoke(
                            BUY,
                            Purchase {
                                item: "axe".into(),
                                gold: 12
                            }
                        )
                        .await,
                    Ok(2)
                );
                let rejected = e
                    .client
                    .invoke(
                        BUY,
                        Purchase {
                            item: "axe".into(),
                            gold: 1,
                        },
                    )
                    .await;
                assert_eq!(
                    rejected,
                    Err(FunctionError::Rejected("a axe costs 10 gold".into()))
                );
                assert_eq!(e.server.invoke(&e.player, PROMPT, "ok?".into()).await, Ok(true));
                assert_eq!(
                    e.client.invoke(UNHANDLED, ()).await,
                    Err(FunctionError::Unprocessed)
                );
                assert_eq!(
                    e.client.invoke(PANICS, true).await,
                    Err(FunctionError::Unprocessed)
                );
            }

            #[tokio::test]
            async fn timeouts_and_dropped_calls_cancel_the_handler_across_the_wire() {
                let mut e = $setup().await;
                let start = Instant::now();
                let r = e
                    .client
                    .invoke_with_timeout(SLOW, 5_000, Duration::from_millis(100))
                    .await;
                assert_eq!(r, Err(FunctionError::Timeout));
                assert!(start.elapsed() < Duration::from_secs(2));
                recv(&mut e.server_cancelled).await;
                let dropped = tokio::time::timeout(
                    Duration::from_millis(50),
                    e.server.invoke(&e.player, CLIENT_SLOW, 60_000),
                )
                .await;
                assert!(dropped.is_err());
                recv(&mut e.probe.slow_dropped).await;
                assert_eq!(e.client.invoke(SLOW, 1).await, Ok(1));
            }

            #[tokio::test]
            async fn events_both_ways() {
                let mut e = $setup().await;
                e.server.fire(&e.player, ANNOUNCE, "one".into()).unwrap();
                assert_eq!(e.server.fire_all(ANNOUNCE, "two".into()).unwrap().sent, 1);
                assert_eq!(recv(&mut e.probe.announcements).await, "one");
                assert_eq!(recv(&mut e.probe.announcements).await, "two");
                e.client.fire(CHAT, "hi".into()).unwrap();
                let observed = e.observed.clone();
                eventually("chat", || observed.chats.lock().unwrap().len() == 1).await;
            }

            #[tokio::test]
            async fn rooms_and_calls_to_many_players() {
                let mut e = $setup().await;
                assert!(e.player.join("match:1"));
                let sent = e
                    .server
                    .to_room("match:1")
                    .fire(ANNOUNCE, "to the room".into())
                    .unwrap();
                assert_eq!(sent.sent, 1);
                assert_eq!(recv(&mut e.probe.announcements).await, "to the room");
                let answers = e
                    .server
                    .to_room("match:1")
                    .invoke(PROMPT, "ready?".into())
                    .all()
                    .await;
                assert_eq!(answers, vec![(e.player.id(), Ok(true))]);
                // The deadline, and the cancel it sends to the client's handler.
                let answers = e
                    .server
                    .to_all()
                    .invoke_with_timeout(CLIENT_SLOW, 5_000, Duration::from_millis(200))
                    .all()
                    .await;
                assert_eq!(answers, vec![(e.player.id(), Err(FunctionError::Timeout))]);
                recv(&mut e.probe.slow_dropped).await;
            }

            #[tokio::test]
            async fn bad_input_is_refused_and_reported() {
                let e = $setup().await;
                let r = e
                    .client
                    .invoke(
                        BUY,
                        Purchase {
                            item: "castle".into(),
                            gold: 99_999,
                        },
                    )
                    .await;
                assert_eq!(r, Err(FunctionError::BadRequest));
                assert_eq!(e.observed.bad_requests.lock().unwrap().len(), 1);
                assert_eq!(
                    e.client.invoke(NUMBER, 3).await,
                    Err(FunctionError::InvalidResult)
                );
            }

            #[tokio::test]
            async fn a_lost_peer_ends_every_pending_call_at_once() {
                let mut e = $setup().await;
                let player = e.player.clone();
                let start = Instant::now();
                let (a, b, ()) = tokio::join!(
                    e.client.invoke(SLOW, 60_000),
                    e.server.invoke(&e.player, CLIENT_SLOW, 60_000),
                    async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        player.kick("bye");
                    }
                );
                assert_eq!(
                    (a, b),
                    (Err(FunctionError::Disconnected), Err(FunctionError::Disconnected))
                );
                assert!(start.elapsed() < Duration::from_secs(3));
                recv(&mut e.server_cancelled).await;
                assert!(matches!(
                    e.client.close_reason(),
                    Some(CloseReason::Remote {
                        code: GoodbyeCode::Kicked,
                        ..
                    })
                ));
            }

            /// Bursts big enough to fill the socket arrive in full without
            /// waiting for later traffic (the next keep-alive ping is 10 s
            /// away): a transport that buffers (TLS, WebSocket) is flushed
            /// until done, not only when something else is written.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bursts_arrive_without_waiting_for_later_traffic() {
                let mut e = $setup().await;
                for burst in 0..5 {
                    for i in 0..20_000 {
                        e.server
                            .fire(&e.player, ANNOUNCE, format!("{burst}:{i}"))
                            .unwrap();
                        if i % 2_000 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    let last_fired = Instant::now();
                    let mut got = 0;
                    while got < 20_000 {
                        tokio::time::timeout(Duration::from_secs(2), e.probe.announcements.recv())
                            .await
                            .unwrap_or_else(|_| panic!("burst {burst}: {got} of 20000 events arrived within 2 s"))
                            .unwrap();
                        got += 1;
                    }
                    assert!(last_fired.elapsed() < Duration::from_secs(2));
                }
                // Answers big enough to fill the socket, many at once.
                let big = "x".repeat(100_000);
                for _ in 0..3 {
                    let calls = (0..8).map(|_| {
                        e.client
                            .invoke_with_timeout(ECHO, big.clone(), Duration::from_secs(3))
                    });
                    let answers = futures_util::future::join_all(calls).await;
                    assert!(
                        answers
                            .iter()
                            .all(|a| a.as_ref().is_ok_and(|s| s.len() > 100_000)),
                        "{:?}",
                        answers
                            .iter()
                            .map(|a| a.as_ref().map(|s| s.len()))
                            .collect::<Vec<_>>()
                    );
                }
            }

            #[tokio::test]
            async fn predict_runs_locally() {
                let e = $setup().await;
                assert_eq!(
                    e.server
                        .predict(
                            &e.player,
                            BUY,
                            Purchase {
                                item: "x".into(),
                                gold: 15
                            }
                        )
                        .await,
                    Ok(5)
                );
                assert_eq!(e.client.predict(PROMPT, "?".into()).await, Ok(true));
            }
        }
    };
}

conformance!(memory, over_memory);
conformance!(tcp, over_tcp);
#[cfg(feature = "tls")]
conformance!(tls, over_tls);
#[cfg(feature = "websocket")]
conformance!(websocket, over_websocket);
#[cfg(all(feature = "websocket", feature = "tls"))]
conformance!(secure_websocket, over_secure_websocket);
#[cfg(feature = "quic")]
conformance!(quic, over_quic);
#[cfg(feature = "webtransport")]
conformance!(webtransport, over_webtransport);

/// A browser page's session carries its origin: with an allow-list, a page
/// of another origin is refused (HTTP 403) before anything volley reads.
#[cfg(feature = "webtransport")]
#[tokio::test]
async fn webtransport_refuses_pages_of_other_origins() {
    use std::sync::Arc;
    let (server_config, client_config) = tls_configs(true);
    let config = ServerConfig::default().with_allowed_origins(["https://game.example"]);
    let (server, _, _) = server_with(config);
    let addr = server
        .listen_webtransport("127.0.0.1:0", "/volley", server_config)
        .await
        .unwrap();
    let url = url::Url::parse(&format!("https://localhost:{}/volley", addr.port())).unwrap();
    let session = |origin: &'static str| {
        let (url, client_config) = (url.clone(), client_config.clone());
        async move {
            let mut config = (*client_config).clone();
            config.alpn_protocols = vec![b"h3".to_vec()];
            let crypto =
                web_transport_quinn::quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(config)).unwrap();
            let endpoint = web_transport_quinn::quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).unwrap();
            let client = web_transport_quinn::Client::new(
                endpoint,
                web_transport_quinn::quinn::ClientConfig::new(Arc::new(crypto)),
            );
            let mut request = web_transport_quinn::proto::ConnectRequest::new(url);
            request.headers.insert("origin", origin.parse().unwrap());
            client.connect(request).await
        }
    };
    let refused = session("https://evil.example").await;
    let Err(refused) = refused else {
        panic!("a page of another origin got a session");
    };
    // The 403 itself reaches the page, not a reset connection.
    assert!(refused.to_string().contains("403"), "{refused}");
    let allowed = session("https://game.example").await;
    assert!(allowed.is_ok(), "{:?}", allowed.err());
    assert_eq!(server.player_count(), 0);
}

#[cfg(feature = "webtransport")]
#[tokio::test]
async fn webtransport_refuses_other_paths_and_carries_unreliable_events_as_datagrams() {
    let protocol = datagram_protocol();
    let (server_config, client_config) = tls_configs(true);
    let server = Server::new(protocol.clone(), ServerConfig::default());
    server.on_request_sync(ECHO, |_, s: String| Ok(s));
    let addr = server
        .listen_webtransport("127.0.0.1:0", "/volley", server_config)
        .await
        .unwrap();
    // Another path: the session is refused (HTTP 404), nobody joins.
    let (lost, _) = datagram_client(protocol.clone());
    let elsewhere = format!("https://localhost:{}/elsewhere", addr.port());
    let refused = lost.connect_webtransport(&elsewhere, client_config.clone()).await;
    assert!(matches!(refused, Err(ConnectError::Io(_))), "{refused:?}");
    assert!(
        refused.unwrap_err().to_string().contains("404"),
        "the 404 did not reach the client"
    );
    assert_eq!(server.player_count(), 0);

    let (client, mut positions) = datagram_client(protocol);
    let url = format!("https://localhost:{}/volley", addr.port());
    client.connect_webtransport(&url, client_config).await.unwrap();
    unreliable_events_go_as_datagrams(&server, &client, &mut positions).await;
}

#[cfg(feature = "websocket")]
#[tokio::test]
async fn websocket_refuses_other_paths() {
    let (server, _, _) = server_with(ServerConfig::default());
    let addr = server.listen_ws("127.0.0.1:0", "/volley").await.unwrap();
    let (client, _probe) = client_with(ClientConfig::default());
    assert!(matches!(
        client.connect_ws(addr, "/elsewhere").await,
        Err(ConnectError::Io(_))
    ));
    assert_eq!(server.player_count(), 0);
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_verifies_the_certificate() {
    let (server_config, untrusting) = tls_configs(false);
    let (server, _, _) = server_with(ServerConfig::default());
    let addr = server.listen_tls("127.0.0.1:0", server_config).await.unwrap();
    // A client that does not trust this certificate is not let through.
    let (client, _probe) = client_with(ClientConfig::default());
    let err = client.connect_tls(addr, "localhost", untrusting).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    assert_eq!(server.player_count(), 0);
}

/// A QUIC server for `protocol` answering `ECHO`, its address, and a client
/// TLS configuration that trusts it.
#[cfg(feature = "quic")]
async fn quic_echo_server(
    protocol: &Protocol,
) -> (
    Server,
    std::net::SocketAddr,
    std::sync::Arc<volley::transport::tls::rustls::ClientConfig>,
) {
    let (server_config, client_config) = tls_configs(true);
    let server = Server::new(protocol.clone(), ServerConfig::default());
    server.on_request_sync(ECHO, |_, s: String| Ok(s));
    let addr = server.listen_quic("127.0.0.1:0", server_config).await.unwrap();
    (server, addr, client_config)
}

/// Positions fired as unreliable events, and one too large for a datagram.
#[cfg(feature = "quic")]
const POSITION: ClientEvent<(u32, f32)> = ClientEvent::new("Position").unreliable();
#[cfg(feature = "quic")]
const BIG: ClientEvent<Vec<u8>> = ClientEvent::new("Big").unreliable();

#[cfg(feature = "quic")]
fn datagram_protocol() -> Protocol {
    Protocol::builder().remote(POSITION).remote(BIG).remote(ECHO).build()
}

/// A client of [`datagram_protocol`] and the positions it hears.
#[cfg(feature = "quic")]
fn datagram_client(protocol: Protocol) -> (Client, mpsc::UnboundedReceiver<(u32, f32)>) {
    let client = Client::new(protocol, ClientConfig::default());
    let (tx, rx) = mpsc::unbounded_channel();
    client.on_event(POSITION, move |_, p| {
        let _ = tx.send(p);
    });
    (client, rx)
}

/// 50 positions fired all arrive; one of 1,500 bytes is refused `TooLarge`
/// (only a datagram refuses it: the stream would take it); calls on the same
/// connection are undisturbed.
#[cfg(feature = "quic")]
async fn unreliable_events_go_as_datagrams(
    server: &Server,
    client: &Client,
    positions: &mut mpsc::UnboundedReceiver<(u32, f32)>,
) {
    let player = wait_players(server, 1).await.pop().unwrap();
    for i in 0..50u32 {
        server.fire(&player, POSITION, (i, i as f32)).unwrap();
    }
    // Loopback loses nothing, but datagrams carry no order promise: count them.
    let mut got = Vec::new();
    while got.len() < 50 {
        got.push(recv(positions).await.0);
    }
    got.sort();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    // Counted as datagrams on both sides; nothing else went as one.
    assert_eq!(player.figures().datagrams_out, 50);
    assert_eq!(client.figures().unwrap().datagrams_in, 50);
    let err = server.fire(&player, BIG, vec![0; 1500]).unwrap_err();
    assert!(matches!(err, EventError::TooLarge { .. }), "{err}");
    assert_eq!(client.invoke(ECHO, "still here".into()).await.unwrap(), "still here");
}

#[cfg(feature = "quic")]
#[tokio::test]
async fn quic_carries_unreliable_events_as_datagrams() {
    let protocol = datagram_protocol();
    let (server, addr, client_config) = quic_echo_server(&protocol).await;
    let (client, mut positions) = datagram_client(protocol);
    client.connect_quic(addr, "localhost", client_config).await.unwrap();
    unreliable_events_go_as_datagrams(&server, &client, &mut positions).await;
}

/// A UDP relay that drops one datagram in `one_in`, each way, by a fixed
/// pseudo-random sequence (the run is repeatable).
#[cfg(feature = "quic")]
async fn lossy_relay(target: std::net::SocketAddr, one_in: u64) -> std::net::SocketAddr {
    use std::sync::Arc;
    use tokio::net::UdpSocket;
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    back.connect(target).await.unwrap();
    let addr = front.local_addr().unwrap();
    let client = Arc::new(std::sync::Mutex::new(None));
    let drop_it = move |seed: &mut u64| {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed % one_in == 0
    };
    {
        let (front, back, client) = (front.clone(), back.clone(), client.clone());
        tokio::spawn(async move {
            let (mut buf, mut seed) = (vec![0u8; 65536], 0x1234_5678u64);
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                *client.lock().unwrap() = Some(from);
                if !drop_it(&mut seed) {
                    let _ = back.send(&buf[..n]).await;
                }
            }
        });
    }
    tokio::spawn(async move {
        let (mut buf, mut seed) = (vec![0u8; 65536], 0x8765_4321u64);
        while let Ok(n) = back.recv(&mut buf).await {
            let to = *client.lock().unwrap();
            if let (Some(to), false) = (to, drop_it(&mut seed)) {
                let _ = front.send_to(&buf[..n], to).await;
            }
        }
    });
    addr
}

#[cfg(feature = "quic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_lossy_link_calls_all_complete_and_unreliable_events_are_partly_lost() {
    const POSITION: ClientEvent<u32> = ClientEvent::new("Position").unreliable();
    let protocol = Protocol::builder().remote(POSITION).remote(ECHO).build();
    let (server, addr, client_config) = quic_echo_server(&protocol).await;
    // One datagram in ten lost, each way.
    let relay = lossy_relay(addr, 10).await;
    let client = Client::new(protocol, ClientConfig::default());
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = received.clone();
    client.on_event(POSITION, move |_, _| {
        r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    client.connect_quic(relay, "localhost", client_config).await.unwrap();
    let player = wait_players(&server, 1).await.pop().unwrap();

    // Reliable calls: every one completes, QUIC retransmits what the link loses.
    for i in 0..200 {
        let text = format!("call {i}");
        assert_eq!(client.invoke(ECHO, text.clone()).await.unwrap(), text);
    }
    // Unreliable events: some are lost, none retransmitted.
    for i in 0..400u32 {
        let _ = server.fire(&player, POSITION, i);
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = received.load(std::sync::atomic::Ordering::Relaxed);
    println!("unreliable events delivered over a 10% lossy link: {got} of 400");
    assert!(got > 200 && got < 400, "{got} of 400 arrived");
}

#[cfg(all(feature = "websocket", feature = "tls", feature = "quic"))]
#[tokio::test]
async fn one_server_takes_every_transport_at_once() {
    let (server_config, client_config) = tls_configs(true);
    let (server, observed, _) = server_with(ServerConfig::default());
    let tcp = server.listen_tcp("127.0.0.1:0").await.unwrap();
    let ws = server.listen_ws("127.0.0.1:0", "/volley").await.unwrap();
    let tls = server.listen_tls("127.0.0.1:0", server_config.clone()).await.unwrap();
    let wss = server
        .listen_wss("127.0.0.1:0", "/volley", server_config.clone())
        .await
        .unwrap();
    let quic = server.listen_quic("127.0.0.1:0", server_config).await.unwrap();

    let mut probes = Vec::new();
    let mut clients = Vec::new();
    for i in 0..5 {
        let (client, probe) = client_with(ClientConfig::default());
        match i {
            0 => client.connect_tcp(tcp).await.unwrap(),
            1 => client.connect_ws(ws, "/volley").await.unwrap(),
            2 => client
                .connect_tls(tls, "localhost", client_config.clone())
                .await
                .unwrap(),
            3 => client
                .connect_wss(wss, "/volley", "localhost", client_config.clone())
                .await
                .unwrap(),
            _ => client
                .connect_quic(quic, "localhost", client_config.clone())
                .await
                .unwrap(),
        }
        clients.push(client);
        probes.push(probe);
    }
    // Five players, however they came, reached and reaching the same way.
    let players = wait_players(&server, 5).await;
    assert_eq!(server.fire_all(ANNOUNCE, "everyone".into()).unwrap().sent, 5);
    for probe in &mut probes {
        assert_eq!(recv(&mut probe.announcements).await, "everyone");
    }
    for (client, player) in clients.iter().zip(&players) {
        assert_eq!(
            client.invoke(ECHO, "me".into()).await.unwrap(),
            format!("{}:me", player.id().0)
        );
        client.fire(CHAT, "hi".into()).unwrap();
    }
    eventually("five chats", || observed.chats.lock().unwrap().len() == 5).await;
}

/// Every `connect_*` redials the transport it last connected with after the
/// server restarts on the same address; after `connect(transport)` nothing
/// is redialled (volley cannot reopen a transport it did not open).
#[cfg(all(feature = "websocket", feature = "tls", feature = "quic"))]
#[tokio::test]
async fn every_connect_reconnects_over_its_own_transport() {
    use std::net::SocketAddr;
    let (server_config, client_config) = tls_configs(true);
    /// Starts a server listening on `addr` over transport `which`, retrying
    /// while the old one's port is still held.
    async fn listen(
        which: usize,
        addr: SocketAddr,
        config: std::sync::Arc<volley::transport::tls::rustls::ServerConfig>,
    ) -> (Server, SocketAddr) {
        for _ in 0..100 {
            let (server, _, _) = server_with(ServerConfig::default());
            let bound = match which {
                0 => server.listen_tcp(addr).await,
                1 => server.listen_ws(addr, "/volley").await,
                2 => server.listen_tls(addr, config.clone()).await,
                3 => server.listen_wss(addr, "/volley", config.clone()).await,
                _ => server.listen_quic(addr, config.clone()).await,
            };
            if let Ok(bound) = bound {
                return (server, bound);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("could not listen on {addr} again");
    }
    let policy = ReconnectPolicy::default()
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(100))
        .with_max_attempts(100);
    for which in 0..5 {
        let (server, addr) = listen(which, "127.0.0.1:0".parse().unwrap(), server_config.clone()).await;
        let (client, _probe) = client_with(ClientConfig::default().with_reconnect(policy));
        let connected = match which {
            0 => client.connect_tcp(addr).await,
            1 => client.connect_ws(addr, "/volley").await,
            2 => client.connect_tls(addr, "localhost", client_config.clone()).await,
            3 => {
                client
                    .connect_wss(addr, "/volley", "localhost", client_config.clone())
                    .await
            }
            _ => client.connect_quic(addr, "localhost", client_config.clone()).await,
        };
        connected.unwrap();
        server.shutdown(Duration::ZERO).await;
        drop(server);
        let (again, _) = listen(which, addr, server_config.clone()).await;
        eventually("reconnected", || again.player_count() == 1 && client.is_connected()).await;
        let back = client.invoke(ECHO, "back".into()).await;
        assert!(back.is_ok(), "transport {which}: {back:?}");
        again.shutdown(Duration::ZERO).await;
    }
    // A custom transport is not redialled to the last address.
    let (server, addr) = listen(0, "127.0.0.1:0".parse().unwrap(), server_config.clone()).await;
    let (client, _probe) = client_with(ClientConfig::default().with_reconnect(policy));
    client.connect_tcp(addr).await.unwrap();
    client.disconnect();
    client.connect(server.connect_memory()).await.unwrap();
    server.shutdown(Duration::ZERO).await;
    drop(server);
    let (again, _) = listen(0, addr, server_config).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(again.player_count(), 0, "a stale redial to the old address");
}
