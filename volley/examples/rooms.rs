//! Rooms and many-answer calls: five players in two matches on one server.
//! Chat goes to the sender's match only, never back to the sender; then the
//! server asks every player of match 1 whether they are ready and prints
//! each answer as it arrives. Carol has gone to make tea: her answer never
//! comes, and she appears as a timeout at the deadline. Exits 0 when every
//! outcome was as expected.
//!
//! ```text
//! cargo run --example rooms                      # over TCP
//! cargo run --example rooms -- --transport quic  # or ws, tls
//! ```

mod shared;

use std::collections::BTreeMap;
use std::time::Duration;

use shared::{certificates, connect, listen, trusting, Net};
use tokio::sync::mpsc;
use volley::*;

/// A chat line from a player, for its match.
const SAY: ServerEvent<String> = ServerEvent::new("Say");
/// A chat line as the other players of the match see it.
const CHAT: ClientEvent<String> = ClientEvent::new("Chat");
/// The server asks a player a yes/no question.
const READY: ClientFn<String, bool> = ClientFn::new("Ready");

fn protocol() -> Protocol {
    Protocol::builder().remote(SAY).remote(CHAT).remote(READY).build()
}

/// Who plays in which match.
const SEATS: [(&str, &str); 5] = [
    ("alice", "match:1"),
    ("bob", "match:1"),
    ("carol", "match:1"),
    ("dave", "match:2"),
    ("erin", "match:2"),
];

/// What the game keeps about each player, on the player itself.
struct Seat {
    name: String,
    room: &'static str,
}

fn game_server() -> Server {
    let server = Server::new(protocol(), ServerConfig::default());
    // Each client's token is its name; a real game would check a password.
    server.set_authenticator(|hello| async move {
        let name = String::from_utf8_lossy(&hello.token).into_owned();
        match SEATS.iter().find(|(seat, _)| *seat == name) {
            Some(_) => Ok(name),
            None => Err(format!("no seat for {name:?}")),
        }
    });
    server.on_player_added(|player| {
        let name = player.identity().unwrap_or_default().to_string();
        let (_, room) = SEATS.iter().find(|(seat, _)| *seat == name).expect("seated");
        player.join(room);
        player.set_data(Seat { name, room });
    });
    server.on_room_joined(|player, room| println!("  {} joined {room}", player.identity().unwrap_or("?")));
    // A chat line goes to everyone in the sender's match but the sender.
    server.on_event(SAY, |player: Player, line: String| {
        let Some(seat) = player.data::<Seat>() else { return };
        let line = format!("{}: {line}", seat.name);
        let server = player.server();
        if let Err(e) = server.to_room(seat.room).except(&player).fire(CHAT, line) {
            eprintln!("chat not sent: {e}");
        }
    });
    server
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let net = Net::from_args()?;
    // TLS and QUIC: a self-signed certificate that the clients trust explicitly.
    let (server_tls, cert) = certificates(net);
    let server = game_server();
    let addr = listen(&server, net, "127.0.0.1:0", server_tls).await?;
    println!("server listening on {addr} ({net:?}, loopback)");

    // Every client prints what it hears; carol never answers a question.
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let mut clients = Vec::new();
    for (name, _) in SEATS {
        let client = Client::new(protocol(), ClientConfig::default().with_token(name));
        let tx = heard_tx.clone();
        client.on_event(CHAT, move |_, line: String| {
            let _ = tx.send((name, line));
        });
        client.on_request(READY, move |_, question: String| async move {
            if name == "carol" {
                // Away from the keyboard.
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            println!("  {name} is asked {question:?}");
            Ok(name != "bob" || question.contains("round 2"))
        });
        connect(&client, net, addr, cert.as_deref().map(trusting)).await?;
        clients.push(client);
    }
    while server.player_count() < SEATS.len() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut failures = Vec::new();
    for room in ["match:1", "match:2"] {
        let names: Vec<String> = server
            .local_room_members(room)
            .iter()
            .filter_map(|p| p.identity().map(str::to_string))
            .collect();
        println!("{room}: {}", names.join(", "));
    }

    println!("\n1. chat stays inside the match and skips its sender");
    clients[0].fire(SAY, "gg".into())?; // alice, match 1
    clients[3].fire(SAY, "rematch?".into())?; // dave, match 2
    let mut lines = Vec::new();
    for _ in 0..3 {
        let (who, line) = tokio::time::timeout(Duration::from_secs(5), heard.recv())
            .await?
            .ok_or("chat channel closed")?;
        println!("  {who} hears {line:?}");
        lines.push(format!("{who} <- {line}"));
    }
    // Nothing else arrives: not at alice or dave, not across matches.
    if let Ok(Some((who, line))) = tokio::time::timeout(Duration::from_millis(200), heard.recv()).await {
        failures.push(format!("{who} should not have heard {line:?}"));
    }
    lines.sort();
    let expected = ["bob <- alice: gg", "carol <- alice: gg", "erin <- dave: rematch?"];
    if lines != expected {
        failures.push(format!("chat reached {lines:?}, expected {expected:?}"));
    }

    println!("\n2. the server asks all of match 1, answers printed as they arrive (deadline 1 s)");
    let started = tokio::time::Instant::now();
    let mut answers =
        server
            .to_room("match:1")
            .invoke_with_timeout(READY, "Ready for round 2?".into(), Duration::from_secs(1));
    let mut outcome = BTreeMap::new();
    while let Some((id, answer)) = answers.next().await {
        let name = server
            .player(id)
            .and_then(|p| p.identity().map(str::to_string))
            .unwrap_or_else(|| id.to_string());
        println!("  after {:>4} ms: {name} -> {answer:?}", started.elapsed().as_millis());
        outcome.insert(name, answer);
    }
    let expected = BTreeMap::from([
        ("alice".to_string(), Ok(true)),
        ("bob".to_string(), Ok(true)),
        ("carol".to_string(), Err(FunctionError::Timeout)),
    ]);
    if outcome != expected {
        failures.push(format!("answers were {outcome:?}, expected {expected:?}"));
    }

    for client in &clients {
        client.close().await;
    }
    while server.player_count() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("\nall players left; rooms left: {:?}", server.rooms());
    if !server.rooms().is_empty() {
        failures.push("rooms outlived their players".into());
    }
    if failures.is_empty() {
        println!("every outcome as expected");
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}
