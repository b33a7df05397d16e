//! The figures volley counts, as the API returns them, over TCP.

mod common;

use std::time::Duration;

use common::*;
use volley::*;

fn buy(gold: u32) -> Purchase {
    Purchase {
        item: "apple".into(),
        gold,
    }
}

#[tokio::test]
async fn calls_events_errors_and_traffic_are_counted() {
    let (server, addr, _observed, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();

    for gold in [10, 20, 30] {
        client.invoke(BUY, buy(gold)).await.unwrap();
    }
    assert!(matches!(
        client.invoke(BUY, buy(5)).await,
        Err(FunctionError::Rejected(_))
    ));
    assert_eq!(client.invoke(BUY, buy(5_000)).await, Err(FunctionError::BadRequest));
    for _ in 0..2 {
        client.invoke(ECHO, "hi".into()).await.unwrap();
    }
    client.fire(CHAT, "one".into()).unwrap();
    client.fire(CHAT, "two".into()).unwrap();
    assert_eq!(server.invoke(&player, PROMPT, "ok?".into()).await, Ok(true));
    assert_eq!(
        server
            .invoke_with_timeout(&player, CLIENT_SLOW, 5_000, Duration::from_millis(100))
            .await,
        Err(FunctionError::Timeout)
    );
    // The events are in once the server answers a later call.
    client.invoke(ECHO, "sync".into()).await.unwrap();

    let figures = server.figures();
    let remote = |name: &str| figures.remotes.iter().find(|r| r.name == name).unwrap().clone();
    let buy_figures = remote("Buy");
    assert_eq!(buy_figures.calls_in, 5);
    assert_eq!(buy_figures.answered.get("ok"), Some(&3));
    assert_eq!(buy_figures.answered.get("rejected"), Some(&1));
    assert_eq!(buy_figures.answered.get("bad_request"), Some(&1));
    assert_eq!(buy_figures.bad_input, 1);
    // One call in eight per connection is timed, the first included.
    assert_eq!(buy_figures.handled.count, 1);
    assert!(buy_figures.bytes_in > 0);
    assert_eq!(remote("Echo").calls_in, 3);
    assert_eq!(remote("Chat").events_in, 2);
    let prompt = remote("Prompt");
    assert_eq!((prompt.calls_out, prompt.ended.get("ok")), (1, Some(&1)));
    assert_eq!(prompt.round_trip.count, 1);
    assert!(
        prompt.round_trip.p50_us > 0
            && prompt.round_trip.p50_us <= prompt.round_trip.max_us + prompt.round_trip.max_us / 8
    );
    assert_eq!(remote("ClientSlow").ended.get("timeout"), Some(&1));

    assert_eq!(figures.players, 1);
    let conn = &figures.connections[0];
    assert_eq!(conn.player, Some(player.id().0));
    assert_eq!((conn.calls_in, conn.calls_out, conn.events_in), (8, 2, 2));
    assert_eq!(conn.errors.get("rejected"), Some(&1));
    assert_eq!(conn.errors.get("bad_request"), Some(&1));
    assert_eq!(conn.errors.get("timeout"), Some(&1));
    assert!(conn.frames_in >= 12 && conn.bytes_in > conn.frames_in, "{conn:?}");
    let per = |name: &str| conn.remotes.get(name).copied().unwrap_or_default();
    assert_eq!(
        (per("Buy").calls_in, per("Echo").calls_in, per("Chat").events_in),
        (5, 3, 2)
    );
    assert_eq!((per("Prompt").calls_out, per("ClientSlow").calls_out), (1, 1));
    assert!(!conn.remotes.contains_key("Panics"), "unused remotes are left out");

    // The client counts the same traffic the other way.
    let mine = client.figures().expect("connected");
    assert_eq!((mine.calls_out, mine.events_out, mine.calls_in), (8, 2, 2));
    assert_eq!(mine.errors.get("rejected"), Some(&1));
    let client_buy = client.remote_figures().into_iter().find(|r| r.name == "Buy").unwrap();
    assert_eq!((client_buy.calls_out, client_buy.ended.get("ok")), (5, Some(&3)));

    // Plain data: it survives a trip through serde.
    let bytes = postcard::to_allocvec(&figures).unwrap();
    assert_eq!(postcard::from_bytes::<ServerFigures>(&bytes).unwrap(), figures);

    // Departures and refusals, by reason.
    client.disconnect();
    let start = std::time::Instant::now();
    while server.player_count() > 0 && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    const OTHER: ServerFn<u8, u8> = ServerFn::new("Other");
    let stranger = Client::new(Protocol::builder().remote(OTHER).build(), ClientConfig::default());
    assert!(stranger.connect_tcp(addr).await.is_err());
    let start = std::time::Instant::now();
    while server.figures().refused.is_empty() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let figures = server.figures();
    assert_eq!(figures.disconnects.get("Remote"), Some(&1), "{:?}", figures.disconnects);
    assert_eq!(figures.refused.values().sum::<u64>(), 1, "{:?}", figures.refused);
}

/// A refused handshake is counted once, under the refusal's reason; a kick
/// and a shutdown are told apart among the departures.
#[tokio::test]
async fn refusals_count_once_and_kicks_are_not_shutdowns() {
    let (server, addr, _observed, _) = tcp_server(ServerConfig::default()).await;
    server.set_authenticator(|hello| async move {
        if hello.token == b"let me in".as_slice() {
            Ok("friend".to_string())
        } else {
            Err("who are you".to_string())
        }
    });
    let stranger = Client::new(protocol(), ClientConfig::default().with_token("guess"));
    assert!(stranger.connect_tcp(addr).await.is_err());
    const OTHER: ServerFn<u8, u8> = ServerFn::new("Other");
    let mismatched = Client::new(
        Protocol::builder().remote(OTHER).build(),
        ClientConfig::default().with_token("let me in"),
    );
    assert!(mismatched.connect_tcp(addr).await.is_err());
    let friend = || Client::new(protocol(), ClientConfig::default().with_token("let me in"));
    let (kicked, stays) = (friend(), friend());
    kicked.connect_tcp(addr).await.unwrap();
    stays.connect_tcp(addr).await.unwrap();
    let players = wait_players(&server, 2).await;
    players[0].kick("enough");
    eventually("kick counted", || {
        server.figures().disconnects.values().sum::<u64>() == 1
    })
    .await;
    server.shutdown(Duration::ZERO).await;
    let figures = server.figures();
    let expected_refused = [("remotes mismatch".to_string(), 1), ("unauthorized".to_string(), 1)];
    assert_eq!(
        figures.refused,
        expected_refused.into_iter().collect(),
        "{:?}",
        figures.refused
    );
    let expected_left = [("Kicked".to_string(), 1), ("ShuttingDown".to_string(), 1)];
    assert_eq!(
        figures.disconnects,
        expected_left.into_iter().collect(),
        "{:?}",
        figures.disconnects
    );
}

/// A group call whose member does not answer in time counts that timeout
/// among the remote's outcomes, every time (its own deadline and the
/// session's are the same instant: whichever wins, it is counted once).
#[tokio::test]
async fn a_group_call_timeout_is_counted() {
    const ROUNDS: u64 = 6;
    let (server, addr, _observed, _) = tcp_server(ServerConfig::default()).await;
    let (_quick, _) = tcp_client(addr).await;
    let (_slow, _) = tcp_client(addr).await;
    for player in wait_players(&server, 2).await {
        player.join("table");
    }
    for _ in 0..ROUNDS {
        // CLIENT_SLOW sleeps for the milliseconds asked: a minute.
        let answers = server
            .to_room("table")
            .invoke_with_timeout(CLIENT_SLOW, 60_000, Duration::from_millis(50))
            .all()
            .await;
        assert!(
            answers.iter().all(|(_, r)| *r == Err(FunctionError::Timeout)),
            "{answers:?}"
        );
    }
    let slow = server
        .figures()
        .remotes
        .into_iter()
        .find(|r| r.name == "ClientSlow")
        .unwrap();
    assert_eq!(slow.ended.get("timeout"), Some(&(2 * ROUNDS)), "{:?}", slow.ended);
}

/// A handler stopped by the caller's cancel (its timeout here) is counted
/// as answered `cancelled`: the server's figures show calls its callers gave
/// up on.
#[tokio::test]
async fn a_handler_cancelled_by_its_caller_is_counted() {
    let (server, addr, _observed, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    wait_players(&server, 1).await;
    let gave_up = client.invoke_with_timeout(SLOW, 5_000, Duration::from_millis(50)).await;
    assert_eq!(gave_up, Err(FunctionError::Timeout));
    let cancelled = || {
        let figures = server.figures();
        let slow = figures.remotes.iter().find(|r| r.name == "Slow").unwrap().clone();
        slow.answered.get("cancelled").copied()
    };
    eventually("the cancel counted", || cancelled() == Some(1)).await;
}
