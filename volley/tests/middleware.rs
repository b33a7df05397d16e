//! Middleware order and powers, the built-in limits, and the authenticator.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use volley::middleware::{from_fn, ConcurrencyLimit, Next, RateLimit, Request, Response, Trace};
use volley::*;

type Log = Arc<Mutex<Vec<String>>>;

fn recorder(log: &Log, name: &'static str) -> impl Middleware<Player> {
    let log = log.clone();
    from_fn(move |req: Request<Player>, next: Next<Player>| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(format!("{name} in {}", req.remote()));
            let result = next.run(req).await;
            log.lock().unwrap().push(format!("{name} out"));
            result
        }
    })
}

use volley::middleware::{Admit, Middleware};

async fn connected(server: &Server) -> (Client, ClientProbe, Player) {
    let (client, probe) = client_with(ClientConfig::default());
    client.connect(server.connect_memory()).await.unwrap();
    let player = server.players().pop().unwrap();
    (client, probe, player)
}

#[tokio::test]
async fn global_middleware_wraps_per_remote_middleware_in_registration_order() {
    let (server, _, _) = server_with(ServerConfig::default());
    let log: Log = Default::default();
    server.middleware(recorder(&log, "global1"));
    server.middleware_for(ECHO, recorder(&log, "echo"));
    server.middleware(recorder(&log, "global2")); // registered later, still outside "echo"
    let (client, _probe, _) = connected(&server).await;
    client.invoke(ECHO, "x".into()).await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "global1 in Echo",
            "global2 in Echo",
            "echo in Echo",
            "echo out",
            "global2 out",
            "global1 out"
        ]
    );
    log.lock().unwrap().clear();
    // Per-remote middleware stays on its remote.
    client
        .invoke(
            BUY,
            Purchase {
                item: "a".into(),
                gold: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["global1 in Buy", "global2 in Buy", "global2 out", "global1 out"]
    );
}

#[tokio::test]
async fn middleware_can_change_drop_reject_or_answer() {
    let (server, _, _) = server_with(ServerConfig::default());
    server.middleware_for(
        BUY,
        from_fn(|mut req: Request<Player>, next: Next<Player>| async move {
            let purchase = req.args_mut::<Purchase>().expect("Buy carries a Purchase");
            match purchase.item.as_str() {
                "discount" => purchase.gold += 100,
                "forbidden" => return Err(Reject::new("not for sale")),
                "ignored" => return Err(Reject::drop_request()),
                "free" => return Ok(Response::new(999u32)),
                "wrong type" => return Ok(Response::new("not a u32")),
                _ => {}
            }
            next.run(req).await
        }),
    );
    let (client, _probe, _) = connected(&server).await;
    let buy = |item: &str| {
        client.invoke(
            BUY,
            Purchase {
                item: item.into(),
                gold: 10,
            },
        )
    };
    assert_eq!(buy("discount").await, Ok(100));
    assert_eq!(
        buy("forbidden").await,
        Err(FunctionError::Rejected("not for sale".into()))
    );
    assert_eq!(buy("ignored").await, Err(FunctionError::Cancelled));
    assert_eq!(buy("free").await, Ok(999));
    assert_eq!(buy("wrong type").await, Err(FunctionError::Unprocessed));
    assert_eq!(buy("plain").await, Ok(0));
}

#[tokio::test]
async fn middleware_sees_events_and_can_drop_or_change_them() {
    let (server, observed, _) = server_with(ServerConfig::default());
    server.middleware_for(
        CHAT,
        from_fn(|mut req: Request<Player>, next: Next<Player>| async move {
            let line = req.args_mut::<String>().unwrap();
            if line.contains("spam") {
                return Err(Reject::drop_request());
            }
            *line = line.to_uppercase();
            next.run(req).await
        }),
    );
    let (client, _probe, _) = connected(&server).await;
    client.fire(CHAT, "buy spam".into()).unwrap();
    client.fire(CHAT, "hello".into()).unwrap();
    eventually("chat arrives", || !observed.chats.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let chats = observed.chats.lock().unwrap();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].1, "HELLO");
}

#[tokio::test]
async fn a_panicking_middleware_is_unprocessed_and_the_server_carries_on() {
    let (server, _, _) = server_with(ServerConfig::default());
    server.middleware_for(
        ECHO,
        from_fn(|req: Request<Player>, next: Next<Player>| async move {
            if req.args::<String>().is_some_and(|s| s == "boom") {
                panic!("middleware bug");
            }
            next.run(req).await
        }),
    );
    let (client, _probe, player) = connected(&server).await;
    assert_eq!(
        client.invoke(ECHO, "boom".into()).await,
        Err(FunctionError::Unprocessed)
    );
    assert_eq!(
        client.invoke(ECHO, "ok".into()).await,
        Ok(format!("{}:ok", player.id().0))
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_refuses_at_once_per_player_and_remote_then_refills() {
    let (server, observed, _) = server_with(ServerConfig::default());
    server.admit(RateLimit::per_second(2.0).with_burst(3.0));
    let (a, _pa, _) = connected(&server).await;
    let (b, _pb, _) = connected(&server).await;
    async fn buy(c: &Client) -> Result<u32, FunctionError> {
        c.invoke(
            BUY,
            Purchase {
                item: "x".into(),
                gold: 10,
            },
        )
        .await
    }
    for _ in 0..3 {
        assert_eq!(buy(&a).await, Ok(0));
    }
    assert_eq!(buy(&a).await, Err(FunctionError::RateLimited));
    // Another player, and another remote, have their own buckets.
    assert_eq!(buy(&b).await, Ok(0));
    assert!(a.invoke(ECHO, "x".into()).await.is_ok());
    // Half a second at 2/s refills one call.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(buy(&a).await, Ok(0));
    assert_eq!(buy(&a).await, Err(FunctionError::RateLimited));
    // Events over the limit are dropped.
    for i in 0..10 {
        a.fire(CHAT, format!("{i}")).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(observed.chats.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn concurrency_limit_bounds_one_remote_per_player() {
    let (server, _, _) = server_with(ServerConfig::default());
    server.middleware_for(SLOW, ConcurrencyLimit::new(1));
    let (client, _probe, _) = connected(&server).await;
    let (first, second) = tokio::join!(client.invoke(SLOW, 100), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.invoke(SLOW, 1).await
    });
    assert_eq!(first, Ok(100));
    assert_eq!(second, Err(FunctionError::Overloaded));
    // The slot is given back when the call ends.
    assert_eq!(client.invoke(SLOW, 1).await, Ok(1));
}

#[tokio::test]
async fn predict_goes_through_middleware_too() {
    let (server, _, _) = server_with(ServerConfig::default());
    server.middleware(Trace);
    server.middleware_for(
        BUY,
        from_fn(|_req: Request<Player>, _next: Next<Player>| async move { Err(Reject::new("closed today")) }),
    );
    let (_client, _probe, player) = connected(&server).await;
    let r = server
        .predict(
            &player,
            BUY,
            Purchase {
                item: "x".into(),
                gold: 50,
            },
        )
        .await;
    assert_eq!(r, Err(FunctionError::Rejected("closed today".into())));
}

#[tokio::test]
async fn client_side_middleware_guards_server_calls() {
    let (server, _, _) = server_with(ServerConfig::default());
    let (client, _probe) = client_with(ClientConfig::default());
    client.middleware_for(
        PROMPT,
        from_fn(|req: Request<()>, next: Next<()>| async move {
            if req.args::<String>().is_some_and(|q| q.contains("password")) {
                return Err(Reject::new("I will not answer that"));
            }
            next.run(req).await
        }),
    );
    client.connect(server.connect_memory()).await.unwrap();
    let player = server.players().pop().unwrap();
    assert_eq!(server.invoke(&player, PROMPT, "ready?".into()).await, Ok(true));
    let refused = server.invoke(&player, PROMPT, "your password?".into()).await;
    assert_eq!(refused, Err(FunctionError::Rejected("I will not answer that".into())));
}

#[tokio::test]
async fn the_authenticator_admits_with_an_identity_or_refuses_with_a_reason() {
    let (server, _, _) = server_with(ServerConfig::default());
    server.set_authenticator(|hello: Hello| async move {
        match &hello.token[..] {
            b"alice-secret" => Ok("alice".to_string()),
            _ => Err("unknown token".to_string()),
        }
    });
    let (alice, _p) = client_with(ClientConfig::default().with_token("alice-secret"));
    alice.connect(server.connect_memory()).await.unwrap();
    assert_eq!(server.players()[0].identity(), Some("alice"));

    let (mallory, _p) = client_with(ClientConfig::default().with_token("guess"));
    match mallory.connect(server.connect_memory()).await {
        Err(ConnectError::Refused {
            code: RefuseCode::Unauthorized,
            message,
        }) => assert_eq!(message, "unknown token"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(server.player_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_authenticator_slower_than_the_handshake_deadline_loses() {
    let (server, _, _) = server_with(ServerConfig::default());
    server.set_authenticator(|_hello: Hello| async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok("late".to_string())
    });
    let (client, _p) = client_with(ClientConfig::default());
    let start = tokio::time::Instant::now();
    let err = client.connect(server.connect_memory()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Closed(
                CloseReason::Remote { .. } | CloseReason::HandshakeTimeout | CloseReason::TransportClosed
            )
        ),
        "{err:?}"
    );
    assert!(start.elapsed() <= Duration::from_secs(6));
    assert_eq!(server.player_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn outgoing_middleware_refuses_before_anything_is_sent() {
    let (server, observed, _) = server_with(ServerConfig::default());
    let (client, mut probe) = client_with(ClientConfig::default());
    // The client throttles itself: two sends, then no more.
    client.admit_outgoing(RateLimitSelf::new(2));
    client.connect(server.connect_memory()).await.unwrap();
    let player = server.players().pop().unwrap();

    assert!(client.invoke(ECHO, "a".into()).await.is_ok());
    assert!(client.invoke(ECHO, "b".into()).await.is_ok());
    assert_eq!(client.invoke(ECHO, "c".into()).await, Err(FunctionError::RateLimited));
    assert_eq!(client.fire(CHAT, "d".into()), Err(EventError::Refused));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(
        observed.chats.lock().unwrap().is_empty(),
        "the refused event was not sent"
    );

    // The server's side: nothing goes to a player its middleware refuses.
    server.admit_outgoing(Muted);
    assert_eq!(
        server.invoke(&player, PROMPT, "?".into()).await,
        Err(FunctionError::Rejected("muted".into()))
    );
    assert_eq!(server.fire(&player, ANNOUNCE, "x".into()), Err(EventError::Refused));
    let muted = server.fire_all(ANNOUNCE, "y".into()).unwrap();
    assert_eq!(muted.sent, 0);
    assert!(matches!(muted.skipped[..], [(_, EventError::Refused)]));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(probe.announcements.try_recv().is_err());
}

/// Admits `n` sends, then refuses as rate limited.
struct RateLimitSelf(std::sync::atomic::AtomicUsize);

impl RateLimitSelf {
    fn new(n: usize) -> Self {
        Self(std::sync::atomic::AtomicUsize::new(n))
    }
}

impl Admit<()> for RateLimitSelf {
    fn admit(&self, _: &(), _: &'static str, _: usize) -> Result<(), Reject> {
        let left = self.0.load(std::sync::atomic::Ordering::SeqCst);
        if left == 0 {
            return Err(Reject::rate_limited());
        }
        self.0.store(left - 1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// Refuses every send with a message.
struct Muted;

impl Admit<Player> for Muted {
    fn admit(&self, _: &Player, _: &'static str, _: usize) -> Result<(), Reject> {
        Err(Reject::new("muted"))
    }
}

/// Events from one peer reach listeners in the order sent, even when a
/// middleware makes some of them wait; events waiting in middleware are
/// dropped (their futures cancelled) when the peer leaves.
#[tokio::test]
async fn events_keep_their_order_through_middleware_that_waits_and_go_with_the_peer() {
    let (server, addr, observed, _) = common::tcp_server(ServerConfig::default()).await;
    let (cancelled_tx, mut cancelled) = tokio::sync::mpsc::unbounded_channel();
    server.middleware_for(
        CHAT,
        volley::middleware::from_fn(move |req: volley::middleware::Request<Player>, next| {
            let wait = match req.args::<String>().map(String::as_str) {
                Some("slow") => Duration::from_millis(100),
                Some("stuck") => Duration::from_secs(60),
                _ => Duration::ZERO,
            };
            let guard = common::DropSignal(Some(cancelled_tx.clone()));
            async move {
                tokio::time::sleep(wait).await;
                std::mem::forget(guard);
                next.run(req).await
            }
        }),
    );
    let (client, _probe) = common::tcp_client(addr).await;
    for line in ["slow", "a", "b", "c"] {
        client.fire(CHAT, line.into()).unwrap();
    }
    common::eventually("four chats", || observed.chats.lock().unwrap().len() == 4).await;
    let lines: Vec<String> = observed.chats.lock().unwrap().iter().map(|(_, l)| l.clone()).collect();
    assert_eq!(lines, ["slow", "a", "b", "c"]);

    client.fire(CHAT, "stuck".into()).unwrap();
    client.fire(CHAT, "after".into()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.disconnect();
    common::recv(&mut cancelled).await;
    assert_eq!(
        observed.chats.lock().unwrap().len(),
        4,
        "nothing overtook the stuck event"
    );
}
