//! Who may join: a full server refuses, nobody joins after shutdown begins,
//! even when the authenticator's verdict arrives late.

mod common;

use std::time::Duration;

use common::*;
use volley::*;

#[tokio::test]
async fn a_full_server_refuses_with_a_reason_and_takes_players_again_once_one_leaves() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default().with_max_players(2)).await;
    let (a, _) = tcp_client(addr).await;
    let (_b, _) = tcp_client(addr).await;
    let third = Client::new(protocol(), ClientConfig::default());
    match third.connect_tcp(addr).await {
        Err(ConnectError::Refused {
            code: RefuseCode::Unavailable,
            message,
        }) => assert_eq!(message, "server is full"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    a.disconnect();
    eventually("a left", || server.player_count() == 1).await;
    third.connect_tcp(addr).await.unwrap();
    assert_eq!(wait_players(&server, 2).await.len(), 2);
}

#[tokio::test]
async fn a_verdict_that_arrives_after_shutdown_began_refuses() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    server.set_authenticator(|_hello| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok("late".to_string())
    });
    let client = Client::new(protocol(), ClientConfig::default());
    let (joined, ()) = tokio::join!(client.connect_tcp(addr), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.shutdown(Duration::from_millis(50)).await;
    });
    match joined {
        Err(ConnectError::Refused {
            code: RefuseCode::Unavailable,
            ..
        }) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(server.player_count(), 0);
}

/// A client built with other payload types for a remote of the same name is
/// refused at the handshake, not call by call.
#[tokio::test]
async fn a_client_built_with_other_payload_types_is_refused() {
    let (_server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    // `protocol()` with Buy taking a String instead of a Purchase.
    const OTHER_BUY: ServerFn<String, u32> = ServerFn::new("Buy");
    let other = protocol_without_buy().remote(OTHER_BUY).build();
    assert_ne!(other.hash(), protocol().hash());
    let client = Client::new(other, ClientConfig::default());
    match client.connect_tcp(addr).await {
        Err(ConnectError::Refused {
            code: RefuseCode::RemotesMismatch,
            ..
        }) => {}
        other => panic!("expected RemotesMismatch, got {other:?}"),
    }
}

/// The hash tells apart two instances of one generic type, two types that
/// share a name, and a recursive enum whose first variant recurses: each
/// changed one is refused at the handshake.
#[tokio::test]
async fn generic_namesake_and_recursive_payload_changes_are_refused() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Page<T> {
        items: Vec<T>,
    }
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Lists {
        ids: Page<u32>,
        names: Page<String>,
    }
    #[derive(serde::Serialize, serde::Deserialize)]
    struct ListsChanged {
        ids: Page<u32>,
        names: Page<u32>,
    }
    #[derive(serde::Serialize, serde::Deserialize)]
    enum Expr {
        Add(Box<Expr>, Box<Expr>),
        Num(u32),
    }
    mod wider {
        #[derive(serde::Serialize, serde::Deserialize)]
        pub(super) enum Expr {
            Add(Box<Expr>, Box<Expr>),
            Num(i64),
        }
    }
    assert_ne!(
        protocol_without_buy()
            .remote(ServerFn::<Lists, u32>::new("Buy"))
            .build()
            .hash(),
        protocol_without_buy()
            .remote(ServerFn::<ListsChanged, u32>::new("Buy"))
            .build()
            .hash()
    );
    let server = Server::new(
        protocol_without_buy().remote(ServerFn::<Expr, u32>::new("Buy")).build(),
        ServerConfig::default(),
    );
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    let changed = protocol_without_buy()
        .remote(ServerFn::<wider::Expr, u32>::new("Buy"))
        .build();
    match Client::new(changed, ClientConfig::default()).connect_tcp(addr).await {
        Err(ConnectError::Refused {
            code: RefuseCode::RemotesMismatch,
            ..
        }) => {}
        other => panic!("expected RemotesMismatch, got {other:?}"),
    }
}

/// The token never shows in `Debug` output (client, its config, the hello
/// the authenticator sees) nor in any log line, at any level.
#[tokio::test]
async fn the_auth_token_never_shows_in_debug_output_or_logs() {
    const TOKEN: &str = "s3cret-t0ken-value";
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen_in_auth = seen.clone();
    server.set_authenticator(move |hello| {
        *seen_in_auth.lock().unwrap() = format!("{hello:?}");
        async move {
            if hello.token == TOKEN.as_bytes() {
                Ok("alice".to_string())
            } else {
                Err("bad token".to_string())
            }
        }
    });
    let config = ClientConfig::default().with_token(TOKEN);
    let client = Client::new(protocol(), config.clone());
    client.connect_tcp(addr).await.unwrap();
    assert_eq!(wait_players(&server, 1).await[0].identity(), Some("alice"));
    client.disconnect();
    let all = [
        format!("{config:?}"),
        format!("{client:?}"),
        seen.lock().unwrap().clone(),
        logs.text(),
    ];
    assert!(all[2].contains("redacted"), "{}", all[2]);
    for shown in all {
        assert!(!shown.contains(TOKEN), "the token shows in: {shown}");
    }
}
