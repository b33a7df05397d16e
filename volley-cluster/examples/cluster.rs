//! One game, unchanged, on one volley server and then on a cluster of three
//! through NATS. The game's handlers (`serve` in `tests/support/game.rs`)
//! take a `volley::Server` and nothing else: a whisper to a player by id, a
//! room its players join by id, a line said to the room, its members
//! counted, a question to the whole room with every answer collected.
//! Three players play it twice: all on one server, then one on each node.
//! Exits 0 when every outcome was as expected, both times.
//!
//! ```text
//! apt-get install -y nats-server                       # once (Debian's package)
//! cargo run -p volley-net-cluster --example cluster    # starts its own nats-server
//! cargo run -p volley-net-cluster --example cluster -- --nats nats://127.0.0.1:4222
//! ```

#[path = "../tests/support/game.rs"]
mod game;
#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use game::*;
use volley::{Server, ServerConfig};
use volley_cluster::{ClusterConfig, NatsAdapter};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--nats")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut failures = Vec::new();

    println!("== one server ==");
    let server = Server::new(protocol(), ServerConfig::default());
    serve(&server);
    let addr = server.listen_tcp("127.0.0.1:0").await?;
    failures.extend(play(&[addr]).await?);

    println!("\n== a cluster of three nodes ==");
    // Our own broker unless one was given; stopped when `_broker` drops.
    let (_broker, url) = match given {
        Some(url) => (None, url),
        None => {
            let broker = support::Broker::start()?;
            let url = broker.url();
            println!("started nats-server on {url}");
            (Some(broker), url)
        }
    };
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..3 {
        let adapter = NatsAdapter::connect(ClusterConfig::new(&url, "demo")).await?;
        let server = Server::with_adapter(protocol(), ServerConfig::default(), adapter.clone());
        serve(&server);
        let addr = server.listen_tcp("127.0.0.1:0").await?;
        println!("node {} serving players on {addr}", adapter.node_id());
        addrs.push(addr);
        nodes.push(adapter);
    }
    while nodes.iter().any(|node| node.live_nodes().len() < 3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    failures.extend(play(&addrs).await?);
    for node in &nodes {
        node.leave_cluster().await;
    }

    if failures.is_empty() {
        println!("\nevery outcome as expected, on one server and on three");
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}

/// Alice, Bob and Carol play, each on the next of `servers`; what did not
/// go as expected.
async fn play(servers: &[SocketAddr]) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut players = Vec::new();
    for (i, name) in ["alice", "bob", "carol"].into_iter().enumerate() {
        let player = client(servers[i % servers.len()]).await;
        println!(
            "{name} is player {} on the server at {}",
            player.id,
            servers[i % servers.len()]
        );
        players.push(player);
    }
    let [alice, bob, carol] = &mut players[..] else {
        unreachable!("three players")
    };
    let mut failures = Vec::new();
    let mut expect = |what: &str, ok: bool| {
        println!("  {} {what}", if ok { "ok:" } else { "FAILED:" });
        if !ok {
            failures.push(what.to_string());
        }
    };

    println!("1. a whisper from alice to bob");
    alice
        .client
        .invoke(WHISPER, (bob.id, "meet at the bridge".into()))
        .await?;
    let heard = hear(&mut bob.inbox).await;
    expect("bob heard the whisper", heard.as_deref() == Some("meet at the bridge"));

    println!("2. a raid of all three, joined by alice");
    for who in [alice.id, bob.id, carol.id] {
        alice.client.invoke(JOIN, (who, "raid".into())).await?;
    }
    let (members, silent) = bob.client.invoke(COUNT, Some("raid".into())).await?;
    println!("  the raid's members: {members:?}");
    expect(
        "three members, every server heard",
        members.len() == 3 && silent.is_empty(),
    );
    let reached = bob.client.invoke(SAY, ("raid".into(), "pull in 3".into())).await?;
    let (to_alice, to_carol) = (hear(&mut alice.inbox).await, hear(&mut carol.inbox).await);
    println!("  bob says \"pull in 3\" ({reached} of them on bob's own server)");
    expect(
        "alice and carol heard bob's line",
        to_alice.as_deref() == Some("pull in 3") && to_carol.as_deref() == Some("pull in 3"),
    );

    println!("3. a question to the whole raid, every answer collected");
    let (answers, silent) = carol
        .client
        .invoke(POLL, ("raid".into(), "ready?".into(), 2_000))
        .await?;
    for (player, answer) in &answers {
        println!("  player {player} -> {answer}");
    }
    expect(
        "all three answered yes, no server silent",
        answers.len() == 3 && answers.iter().all(|(_, a)| a == "true") && silent.is_empty(),
    );
    for player in &players {
        player.client.close().await;
    }
    Ok(failures)
}

async fn hear(inbox: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(3), inbox.recv())
        .await
        .ok()
        .flatten()
}
