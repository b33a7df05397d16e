//! A panic in any user callback is caught and logged; the connection goes on,
//! and when it ends the player is removed and every pending call ends.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use volley::middleware::Admit;
use volley::*;

/// Panics in `admit` for `Number` and in `disconnected`, always.
struct Panicky;

impl Admit<Player> for Panicky {
    fn admit(&self, _peer: &Player, remote: &'static str, _size: usize) -> Result<(), Reject> {
        if remote == "Number" {
            panic!("admit bug");
        }
        Ok(())
    }
    fn disconnected(&self, _peer: &Player) {
        panic!("disconnected bug");
    }
}

impl Admit<()> for Panicky {
    fn admit(&self, _peer: &(), remote: &'static str, _size: usize) -> Result<(), Reject> {
        if remote == "Echo" {
            panic!("outgoing admit bug");
        }
        Ok(())
    }
}

#[tokio::test]
async fn panics_in_hooks_and_middleware_leave_the_connection_up() {
    let (server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let removed = Arc::new(AtomicUsize::new(0));
    server.admit(Panicky);
    server.on_player_added(|_| panic!("added hook bug"));
    server.on_player_removed(|_, _| panic!("removed hook bug"));
    let seen = removed.clone();
    server.on_player_removed(move |_, _| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    server.on_bad_request(|_, _| panic!("bad request hook bug"));

    let (client, _probe) = client_with(ClientConfig::default());
    client.admit_outgoing(Panicky);
    client.on_disconnect(|_| panic!("disconnect hook bug"));
    client.on_bad_response(|_, _| panic!("bad response hook bug"));
    client.connect_tcp(addr).await.unwrap();
    let player = wait_players(&server, 1).await.pop().unwrap();

    // admit panics: refused like a handler that panics; the connection goes on.
    assert_eq!(client.invoke(NUMBER, 2).await, Err(FunctionError::Unprocessed));
    // The outgoing admit panics: the call fails at once, nothing sent.
    assert_eq!(client.invoke(ECHO, "x".into()).await, Err(FunctionError::Unprocessed));
    // The bad-request hook panics (gold over the check's limit).
    let too_rich = Purchase {
        item: "x".into(),
        gold: 5_000,
    };
    assert_eq!(client.invoke(BUY, too_rich).await, Err(FunctionError::BadRequest));
    let ok = Purchase {
        item: "x".into(),
        gold: 15,
    };
    assert_eq!(client.invoke(BUY, ok.clone()).await, Ok(5));
    assert!(client.is_connected() && player.is_connected());

    // A pending call both ways, then the player leaves: the disconnected and
    // removed hooks panic, the player is still removed, the calls end.
    let (a, b, ()) = tokio::join!(
        client.invoke(SLOW, 60_000),
        server.invoke(&player, CLIENT_SLOW, 60_000),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            player.kick("bye");
        }
    );
    assert_eq!(
        (a, b),
        (Err(FunctionError::Disconnected), Err(FunctionError::Disconnected))
    );
    eventually("player removed", || server.player_count() == 0).await;
    eventually("the hook after the panicking one ran", || {
        removed.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(!client.is_connected());
}
