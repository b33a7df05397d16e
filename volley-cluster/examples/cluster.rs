//! Two volley servers as one cluster through NATS, a client on each: a
//! whisper from one node's player to the other's, a room spanning both
//! nodes, and a question to the whole room with every answer collected
//! from both nodes. Exits 0 when every outcome was as expected.
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

use std::time::Duration;

use game::*;
use volley::ServerConfig;
use volley_cluster::{ClusterConfig, ClusterNode};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--nats")
        .and_then(|i| args.get(i + 1))
        .cloned();
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
    for _ in 0..2 {
        let node = ClusterNode::start(protocol(), ServerConfig::default(), ClusterConfig::new(&url, "demo")).await?;
        serve(&node);
        let addr = node.server().listen_tcp("127.0.0.1:0").await?;
        println!("node {} serving players on {addr}", node.node_id());
        nodes.push((node, addr));
    }
    let Player {
        client: alice,
        inbox: mut alice_inbox,
        id: alice_id,
        ..
    } = client(nodes[0].1).await;
    let Player {
        client: bob,
        inbox: mut bob_inbox,
        id: bob_id,
        ..
    } = client(nodes[1].1).await;
    println!(
        "alice is player {alice_id} on node {}, bob is player {bob_id} on node {}",
        alice_id >> 32,
        bob_id >> 32
    );
    while nodes[0].0.live_nodes().len() < 2 || nodes[1].0.live_nodes().len() < 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut failures = Vec::new();
    let mut expect = |what: &str, ok: bool| {
        println!("  {} {what}", if ok { "ok:" } else { "FAILED:" });
        if !ok {
            failures.push(what.to_string());
        }
    };

    println!("\n1. a whisper from alice (node A) to bob (node B)");
    alice.invoke(WHISPER, (bob_id, "meet at the bridge".into())).await?;
    let heard = tokio::time::timeout(Duration::from_secs(3), bob_inbox.recv())
        .await
        .ok()
        .flatten();
    println!("  bob hears {heard:?}");
    expect("bob heard the whisper", heard.as_deref() == Some("meet at the bridge"));

    println!("\n2. a room spanning both nodes");
    for who in [alice_id, bob_id] {
        alice.invoke(JOIN, (who, "raid".into())).await?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (members, _) = bob.invoke(COUNT, Some("raid".into())).await?;
    println!(
        "  the raid has {} members across the cluster: {members:?}",
        members.len()
    );
    expect("both players are in the raid", members.len() == 2);
    bob.invoke(SAY, ("raid".into(), "pull in 3".into())).await?;
    let heard = tokio::time::timeout(Duration::from_secs(3), alice_inbox.recv())
        .await
        .ok()
        .flatten();
    println!("  alice hears {heard:?} (bob, the sender, does not)");
    expect("alice heard bob's room message", heard.as_deref() == Some("pull in 3"));

    println!("\n3. a question to the whole raid, answers collected from both nodes");
    let (answers, silent) = alice.invoke(POLL, ("raid".into(), "ready?".into(), 2_000)).await?;
    for (player, answer) in &answers {
        println!("  player {player} (node {}) -> {answer}", player >> 32);
    }
    expect(
        "both answered yes, no node silent",
        answers.len() == 2 && answers.iter().all(|(_, a)| a == "true") && silent.is_empty(),
    );

    alice.close().await;
    bob.close().await;
    for (node, _) in &nodes {
        node.leave_cluster().await;
    }
    if failures.is_empty() {
        println!("\nevery outcome as expected");
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}
