//! Every row of volley's reference behaviour, both directions, over real
//! loopback TCP (and over the memory transport where time must be paused).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use volley::*;

#[tokio::test]
async fn calls_succeed_both_directions_and_the_handler_gets_its_player() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    let players = wait_players(&server, 1).await;

    let left = client
        .invoke(
            BUY,
            Purchase {
                item: "sword".into(),
                gold: 25,
            },
        )
        .await;
    assert_eq!(left, Ok(15));
    let echoed = client.invoke(ECHO, "hi".into()).await.unwrap();
    assert_eq!(echoed, format!("{}:hi", players[0].id().0));

    assert_eq!(server.invoke(&players[0], PROMPT, "ready?".into()).await, Ok(true));
    assert_eq!(server.invoke(&players[0], PROMPT, "ready".into()).await, Ok(false));
}

#[tokio::test]
async fn a_deliberate_rejection_reaches_the_caller_word_for_word() {
    let (_server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    let err = client
        .invoke(
            BUY,
            Purchase {
                item: "shield".into(),
                gold: 3,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err, FunctionError::Rejected("a shield costs 10 gold".into()));
    assert_eq!(err.to_string(), "a shield costs 10 gold");
}

#[tokio::test(start_paused = true)]
async fn default_timeout_is_ten_seconds_both_directions() {
    // Paused time needs a transport without real I/O: the memory pipe.
    let (server, _, _) = server_with(ServerConfig::default());
    let (client, _probe) = client_with(ClientConfig::default());
    client.connect(server.connect_memory()).await.unwrap();
    let player = server.players().pop().unwrap();

    let start = tokio::time::Instant::now();
    assert_eq!(client.invoke(SLOW, 60_000).await, Err(FunctionError::Timeout));
    assert_eq!(start.elapsed(), Duration::from_secs(10));

    let start = tokio::time::Instant::now();
    assert_eq!(
        server.invoke(&player, CLIENT_SLOW, 60_000).await,
        Err(FunctionError::Timeout)
    );
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

#[tokio::test]
async fn per_remote_and_per_call_timeouts_apply() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();

    // Declared 200 ms on the remote.
    let start = Instant::now();
    assert_eq!(client.invoke(QUICK_TIMEOUT, 5_000).await, Err(FunctionError::Timeout));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // Given per call, both directions.
    let start = Instant::now();
    assert_eq!(
        client
            .invoke_with_timeout(SLOW, 5_000, Duration::from_millis(100))
            .await,
        Err(FunctionError::Timeout)
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    let start = Instant::now();
    let r = server
        .invoke_with_timeout(&player, CLIENT_SLOW, 5_000, Duration::from_millis(100))
        .await;
    assert_eq!(r, Err(FunctionError::Timeout));
    assert!(start.elapsed() < Duration::from_secs(2));
    // A call that answers in time is unaffected.
    assert_eq!(
        client.invoke_with_timeout(SLOW, 10, Duration::from_secs(5)).await,
        Ok(10)
    );
}

#[tokio::test]
async fn timeout_cancels_the_handler_and_the_late_answer_is_dropped() {
    let (server, addr, _, mut server_dropped) = tcp_server(ServerConfig::default()).await;
    let (client, mut probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();

    assert_eq!(
        client.invoke_with_timeout(SLOW, 300, Duration::from_millis(50)).await,
        Err(FunctionError::Timeout)
    );
    recv(&mut server_dropped).await; // the server's handler was cancelled
    let r = server
        .invoke_with_timeout(&player, CLIENT_SLOW, 300, Duration::from_millis(50))
        .await;
    assert_eq!(r, Err(FunctionError::Timeout));
    recv(&mut probe.slow_dropped).await; // and the client's

    // Calls racing a timing-out one get their own answers, never its late one.
    let (fast, slow) = tokio::join!(
        async {
            tokio::time::sleep(Duration::from_millis(60)).await;
            client.invoke(SLOW, 1).await
        },
        client.invoke_with_timeout(SLOW, 40, Duration::from_millis(39)),
    );
    assert_eq!(slow, Err(FunctionError::Timeout));
    assert_eq!(fast, Ok(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(client.invoke(SLOW, 2).await, Ok(2));
    assert!(client.is_connected());
}

#[tokio::test]
async fn dropping_the_call_future_cancels_the_handler_across_the_wire() {
    let (server, addr, _, mut server_dropped) = tcp_server(ServerConfig::default()).await;
    let (client, mut probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();

    let abandoned = tokio::time::timeout(Duration::from_millis(50), client.invoke(SLOW, 60_000)).await;
    assert!(abandoned.is_err());
    recv(&mut server_dropped).await;

    let abandoned = tokio::time::timeout(Duration::from_millis(50), server.invoke(&player, CLIENT_SLOW, 60_000)).await;
    assert!(abandoned.is_err());
    recv(&mut probe.slow_dropped).await;
}

#[tokio::test]
async fn a_missing_handler_answers_unprocessed_at_once() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();
    let start = Instant::now();
    assert_eq!(client.invoke(UNHANDLED, ()).await, Err(FunctionError::Unprocessed));
    assert_eq!(
        server.invoke(&player, CLIENT_UNHANDLED, ()).await,
        Err(FunctionError::Unprocessed)
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "must not wait for the 10 s timeout"
    );
}

#[test]
fn registering_a_second_handler_replaces_the_first_and_warns() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let server = Server::new(protocol(), ServerConfig::default());
    tracing::subscriber::with_default(subscriber, || {
        server.on_request_sync(ECHO, |_, s: String| Ok(s));
        server.on_request_sync(ECHO, |_, _s: String| Ok("second".to_string()));
    });
    let text = logs.text();
    assert_eq!(text.matches("handler replaced").count(), 1, "{text}");
    assert!(text.contains("WARN") && text.contains("Echo"), "{text}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = Client::new(protocol(), ClientConfig::default());
        client.connect(server.connect_memory()).await.unwrap();
        assert_eq!(client.invoke(ECHO, "x".into()).await.unwrap(), "second");
    });
}

#[tokio::test]
async fn handlers_and_listeners_changed_on_a_live_connection_take_effect() {
    let server = Server::new(protocol(), ServerConfig::default());
    let client = Client::new(protocol(), ClientConfig::default());
    client.connect(server.connect_memory()).await.unwrap();
    // No handler yet, then one, then another: each call sees the current one.
    assert_eq!(client.invoke(UNHANDLED, ()).await, Err(FunctionError::Unprocessed));
    server.on_request_sync(ECHO, |_, _s: String| Ok("first".to_string()));
    assert_eq!(client.invoke(ECHO, "x".into()).await.unwrap(), "first");
    server.on_request_sync(ECHO, |_, _s: String| Ok("second".to_string()));
    assert_eq!(client.invoke(ECHO, "x".into()).await.unwrap(), "second");
    // A listener added after the connection started hears the next event.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    server.on_event(CHAT, move |_, text: String| {
        let _ = tx.send(text);
    });
    client.fire(CHAT, "hello".into()).unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap();
    assert_eq!(heard.as_deref(), Some("hello"));
}

#[tokio::test]
async fn bad_requests_never_reach_the_handler_and_fire_the_hook() {
    let (server, addr, observed, _) = tcp_server(ServerConfig::default()).await;
    let player_id = {
        let (client, _probe) = tcp_client(addr).await;
        let player = wait_players(&server, 1).await.pop().unwrap();
        // Fails validation: BadRequest, hook told who and why.
        let r = client
            .invoke(
                BUY,
                Purchase {
                    item: "castle".into(),
                    gold: 5000,
                },
            )
            .await;
        assert_eq!(r, Err(FunctionError::BadRequest));
        client.disconnect();
        player.id()
    };
    {
        let bad = observed.bad_requests.lock().unwrap();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, player_id);
        assert_eq!(bad[0].1.remote, "Buy");
        assert!(
            bad[0].1.reason.contains("5000 gold is more than anyone has"),
            "{:?}",
            bad[0]
        );
    }

    // Does not decode: a client built with another request type for "Buy".
    const BUY_AS_BYTE: ServerFn<u8, u32> = ServerFn::new("Buy");
    let client = Client::new(protocol(), ClientConfig::default());
    client.connect_tcp(addr).await.unwrap();
    assert_eq!(client.invoke(BUY_AS_BYTE, 7).await, Err(FunctionError::BadRequest));
    assert_eq!(observed.bad_requests.lock().unwrap().len(), 2);
    assert!(observed.bad_requests.lock().unwrap()[1]
        .1
        .reason
        .contains("does not decode"));
    // The connection is fine afterwards.
    assert_eq!(
        client
            .invoke(
                BUY,
                Purchase {
                    item: "axe".into(),
                    gold: 10
                }
            )
            .await,
        Ok(0)
    );
}

#[tokio::test]
async fn bad_requests_from_the_server_are_refused_by_the_client_too() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = client_with(ClientConfig::default());
    let bad = Arc::new(Mutex::new(Vec::new()));
    let seen = bad.clone();
    client.on_bad_request(move |_, input| seen.lock().unwrap().push(input.clone()));
    client.connect_tcp(addr).await.unwrap();
    let player = wait_players(&server, 1).await.pop().unwrap();

    const PROMPT_AS_NUMBER: ClientFn<u64, bool> = ClientFn::new("Prompt");
    assert_eq!(
        server.invoke(&player, PROMPT_AS_NUMBER, u64::MAX).await,
        Err(FunctionError::BadRequest)
    );
    assert_eq!(bad.lock().unwrap()[0].remote, "Prompt");
}

#[tokio::test]
async fn invalid_results_are_caught_at_the_caller() {
    let (server, addr, observed, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = client_with(ClientConfig::default());
    let bad = Arc::new(Mutex::new(Vec::new()));
    let seen = bad.clone();
    client.on_bad_response(move |_, input| seen.lock().unwrap().push(input.clone()));
    client.connect_tcp(addr).await.unwrap();

    // The response check (even numbers only) runs at the caller.
    assert_eq!(client.invoke(NUMBER, 4).await, Ok(4));
    assert_eq!(client.invoke(NUMBER, 5).await, Err(FunctionError::InvalidResult));
    assert!(bad.lock().unwrap()[0].reason.contains("5 is odd"));
    // A response that does not decode as the declared type.
    const ECHO_AS_NUMBER: ServerFn<String, u64> = ServerFn::new("Echo");
    assert_eq!(
        client.invoke(ECHO_AS_NUMBER, "x".into()).await,
        Err(FunctionError::InvalidResult)
    );
    assert_eq!(bad.lock().unwrap().len(), 2);

    // Server side: the client's answer fails to decode.
    let player = wait_players(&server, 1).await.pop().unwrap();
    const PROMPT_RETURNING_TEXT: ClientFn<String, String> = ClientFn::new("Prompt");
    let r = server.invoke(&player, PROMPT_RETURNING_TEXT, "ok?".into()).await;
    assert_eq!(r, Err(FunctionError::InvalidResult));
    assert_eq!(observed.bad_responses.lock().unwrap()[0].1.remote, "Prompt");
}

#[tokio::test]
async fn panics_and_internal_errors_are_unprocessed_and_leak_nothing() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();
    for sync_panic in [true, false] {
        let err = client.invoke(PANICS, sync_panic).await.unwrap_err();
        assert_eq!(err, FunctionError::Unprocessed);
        assert!(!format!("{err} {err:?}").contains("secret"));
    }
    let err = server.invoke(&player, CLIENT_PANICS, ()).await.unwrap_err();
    assert_eq!(err, FunctionError::Unprocessed);
    // Both ends carry on.
    assert_eq!(
        client.invoke(ECHO, "still".into()).await.unwrap(),
        format!("{}:still", player.id().0)
    );
    assert_eq!(server.invoke(&player, PROMPT, "fine?".into()).await, Ok(true));
}

#[tokio::test]
async fn a_lost_peer_ends_every_pending_call_at_once_both_ways() {
    let (server, addr, _, mut server_dropped) = tcp_server(ServerConfig::default()).await;
    let (client, mut probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();

    let start = Instant::now();
    let kicker = {
        let player = player.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            player.kick("server restarting");
        }
    };
    let (a, b, c, ()) = tokio::join!(
        client.invoke(SLOW, 60_000),
        client.invoke(SLOW, 60_000),
        server.invoke(&player, CLIENT_SLOW, 60_000),
        kicker,
    );
    assert_eq!(
        (a, b, c),
        (
            Err(FunctionError::Disconnected),
            Err(FunctionError::Disconnected),
            Err(FunctionError::Disconnected)
        )
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    // The handlers running for that player were cancelled, on both sides.
    recv(&mut server_dropped).await;
    recv(&mut server_dropped).await;
    recv(&mut probe.slow_dropped).await;
    // Further calls fail fast.
    assert_eq!(client.invoke(ECHO, "x".into()).await, Err(FunctionError::Disconnected));
    assert_eq!(
        server.invoke(&player, PROMPT, "x".into()).await,
        Err(FunctionError::Disconnected)
    );
    assert!(matches!(
        client.close_reason(),
        Some(CloseReason::Remote {
            code: GoodbyeCode::Kicked,
            ..
        })
    ));
}

#[tokio::test]
async fn a_client_that_vanishes_ends_the_servers_calls_at_once() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();
    let start = Instant::now();
    let (r, ()) = tokio::join!(server.invoke(&player, CLIENT_SLOW, 60_000), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.disconnect();
    });
    assert_eq!(r, Err(FunctionError::Disconnected));
    assert!(start.elapsed() < Duration::from_secs(3));
    wait_players(&server, 0).await;
}

#[tokio::test]
async fn over_the_in_flight_limit_the_caller_is_told_at_once() {
    let config = ServerConfig::default().with_session(SessionConfig::default().with_max_incoming_calls(4));
    let (_server, addr, _, _) = tcp_server(config).await;
    let (client, _probe) = tcp_client(addr).await;
    let start = Instant::now();
    let calls: Vec<_> = (0..4).map(|_| client.invoke(SLOW, 1_000)).collect();
    let busy = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.invoke(SLOW, 1).await
    };
    let (results, busy) = tokio::join!(futures_util::future::join_all(calls), busy);
    assert_eq!(busy, Err(FunctionError::Overloaded));
    assert!(results.iter().all(|r| *r == Ok(1_000)), "{results:?}");
    assert!(start.elapsed() < Duration::from_secs(5));

    // The caller's own limit on pending calls gives the same error, without sending.
    let (client2, _p) =
        client_with(ClientConfig::default().with_session(SessionConfig::default().with_max_outgoing_calls(2)));
    client2.connect_tcp(addr).await.unwrap();
    let (a, b, c) = tokio::join!(
        client2.invoke(SLOW, 200),
        client2.invoke(SLOW, 200),
        client2.invoke(SLOW, 200)
    );
    assert_eq!((a, b, c), (Ok(200), Ok(200), Err(FunctionError::Overloaded)));
}

#[tokio::test]
async fn calls_dropped_before_they_are_sent_leave_nothing_behind() {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Waker};

    let server = Server::new(protocol(), ServerConfig::default());
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    server.on_request_sync(ECHO, move |_, s: String| {
        h.fetch_add(1, Ordering::Relaxed);
        Ok(s)
    });
    let client = Client::new(
        protocol(),
        ClientConfig::default().with_session(SessionConfig::default().with_max_outgoing_calls(8)),
    );
    client.connect(server.connect_memory()).await.unwrap();
    for round in 0..3 {
        // Started (polled once) and dropped before the connection's task
        // runs: the first goes straight into the session, the rest wait in the
        // outbox, and all are given up on.
        let mut calls: Vec<_> = (0..8)
            .map(|i| Box::pin(client.invoke(ECHO, format!("{round}/{i}"))))
            .collect();
        let mut cx = Context::from_waker(Waker::noop());
        for call in &mut calls {
            assert!(call.as_mut().poll(&mut cx).is_pending());
        }
        // The limit counts them all while they wait.
        let over: Pin<Box<_>> = Box::pin(client.invoke(ECHO, "over".into()));
        assert_eq!(over.await, Err(FunctionError::Overloaded));
        drop(calls);
        // None of them counts any more: sequential calls all go through.
        for i in 0..20 {
            assert_eq!(client.invoke(ECHO, i.to_string()).await.unwrap(), i.to_string());
        }
    }
    // Of the dropped calls, at most the lone first of each round was sent.
    let handled = handled.load(Ordering::Relaxed);
    assert!((60..=63).contains(&handled), "{handled}");
}

#[tokio::test]
async fn a_caller_faster_than_its_connection_is_told_overloaded_not_buffered() {
    use std::future::Future;
    use std::task::{Context, Waker};

    let server = Server::new(protocol(), ServerConfig::default());
    server.on_request_sync(ECHO, |_, s: String| Ok(s));
    let session = SessionConfig::default().with_max_transmit_queue(1_000);
    let client = Client::new(protocol(), ClientConfig::default().with_session(session));
    client.connect(server.connect_memory()).await.unwrap();
    // Started before the connection's task runs: the first goes straight into
    // the session, the rest wait to be sent, up to 1,000 bytes of them.
    let mut calls: Vec<_> = (0..8).map(|_| Box::pin(client.invoke(ECHO, "x".repeat(300)))).collect();
    let mut cx = Context::from_waker(Waker::noop());
    let started: Vec<_> = calls.iter_mut().map(|call| call.as_mut().poll(&mut cx)).collect();
    let refused = started.iter().filter(|p| p.is_ready()).count();
    assert!(
        started[4..]
            .iter()
            .all(|p| *p == std::task::Poll::Ready(Err(FunctionError::Overloaded))),
        "{started:?}"
    );
    assert_eq!(refused, 4, "{started:?}");
    // The ones that were queued all complete.
    for call in calls.into_iter().take(4) {
        assert_eq!(call.await.unwrap(), "x".repeat(300));
    }
}

#[tokio::test]
async fn calls_waiting_when_the_connection_closes_end_disconnected() {
    let server = Server::new(protocol(), ServerConfig::default());
    server.on_request(SLOW, |_, ms: u64| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    });
    let client = Client::new(protocol(), ClientConfig::default());
    client.connect(server.connect_memory()).await.unwrap();
    let calls: Vec<_> = (0..10).map(|_| client.invoke(SLOW, 5_000)).collect();
    let kick = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        for player in server.players() {
            player.kick("bye");
        }
    };
    let (results, ()) = tokio::join!(futures_util::future::join_all(calls), kick);
    assert!(
        results.iter().all(|r| *r == Err(FunctionError::Disconnected)),
        "{results:?}"
    );
    // And later calls fail at once.
    assert_eq!(client.invoke(SLOW, 1).await, Err(FunctionError::Disconnected));
}

#[tokio::test]
async fn predict_runs_the_local_handler_through_the_same_path() {
    let (server, addr, observed, _) = tcp_server(ServerConfig::default()).await;
    let (client, mut probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();

    assert_eq!(
        server
            .predict(
                &player,
                BUY,
                Purchase {
                    item: "bow".into(),
                    gold: 12
                }
            )
            .await,
        Ok(2)
    );
    let rejected = server
        .predict(
            &player,
            BUY,
            Purchase {
                item: "bow".into(),
                gold: 1,
            },
        )
        .await;
    assert_eq!(rejected, Err(FunctionError::Rejected("a bow costs 10 gold".into())));
    let invalid = server
        .predict(
            &player,
            BUY,
            Purchase {
                item: "bow".into(),
                gold: 9999,
            },
        )
        .await;
    assert_eq!(invalid, Err(FunctionError::BadRequest));
    assert_eq!(observed.bad_requests.lock().unwrap().len(), 1);
    assert_eq!(
        server.predict(&player, UNHANDLED, ()).await,
        Err(FunctionError::Unprocessed)
    );
    assert_eq!(
        server.predict(&player, PANICS, true).await,
        Err(FunctionError::Unprocessed)
    );
    assert_eq!(
        server.predict(&player, NUMBER, 3).await,
        Err(FunctionError::InvalidResult)
    );

    assert_eq!(client.predict(PROMPT, "yes?".into()).await, Ok(true));
    assert_eq!(
        client.predict(CLIENT_UNHANDLED, ()).await,
        Err(FunctionError::Unprocessed)
    );

    server.predict_event(&player, CHAT, "predicted".into()).unwrap();
    assert_eq!(
        observed.chats.lock().unwrap().as_slice(),
        [(player.id(), "predicted".to_string())]
    );
    client.predict_event(ANNOUNCE, "local".into()).unwrap();
    assert_eq!(recv(&mut probe.announcements).await, "local");
}

#[tokio::test]
async fn events_reach_exactly_the_chosen_players() {
    let (server, addr, observed, _) = tcp_server(ServerConfig::default()).await;
    let (a, mut pa) = tcp_client(addr).await;
    let (_b, mut pb) = tcp_client(addr).await;
    let (_c, mut pc) = tcp_client(addr).await;
    let players = wait_players(&server, 3).await;
    let (p1, p2, p3) = (&players[0], &players[1], &players[2]);

    assert_eq!(server.fire_all(ANNOUNCE, "all".into()).unwrap().sent, 3);
    server.fire(p1, ANNOUNCE, "one".into()).unwrap();
    assert_eq!(
        server
            .fire_to(&[p2.clone(), p3.clone()], ANNOUNCE, "two and three".into())
            .unwrap()
            .sent,
        2
    );
    assert_eq!(server.fire_except(p1, ANNOUNCE, "not one".into()).unwrap().sent, 2);
    assert_eq!(
        server
            .fire_except(&[p1.clone(), p2.clone()], ANNOUNCE, "only three".into())
            .unwrap()
            .sent,
        1
    );
    server.fire_all(ANNOUNCE, "end".into()).unwrap();

    let mut got = Vec::new();
    for probe in [&mut pa, &mut pb, &mut pc] {
        let mut lines = Vec::new();
        loop {
            let line = recv(&mut probe.announcements).await;
            if line == "end" {
                break;
            }
            lines.push(line);
        }
        got.push(lines);
    }
    assert_eq!(got[0], ["all", "one"]);
    assert_eq!(got[1], ["all", "two and three", "not one"]);
    assert_eq!(got[2], ["all", "two and three", "not one", "only three"]);

    a.fire(CHAT, "hello".into()).unwrap();
    eventually("chat received", || observed.chats.lock().unwrap().len() == 1).await;
    assert_eq!(observed.chats.lock().unwrap()[0], (p1.id(), "hello".to_string()));
}

#[tokio::test]
async fn every_listener_hears_each_event_and_bad_events_are_dropped() {
    let (server, addr, observed, _) = tcp_server(ServerConfig::default()).await;
    let second = Arc::new(Mutex::new(Vec::new()));
    let seen = second.clone();
    server.on_event(CHAT, move |_, line| seen.lock().unwrap().push(line));

    const CHAT_AS_NUMBER: ServerEvent<u64> = ServerEvent::new("Chat");
    let client = Client::new(protocol(), ClientConfig::default());
    client.connect_tcp(addr).await.unwrap();
    client.fire(CHAT_AS_NUMBER, u64::MAX).unwrap();
    client.fire(CHAT, "one".into()).unwrap();
    eventually("both listeners heard", || second.lock().unwrap().len() == 1).await;
    assert_eq!(observed.chats.lock().unwrap().len(), 1);
    let bad = observed.bad_requests.lock().unwrap();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].1.remote, "Chat");
}

#[tokio::test]
async fn players_join_leave_and_can_be_kicked_with_a_reason() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let joined = Arc::new(Mutex::new(Vec::new()));
    let left = Arc::new(Mutex::new(Vec::new()));
    let j = joined.clone();
    server.on_player_added(move |p| j.lock().unwrap().push(p.id()));
    let l = left.clone();
    server.on_player_removed(move |p, reason| l.lock().unwrap().push((p.id(), reason.clone())));

    let (a, _pa) = tcp_client(addr).await;
    let (b, _pb) = tcp_client(addr).await;
    let told = Arc::new(Mutex::new(None));
    let t = told.clone();
    b.on_disconnect(move |reason| *t.lock().unwrap() = Some(reason.clone()));
    let players = wait_players(&server, 2).await;
    assert_eq!(*joined.lock().unwrap(), [players[0].id(), players[1].id()]);
    assert_eq!(server.player(players[1].id()), Some(players[1].clone()));

    players[1].kick("cheating");
    eventually("client b told", || told.lock().unwrap().is_some()).await;
    assert_eq!(
        told.lock().unwrap().clone(),
        Some(CloseReason::Remote {
            code: GoodbyeCode::Kicked,
            message: "cheating".into()
        })
    );
    assert!(!b.is_connected());
    a.disconnect();
    wait_players(&server, 0).await;
    eventually("both removals reported", || left.lock().unwrap().len() == 2).await;
    let left = left.lock().unwrap();
    assert_eq!(
        left[0],
        (
            players[1].id(),
            CloseReason::Local {
                code: GoodbyeCode::Kicked,
                message: "cheating".into()
            }
        )
    );
    assert_eq!(left[1].0, players[0].id());
    assert!(matches!(
        &left[1].1,
        CloseReason::Remote {
            code: GoodbyeCode::Normal,
            ..
        }
    ));
}

#[tokio::test]
async fn a_client_built_from_other_declarations_is_refused_with_a_reason() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    const EXTRA: ServerFn<(), ()> = ServerFn::new("SomethingNew");
    let other = Protocol::builder().remote(ECHO).remote(EXTRA).build();
    let client = Client::new(other, ClientConfig::default());
    let err = client.connect_tcp(addr).await.unwrap_err();
    match &err {
        ConnectError::Refused { code, message } => {
            assert_eq!(*code, RefuseCode::RemotesMismatch);
            assert!(message.contains("different remote declarations"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(err.to_string().contains("refused"));
    assert_eq!(server.player_count(), 0);
    assert_eq!(client.invoke(ECHO, "x".into()).await, Err(FunctionError::Disconnected));
}

#[tokio::test]
async fn garbage_from_one_socket_disturbs_no_one_else() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw.write_all(&[0x05, 0xee, 0xee, 0xee, 0xee, 0xee]).await.unwrap();
    // The server says why and closes that socket.
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&reply).contains("unknown message tag"),
        "{reply:?}"
    );
    assert_eq!(
        client.invoke(ECHO, "fine".into()).await.unwrap().split(':').nth(1),
        Some("fine")
    );
    assert_eq!(server.player_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_a_multi_thread_runtime() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();
    let calls = (0..200u32).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .invoke(
                    BUY,
                    Purchase {
                        item: "x".into(),
                        gold: 10 + i,
                    },
                )
                .await
        })
    });
    for (i, call) in calls.enumerate() {
        assert_eq!(call.await.unwrap(), Ok(i as u32));
    }
    assert_eq!(server.invoke(&player, PROMPT, "?".into()).await, Ok(true));
}

#[test]
fn handles_are_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Server>();
    check::<Client>();
    check::<Player>();
    check::<Protocol>();
    check::<FunctionError>();
}

/// Both ends know the round-trip time within a round trip of joining.
#[tokio::test]
async fn both_ends_measure_the_round_trip_time() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    let player = wait_players(&server, 1).await.pop().unwrap();
    eventually("rtt on both ends", || player.rtt().is_some() && client.rtt().is_some()).await;
    for rtt in [player.rtt().unwrap(), client.rtt().unwrap()] {
        assert!(rtt < Duration::from_millis(500), "{rtt:?} on loopback");
    }
    assert!(player.rtt_jitter().is_some() && client.rtt_jitter().is_some());
    client.disconnect();
    eventually("no rtt once disconnected", || client.rtt().is_none()).await;
}

/// A client's handlers are given the client, as a server's are given the
/// player: a handler can call the server back without a captured clone.
#[tokio::test]
async fn client_handlers_are_given_the_client() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let client = Client::new(protocol(), ClientConfig::default());
    client.on_request(PROMPT, |client: Client, question: String| async move {
        let echoed = client
            .invoke(ECHO, question)
            .await
            .map_err(|e| Reject::new(e.to_string()))?;
        Ok(echoed.ends_with('?'))
    });
    client.connect_tcp(addr).await.unwrap();
    let player = wait_players(&server, 1).await.pop().unwrap();
    assert_eq!(server.invoke(&player, PROMPT, "ready?".into()).await, Ok(true));
    // Given clients do not keep the connection: dropping the only one the
    // application holds still says goodbye.
    drop(client);
    eventually("goodbye", || server.player_count() == 0).await;
}

/// A request that counts its live copies: serialised without the counter.
#[derive(serde::Serialize, serde::Deserialize)]
struct Counted {
    n: u64,
    #[serde(skip)]
    _alive: Option<Arc<()>>,
}

/// A call's future sends nothing before it is polled (as an `async fn`'s),
/// lets its request go once it is sent rather than at the answer, and is
/// small: a caller with hundreds in flight moves and keeps them whole.
#[tokio::test]
async fn a_call_future_is_lazy_small_and_lets_its_request_go_once_sent() {
    use std::future::Future;
    use std::task::{Context, Waker};

    const HOLD: ServerFn<Counted, u64> = ServerFn::new("Hold");
    const ASK: ClientFn<Counted, u64> = ClientFn::new("Ask");
    let protocol = || Protocol::builder().remote(HOLD).remote(ASK).build();
    let server = Server::new(protocol(), ServerConfig::default());
    let (release, released) = tokio::sync::watch::channel(false);
    server.on_request(HOLD, move |_, req: Counted| {
        let mut released = released.clone();
        async move {
            let _ = released.wait_for(|go| *go).await;
            Ok(req.n)
        }
    });
    let client = Client::new(protocol(), ClientConfig::default());
    client.on_request_sync(ASK, |_, req: Counted| Ok(req.n + 1));
    client.connect(server.connect_memory()).await.unwrap();
    let player = wait_players(&server, 1).await.pop().unwrap();

    let alive = Arc::new(());
    let counted = |n| Counted {
        n,
        _alive: Some(alive.clone()),
    };
    let mut call = Box::pin(client.invoke(HOLD, counted(7)));
    assert_eq!(Arc::strong_count(&alive), 2, "held until sent");
    assert!(call.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
    assert_eq!(Arc::strong_count(&alive), 1, "let go once sent, before the answer");
    release.send(true).unwrap();
    assert_eq!(call.await, Ok(7));
    assert_eq!(server.invoke(&player, ASK, counted(1)).await, Ok(2));

    // 256 bytes each as `async fn`s (the remote, the request and the
    // timeout kept beside the pending call).
    let sizes = [
        std::mem::size_of_val(&client.invoke(HOLD, counted(0))),
        std::mem::size_of_val(&server.invoke(&player, ASK, counted(0))),
        std::mem::size_of_val(&player.invoke(ASK, counted(0))),
    ];
    assert!(sizes.iter().all(|&size| size <= 128), "call futures of {sizes:?} bytes");
}
