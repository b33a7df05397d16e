//! A game protocol whose handlers act across the cluster, as a game's
//! would: a player whispers to, asks, or moves a player of any node, talks
//! to a room spanning nodes, and polls it.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use volley::Player as Caller;
use volley::{
    Client, ClientConfig, ClientEvent, ClientFn, FunctionError, PlayerError, PlayerId, Protocol, Reject, Server,
    ServerFn,
};

/// A client's id, as the cluster knows it.
pub const WHO_AM_I: ServerFn<(), u64> = ServerFn::new("WhoAmI");
/// Whisper `text` to player `to`, wherever it is.
pub const WHISPER: ServerFn<(u64, String), ()> = ServerFn::new("Whisper");
/// Ask player `to` a question, wherever it is; the answer or the error's name.
pub const ASK: ServerFn<(u64, String), String> = ServerFn::new("Ask");
/// Put player `who` in `room`, wherever it is.
pub const JOIN: ServerFn<(u64, String), bool> = ServerFn::new("Join");
/// Say `text` to everyone in `room` but the caller, on every node.
pub const SAY: ServerFn<(String, String), u32> = ServerFn::new("Say");
/// Say `text` to every player of the cluster but the caller.
pub const SHOUT: ServerFn<String, u32> = ServerFn::new("Shout");
/// Each player's answer (or error's name), and the silent nodes.
pub type PollResult = (Vec<(u64, String)>, Vec<u32>);
/// Ask everyone in `room` `text` within `ms`.
pub const POLL: ServerFn<(String, String, u64), PollResult> = ServerFn::new("Poll");
/// The players of `room` (or all), across the cluster, and silent nodes.
pub const COUNT: ServerFn<Option<String>, (Vec<u64>, Vec<u32>)> = ServerFn::new("Count");
/// Disconnect player `who`, wherever it is.
pub const KICK: ServerFn<u64, bool> = ServerFn::new("Kick");

/// What players hear.
pub const INBOX: ClientEvent<String> = ClientEvent::new("Inbox");
/// A question for a player: answered `true` at once, unless it contains
/// "never" (then never answered).
pub const QUESTION: ClientFn<String, bool> = ClientFn::new("Question").with_timeout(Duration::from_secs(10));

pub fn protocol() -> Protocol {
    Protocol::builder()
        .remote(WHO_AM_I)
        .remote(WHISPER)
        .remote(ASK)
        .remote(JOIN)
        .remote(SAY)
        .remote(SHOUT)
        .remote(POLL)
        .remote(COUNT)
        .remote(KICK)
        .remote(INBOX)
        .remote(QUESTION)
        .build()
}

fn outcome(result: Result<bool, FunctionError>) -> String {
    match result {
        Ok(answer) => answer.to_string(),
        Err(e) => format!("{e:?}"),
    }
}

/// Registers the game's handlers on `server`: the same code for one server
/// and for a node of a cluster (a server built with a `NatsAdapter`).
pub fn serve(server: &Server) {
    server.on_request_sync(WHO_AM_I, |player: Caller, ()| Ok(player.id().0));
    server.on_request_sync(WHISPER, |player: Caller, (to, text): (u64, String)| {
        let server = player.server();
        server
            .fire_id(PlayerId(to), INBOX, text)
            .map_err(|e| Reject::new(e.to_string()))
    });
    server.on_request(ASK, |player: Caller, (to, text): (u64, String)| async move {
        let server = player.server();
        Ok(outcome(server.invoke_id(PlayerId(to), QUESTION, text).await))
    });
    server.on_request(JOIN, |player: Caller, (who, room): (u64, String)| async move {
        let server = player.server();
        server
            .join(PlayerId(who), &room)
            .await
            .map_err(|e| Reject::new(e.to_string()))
    });
    server.on_request_sync(SAY, |player: Caller, (room, text): (String, String)| {
        let server = player.server();
        let sent = server.to_room(&room).except(&player).fire(INBOX, text);
        sent.map(|b| b.sent as u32).map_err(|e| Reject::new(e.to_string()))
    });
    server.on_request_sync(SHOUT, |player: Caller, text: String| {
        let server = player.server();
        let sent = server.to_all().except(&player).fire(INBOX, text);
        sent.map(|b| b.sent as u32).map_err(|e| Reject::new(e.to_string()))
    });
    server.on_request(
        POLL,
        |player: Caller, (room, text, ms): (String, String, u64)| async move {
            let server = player.server();
            let mut answers = server
                .to_room(&room)
                .invoke_with_timeout(QUESTION, text, Duration::from_millis(ms));
            let mut all = Vec::new();
            while let Some((player, answer)) = answers.next().await {
                all.push((player.0, outcome(answer)));
            }
            all.sort();
            Ok((all, answers.silent_nodes().to_vec()))
        },
    );
    server.on_request(COUNT, |player: Caller, room: Option<String>| async move {
        let server = player.server();
        let census = match room {
            Some(room) => server.room_members(&room).await,
            None => server.to_all().members().await,
        };
        Ok((census.players.iter().map(|p| p.0).collect(), census.silent_nodes))
    });
    server.on_request(KICK, |player: Caller, who: u64| async move {
        let server = player.server();
        match server.kick(PlayerId(who), "kicked across the cluster").await {
            Ok(()) => Ok(true),
            Err(PlayerError::NotConnected) => Ok(false),
            Err(e) => Err(Reject::new(e.to_string())),
        }
    });
}

/// Counts questions whose handler was stopped before it answered (the
/// caller cancelled, across the wire).
#[derive(Clone, Default)]
pub struct Cancelled(pub std::sync::Arc<std::sync::atomic::AtomicUsize>);

struct CountIfDropped(Cancelled);

impl Drop for CountIfDropped {
    fn drop(&mut self) {
        self.0 .0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A client of the game, what it hears, its id, and its cancelled questions.
pub struct Player {
    pub client: Client,
    pub inbox: tokio::sync::mpsc::UnboundedReceiver<String>,
    pub id: u64,
    pub cancelled: Cancelled,
}

/// A client of the game: what it hears goes to `inbox`.
pub async fn client(addr: std::net::SocketAddr) -> Player {
    let client = Client::new(protocol(), ClientConfig::default());
    let (tx, inbox) = tokio::sync::mpsc::unbounded_channel();
    client.on_event(INBOX, move |_, text| {
        let _ = tx.send(text);
    });
    let cancelled = Cancelled::default();
    let counter = cancelled.clone();
    client.on_request(QUESTION, move |_, text: String| {
        let guard = CountIfDropped(counter.clone());
        async move {
            if text.contains("never") {
                std::future::pending::<()>().await;
            }
            std::mem::forget(guard);
            Ok(true)
        }
    });
    client.connect_tcp(addr).await.expect("connects to its node");
    let id = client.invoke(WHO_AM_I, ()).await.expect("knows its id");
    Player {
        client,
        inbox,
        id,
        cancelled,
    }
}
