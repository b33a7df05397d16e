//! Graceful shutdown and reconnection, over loopback TCP.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use volley::*;

#[tokio::test]
async fn shutdown_lets_running_handlers_finish_and_refuses_the_rest() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();

    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.invoke(SLOW, 300).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    let (_, late, to_client) = tokio::join!(
        server.shutdown(Duration::from_secs(5)),
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            client.invoke(ECHO, "too late".into()).await
        },
        server.invoke(&player, CLIENT_SLOW, 60_000),
    );
    // The call in flight finished; the one that came during shutdown was refused
    // at once; the server's own pending call ended when it said goodbye.
    assert_eq!(in_flight.await.unwrap(), Ok(300));
    assert_eq!(late, Err(FunctionError::Unprocessed));
    assert_eq!(to_client, Err(FunctionError::Disconnected));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        start.elapsed()
    );
    eventually("client told", || client.close_reason().is_some()).await;
    assert!(matches!(
        client.close_reason(),
        Some(CloseReason::Remote {
            code: GoodbyeCode::ShuttingDown,
            ..
        })
    ));
    assert_eq!(server.player_count(), 0);
    // No one new gets in.
    let newcomer = Client::new(protocol(), ClientConfig::default());
    assert!(newcomer.connect_tcp(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_does_not_wait_past_its_grace() {
    let (server, addr, _, mut cancelled) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    wait_players(&server, 1).await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.invoke(SLOW, 60_000).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    server.shutdown(Duration::from_millis(200)).await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(call.await.unwrap(), Err(FunctionError::Disconnected));
    recv(&mut cancelled).await; // the handler was cancelled
}

#[tokio::test]
async fn a_client_reconnects_after_a_server_restart_and_fails_fast_meanwhile() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let policy = ReconnectPolicy::default()
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(200))
        .with_max_attempts(50);
    let (client, _probe) = client_with(ClientConfig::default().with_reconnect(policy));
    let reconnects = Arc::new(AtomicUsize::new(0));
    let r = reconnects.clone();
    client.on_reconnect(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(client.status(), ClientStatus::Disconnected);
    client.connect_tcp(addr).await.unwrap();
    assert_eq!(client.status(), ClientStatus::Connected);
    assert_eq!(client.invoke(ECHO, "before".into()).await.unwrap(), "1:before");

    server.shutdown(Duration::from_millis(100)).await;
    drop(server);
    // `shutdown` returned after the goodbye was delivered.
    assert_eq!(client.status(), ClientStatus::Reconnecting);
    // Down: calls fail at once rather than hang.
    let start = Instant::now();
    assert_eq!(
        client.invoke(ECHO, "gap".into()).await,
        Err(FunctionError::Disconnected)
    );
    assert!(start.elapsed() < Duration::from_millis(100));

    // The server comes back on the same address.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (again, _, _) = server_with(ServerConfig::default());
    again.listen_tcp(addr).await.unwrap();
    eventually("reconnected", || reconnects.load(Ordering::SeqCst) == 1).await;
    assert!(client.is_connected());
    assert_eq!(client.status(), ClientStatus::Connected);
    assert_eq!(client.invoke(ECHO, "after".into()).await.unwrap(), "1:after");
}

#[tokio::test]
async fn reconnecting_gives_up_after_its_attempts_and_not_after_a_kick() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let policy = ReconnectPolicy::default()
        .with_initial_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(20))
        .with_max_attempts(3);
    // Kicked: stays out.
    let (kicked, _p) = client_with(ClientConfig::default().with_reconnect(policy));
    kicked.connect_tcp(addr).await.unwrap();
    wait_players(&server, 1).await[0].kick("bye");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!kicked.is_connected());
    assert_eq!(kicked.status(), ClientStatus::Disconnected);
    assert_eq!(server.player_count(), 0);

    // Server gone for good: three attempts, then it stops.
    let (client, _p) = client_with(ClientConfig::default().with_reconnect(policy));
    let mut status = client.watch_status();
    client.connect_tcp(addr).await.unwrap();
    server.shutdown(Duration::ZERO).await;
    drop(server);
    assert_eq!(*status.borrow_and_update(), ClientStatus::Reconnecting);
    // Given up: the status says so.
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| *s == ClientStatus::Disconnected),
    )
    .await
    .expect("reconnecting ends Disconnected")
    .unwrap();
    // Three attempts over about 50 ms; then a server comes back, too late.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (again, _, _) = server_with(ServerConfig::default());
    again.listen_tcp(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!client.is_connected(), "it should have given up");
    assert_eq!(again.player_count(), 0);
}

/// Handlers act through the player they are given; both ends can wait for
/// the end of a connection; dropping a client says goodbye.
#[tokio::test]
async fn players_act_and_both_ends_wait_for_the_end() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    // A handler that asks the calling player back and tells everyone, with
    // nothing but the player it is given.
    server.on_request(ECHO, |player: Player, s: String| async move {
        let sure = player.invoke(PROMPT, format!("{s}?")).await.unwrap_or(false);
        player.fire(ANNOUNCE, format!("{s} from {}", player.id())).unwrap();
        let everyone = player.server().fire_all(ANNOUNCE, "all".into()).unwrap();
        Ok(format!("{sure} {}", everyone.sent))
    });
    let (client, mut probe) = tcp_client(addr).await;
    assert_eq!(client.invoke(ECHO, "x".into()).await.unwrap(), "true 1");
    assert_eq!(recv(&mut probe.announcements).await, "x from player#1");
    assert_eq!(recv(&mut probe.announcements).await, "all");

    let player = wait_players(&server, 1).await.pop().unwrap();
    let (from_server, from_client, ()) = tokio::join!(player.closed(), client.closed(), async {
        player.kick("enough");
    });
    assert!(
        matches!(
            from_server,
            CloseReason::Local {
                code: GoodbyeCode::Kicked,
                ..
            }
        ),
        "{from_server:?}"
    );
    assert!(
        matches!(
            from_client,
            CloseReason::Remote {
                code: GoodbyeCode::Kicked,
                ..
            }
        ),
        "{from_client:?}"
    );
    // Once ended, both answer at once.
    assert_eq!(player.closed().await, from_server);
    assert_eq!(client.closed().await, from_client);

    // Dropping the last clone of a client says goodbye.
    let (client, _probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();
    let clone = client.clone();
    drop(client);
    assert!(clone.is_connected(), "a clone still holds it");
    drop(clone);
    let reason = tokio::time::timeout(Duration::from_secs(2), player.closed())
        .await
        .unwrap();
    assert_eq!(
        reason,
        CloseReason::Remote {
            code: GoodbyeCode::Normal,
            message: "client dropped".into()
        }
    );
}

/// A program that says goodbye and returns from `main` (its runtime shut
/// down right after) is seen by the server as a clean goodbye, every time:
/// over TCP, TLS and WebSocket after `disconnect` or dropping the last
/// client, over every transport after `close().await`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_says_goodbye_and_exits_is_seen_leaving_normally() {
    const RUNS: usize = 20;
    let (server_tls, client_tls) = tls_configs(true);
    let (server, _, _) = server_with(ServerConfig::default());
    let (left, mut departures) = tokio::sync::mpsc::unbounded_channel();
    server.on_player_removed(move |_, reason| {
        let _ = left.send(reason.clone());
    });
    let tcp = server.listen_tcp("127.0.0.1:0").await.unwrap();
    let tls = server.listen_tls("127.0.0.1:0", server_tls.clone()).await.unwrap();
    let ws = server.listen_ws("127.0.0.1:0", "/volley").await.unwrap();
    let quic = server.listen_quic("127.0.0.1:0", server_tls).await.unwrap();
    #[derive(Clone, Copy, Debug)]
    enum Ending {
        Disconnect,
        Drop,
        Close,
    }
    for (transport, ending) in [
        ("tcp", Ending::Disconnect),
        ("tcp", Ending::Drop),
        ("tls", Ending::Disconnect),
        ("ws", Ending::Drop),
        ("tcp", Ending::Close),
        ("ws", Ending::Close),
        ("quic", Ending::Close),
    ] {
        for run in 0..RUNS {
            let client_tls = client_tls.clone();
            // A program of its own: a runtime that ends when its `main` does.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let client = Client::new(protocol(), ClientConfig::default());
                    match transport {
                        "tcp" => client.connect_tcp(tcp).await,
                        "tls" => client.connect_tls(tls, "localhost", client_tls).await,
                        "ws" => client.connect_ws(ws, "/volley").await,
                        _ => client.connect_quic(quic, "localhost", client_tls).await,
                    }
                    .unwrap();
                    assert!(client.invoke(ECHO, "hi".into()).await.is_ok());
                    match ending {
                        Ending::Disconnect => client.disconnect(),
                        Ending::Drop => drop(client),
                        Ending::Close => client.close().await,
                    }
                });
            })
            .join()
            .unwrap();
            let reason = tokio::time::timeout(Duration::from_secs(10), departures.recv())
                .await
                .expect("the player was not removed")
                .unwrap();
            assert!(
                matches!(
                    reason,
                    CloseReason::Remote {
                        code: GoodbyeCode::Normal,
                        ..
                    }
                ),
                "{transport} after {ending:?}, run {run}: the server saw {reason:?}"
            );
        }
    }
}

/// `closed()` on a client that never connected returns at once.
#[tokio::test]
async fn closed_on_a_client_that_never_connected_returns_at_once() {
    let client = Client::new(protocol(), ClientConfig::default());
    let reason = tokio::time::timeout(Duration::from_secs(1), client.closed())
        .await
        .expect("closed() waited on a client that never connected");
    assert!(
        matches!(
            reason,
            CloseReason::Local {
                code: GoodbyeCode::Normal,
                ..
            }
        ),
        "{reason:?}"
    );
}

/// `shutdown` returns only once every leave and removal hook has returned,
/// however long they take past the grace. (Several threads: the hooks run
/// on the connections' tasks while `shutdown` waits on another.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_the_removal_and_leave_hooks() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let saved = Arc::new(AtomicUsize::new(0));
    let left_rooms = Arc::new(AtomicUsize::new(0));
    let counted = saved.clone();
    server.on_player_removed(move |_, _| {
        // A game saving the player's stats, synchronously.
        std::thread::sleep(Duration::from_millis(200));
        counted.fetch_add(1, Ordering::SeqCst);
    });
    let counted = left_rooms.clone();
    server.on_room_left(move |_, _| {
        std::thread::sleep(Duration::from_millis(50));
        counted.fetch_add(1, Ordering::SeqCst);
    });
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(tcp_client(addr).await.0);
    }
    for player in wait_players(&server, 3).await {
        player.join("lobby");
    }
    server.shutdown(Duration::from_millis(100)).await;
    assert_eq!(
        saved.load(Ordering::SeqCst),
        3,
        "shutdown returned before the removal hooks ran"
    );
    assert_eq!(
        left_rooms.load(Ordering::SeqCst),
        3,
        "shutdown returned before the leave hooks ran"
    );
}

/// `shutdown` returns once the goodbyes are delivered, not merely sent: a
/// program that ends right after it (its transports dropped, QUIC discarding
/// what is unacknowledged) still tells every player why. Players kicked just
/// before are waited for too: they are gone from the server at once.
#[tokio::test]
async fn shutdown_returns_once_every_goodbye_is_delivered() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(tcp_client(addr).await.0);
    }
    let players = wait_players(&server, 3).await;
    players[0].kick("server shutting down");
    server.shutdown(Duration::ZERO).await;
    let reasons: Vec<_> = clients.iter().map(Client::close_reason).collect();
    assert!(
        matches!(
            &reasons[0],
            Some(CloseReason::Remote {
                code: GoodbyeCode::Kicked,
                ..
            })
        ),
        "{reasons:?}"
    );
    for reason in &reasons[1..] {
        assert!(
            matches!(
                reason,
                Some(CloseReason::Remote {
                    code: GoodbyeCode::ShuttingDown,
                    ..
                })
            ),
            "{reasons:?}"
        );
    }
}

/// A connect call that fails leaves the client `Disconnected`, having been
/// `Connecting` meanwhile.
#[tokio::test]
async fn a_failed_connect_leaves_the_client_disconnected() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let (client, _p) = client_with(ClientConfig::default());
    let status = client.watch_status();
    assert!(client.connect_tcp(addr).await.is_err());
    assert!(status.has_changed().unwrap(), "the status moved (Connecting) and back");
    assert_eq!(client.status(), ClientStatus::Disconnected);
}
